// The metrics page (#/metrics): the hour of samples the server keeps
// (api/metrics) drawn as small SVG line charts, one per group, with the
// latest values; refreshed every sample interval (at least 5 s).

import { apiUrl, isAbort, request } from './api.js';
import { clearError, el, fmtNumber, messageOf, poll, showError, svg } from './ui.js';

const MIN_INTERVAL_MS = 5000;
const GROUPS = [
  { title: 'Operations', unit: 'per second', suffix: '', series: [['ops_per_s', 'ops/s'], ['writes_per_s', 'writes/s']] },
  { title: 'Request latency', unit: 'ms', series: [['latency_p50_ms', 'p50'], ['latency_p99_ms', 'p99'], ['latency_max_ms', 'max']] },
  { title: 'fsync latency', unit: 'ms', series: [['fsync_p99_ms', 'fsync p99']] },
  { title: 'znodes', unit: '', series: [['znodes', 'znodes']] },
  { title: 'Sessions and connections', unit: '', series: [['sessions', 'sessions'], ['connections', 'connections']] },
  { title: 'Watches', unit: '', series: [['watches', 'watches']] },
  { title: 'Outstanding requests', unit: '', series: [['outstanding', 'outstanding']] },
  { title: 'Snapshots', unit: 'per sample', suffix: '', series: [['snapshots', 'snapshots']] },
];
const GAUGES = [
  ['ops_per_s', 'ops/s'], ['latency_p99_ms', 'latency p99 ms'], ['znodes', 'znodes'], ['sessions', 'sessions'],
  ['connections', 'connections'], ['watches', 'watches'], ['outstanding', 'outstanding'],
];
const COLORS = ['#0b5cad', '#b45309', '#15803d'];
const DASHES = ['', '6 4', '2 3'];

export function mount(main, { signal }) {
  const r = {
    asOf: el('p', { id: 'metrics-as-of', class: 'muted' }, 'Loading…'),
    gauges: el('dl', { id: 'gauges', class: 'gauges' }),
    charts: el('div', { id: 'charts', class: 'charts' }),
  };
  main.append(el('div', { class: 'page metrics-page' },
    el('h1', {}, 'Metrics'), r.asOf, r.gauges, r.charts));
  let interval = MIN_INTERVAL_MS;
  poll(async () => {
    try {
      const m = await request(apiUrl('metrics'), { signal });
      if (typeof m?.interval_ms === 'number') interval = Math.max(MIN_INTERVAL_MS, m.interval_ms);
      render(r, m || {});
      clearError('metrics');
    } catch (e) {
      if (!isAbort(e)) showError(messageOf(e), 'metrics');
    }
  }, () => interval, signal);
}

function lastValue(values) {
  for (let i = values.length - 1; i >= 0; i--) {
    if (typeof values[i] === 'number' && Number.isFinite(values[i])) return values[i];
  }
  return null;
}

// 1234567 → "1.2M"; 0.123 → "0.12".
export function fmtShort(v) {
  if (v === null || v === undefined) return '—';
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(1).replace(/\.0$/, '') + 'G';
  if (a >= 1e6) return (v / 1e6).toFixed(1).replace(/\.0$/, '') + 'M';
  if (a >= 1e4) return (v / 1e3).toFixed(1).replace(/\.0$/, '') + 'k';
  return fmtNumber(v, a < 10 ? 2 : 1);
}

function clock(ms) {
  return new Date(ms).toTimeString().slice(0, 5);
}

// "last 60 min" for the time the samples cover.
export function spanLabel(t) {
  if (t.length < 2) return t.length ? 'one sample' : 'no samples';
  const ms = t[t.length - 1] - t[0];
  if (ms < 120000) return `last ${Math.round(ms / 1000)} s`;
  if (ms < 7200000) return `last ${Math.round(ms / 60000)} min`;
  return `last ${(ms / 3600000).toFixed(1).replace(/\.0$/, '')} h`;
}

function render(r, m) {
  const t = Array.isArray(m.t) ? m.t : [];
  const series = m.series && typeof m.series === 'object' ? m.series : {};
  const valuesOf = (key) => (Array.isArray(series[key]) ? series[key] : []);
  r.asOf.textContent = t.length
    ? `${t.length} samples, one every ${Math.round((m.interval_ms || 0) / 1000)} s; latest at ${new Date(t[t.length - 1]).toLocaleTimeString()}`
    : 'No samples yet: the server takes one every sample interval.';
  r.gauges.replaceChildren(...GAUGES.map(([key, label]) => el('div', {},
    el('dt', {}, label), el('dd', { dataset: { gauge: key } }, fmtNumber(lastValue(valuesOf(key)), 2)))));
  r.charts.replaceChildren(...GROUPS.map((g) => chartFigure(g, t, g.series.map(([key, label]) => ({
    key, label, values: valuesOf(key),
  })))));
}

function chartFigure(group, t, lines) {
  const suffix = group.suffix ?? group.unit;
  const latest = lines.map((s) => `${s.label} ${fmtShort(lastValue(s.values))}${suffix ? ' ' + suffix : ''}`).join(' · ');
  const figure = el('figure', {
    class: 'chart', dataset: { series: lines[0].key, seriesAll: lines.map((s) => s.key).join(' ') },
  },
  el('figcaption', {}, el('span', { class: 'chart-title' }, group.title + (group.unit ? ` (${group.unit})` : '')),
    el('span', { class: 'latest' }, latest)));
  figure.append(lineChart(t, lines, `${group.title}, ${spanLabel(t)}: latest ${latest}`));
  if (lines.length > 1) {
    figure.append(el('ul', { class: 'legend' }, lines.map((s, i) => el('li', {},
      svg('svg', { width: 24, height: 10, 'aria-hidden': 'true' },
        svg('line', { x1: 0, y1: 5, x2: 24, y2: 5, stroke: COLORS[i], 'stroke-width': 2, 'stroke-dasharray': DASHES[i] || null })),
      s.label))));
  }
  return figure;
}

// A round number at or above v: 1, 2, 2.5, 5 × 10^k.
function niceCeil(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const f of [1, 2, 2.5, 5, 10]) if (f * p >= v) return f * p;
  return 10 * p;
}

// An SVG line chart of several series over the times t (wall ms); null
// values leave gaps. Labels: the y range, the first and last time, the span.
export function lineChart(t, lines, label) {
  const W = 600;
  const H = 180;
  const M = { left: 52, right: 12, top: 10, bottom: 30 };
  const w = W - M.left - M.right;
  const h = H - M.top - M.bottom;
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label, class: 'chart-svg' });

  const all = lines.flatMap((s) => s.values).filter((v) => typeof v === 'number' && Number.isFinite(v));
  if (!t.length || !all.length) {
    root.append(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'axis' }, 'no data yet'));
    return root;
  }
  let min = 0;
  let max = 0;
  for (const v of all) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const lo = min;
  const hi = lo < 0 ? max : niceCeil(max);
  const yMax = hi === lo ? lo + 1 : hi;
  const t0 = t[0];
  const t1 = t.length > 1 ? t[t.length - 1] : t0 + 1;
  const x = (ms) => M.left + ((ms - t0) / (t1 - t0)) * w;
  const y = (v) => M.top + h - ((v - lo) / (yMax - lo)) * h;

  // Grid and axes.
  for (const v of [lo, (lo + yMax) / 2, yMax]) {
    root.append(svg('line', { x1: M.left, x2: M.left + w, y1: y(v), y2: y(v), class: 'grid' }));
  }
  root.append(
    svg('text', { x: M.left - 6, y: y(yMax) + 4, 'text-anchor': 'end', class: 'axis' }, fmtShort(yMax)),
    svg('text', { x: M.left - 6, y: y(lo) + 4, 'text-anchor': 'end', class: 'axis' }, fmtShort(lo)),
    svg('text', { x: M.left, y: H - 8, 'text-anchor': 'start', class: 'axis' }, clock(t0)),
    svg('text', { x: M.left + w / 2, y: H - 8, 'text-anchor': 'middle', class: 'axis span' }, spanLabel(t)),
    svg('text', { x: M.left + w, y: H - 8, 'text-anchor': 'end', class: 'axis' }, clock(t[t.length - 1])));

  lines.forEach((s, i) => {
    let d = '';
    let run = 0;
    const dots = [];
    const n = Math.min(t.length, s.values.length);
    for (let k = 0; k < n; k++) {
      const v = s.values[k];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        run = 0;
        continue;
      }
      const px = x(t[k]).toFixed(1);
      const py = y(v).toFixed(1);
      d += `${run === 0 ? 'M' : 'L'}${px} ${py} `;
      run++;
      // A point with gaps on both sides draws as a dot.
      const next = s.values[k + 1];
      if (run === 1 && !(typeof next === 'number' && Number.isFinite(next))) dots.push([px, py]);
    }
    const color = COLORS[i % COLORS.length];
    if (d) {
      root.append(svg('path', {
        d: d.trim(), fill: 'none', stroke: color, 'stroke-width': 2, 'stroke-dasharray': DASHES[i] || null,
        'stroke-linejoin': 'round', class: 'line', 'data-series': s.key,
      }));
    }
    for (const [cx, cy] of dots) root.append(svg('circle', { cx, cy, r: 2.5, fill: color }));
  });
  return root;
}
