// The registry page (#/registry): the service-registry recipe's services
// (polled every 5 s) and, for the selected one, its instances streamed as
// Server-Sent Events, with each lease's TTL counting down locally.

import { isAbort, liveStream, request, session } from './api.js';
import {
  clearError, duration, el, isoDate, messageOf, poll, show, showError, tableWrap,
} from './ui.js';

const INTERVAL_MS = 5000;
const COLUMNS = [
  ['id', 'Instance'], ['address', 'Address'], ['health', 'Health'], ['registered', 'Registered at'],
  ['ttl', 'TTL'], ['payload', 'Payload'],
];

let selected = null;  // the service shown, kept across visits

function prefix() {
  const p = session.info?.registry_prefix;
  return typeof p === 'string' && p ? p.replace(/\/+$/, '') : '/v1/registry';
}

export function mount(main, { signal }) {
  const r = {
    note: el('div', { id: 'registry-note', class: 'note', hidden: true }),
    services: el('ul', { id: 'services', class: 'services' }),
    title: el('h2', { id: 'instances-heading' }, 'Instances'),
    status: el('span', { id: 'instances-status', class: 'muted' }),
    instances: el('table', { id: 'instances', class: 'grid' },
      el('thead', {}, el('tr', {}, COLUMNS.map(([key, label]) => el('th', { scope: 'col', class: key }, label)))),
      el('tbody')),
    detail: el('section', { class: 'panel', 'aria-labelledby': 'instances-heading', hidden: true }),
    stream: null,   // the AbortController of the selected service's stream
    leases: new Map(),  // instance id → deadline (wall ms), from the last view
    names: [],
  };
  r.detail.append(el('div', { class: 'block-head' }, r.title, r.status), tableWrap(r.instances, 'Instances'));
  main.append(el('div', { class: 'page registry-page' },
    el('h1', {}, 'Service registry'),
    r.note,
    el('div', { class: 'registry-layout' },
      el('section', { class: 'panel', 'aria-labelledby': 'services-heading' },
        el('h2', { id: 'services-heading' }, 'Services'), r.services),
      r.detail)));
  signal.addEventListener('abort', () => r.stream?.abort(), { once: true });

  poll(() => loadServices(r, signal), INTERVAL_MS, signal);
  const tick = setInterval(() => tickLeases(r), 1000);
  signal.addEventListener('abort', () => clearInterval(tick), { once: true });
}

async function loadServices(r, signal) {
  let answer;
  try {
    answer = await request(`${prefix()}/services`, { signal });
  } catch (e) {
    if (isAbort(e)) return;
    if (e.status === 404) {
      r.note.replaceChildren(el('span', {},
        `The service-registry recipe is not loaded on this server (nothing answers ${prefix()}/services).`));
    } else {
      r.note.replaceChildren(el('span', {}, 'The registry did not answer: '), el('span', { class: 'server-says' }, messageOf(e)));
    }
    r.note.hidden = false;
    return;
  }
  r.note.hidden = true;
  const names = (Array.isArray(answer?.services) ? answer.services : []).map(String).sort();
  renderServices(r, names, signal);
  if (selected && !names.includes(selected)) r.status.textContent = 'this service has no instances any more';
  if (!r.stream && selected && names.includes(selected)) select(r, selected, signal);
  // A renewal changes no instance, so the stream says nothing of it: the
  // leases (TTL countdowns) are read again with the list.
  if (r.stream && selected && names.includes(selected)) {
    const name = selected;
    try {
      const view = await request(`${prefix()}/services/${encodeURIComponent(name)}`, { signal });
      if (name === selected) renderView(r, view);
    } catch (e) {
      if (!isAbort(e)) r.status.textContent = `lease refresh failed: ${messageOf(e)}`;
    }
  }
}

function renderServices(r, names, signal) {
  const same = names.length === r.names.length && names.every((n, i) => n === r.names[i]);
  r.names = names;
  if (same && r.services.childElementCount) return markSelected(r);
  const items = names.map((name) => {
    const button = el('button', { type: 'button', class: 'link-button' }, name);
    const li = el('li', { class: 'service', dataset: { service: name } }, button);
    li.addEventListener('click', () => select(r, name, signal));
    return li;
  });
  if (!items.length) items.push(el('li', { class: 'muted' }, 'No services registered.'));
  r.services.replaceChildren(...items);
  markSelected(r);
}

function markSelected(r) {
  for (const li of r.services.querySelectorAll('li.service')) {
    const on = li.dataset.service === selected;
    li.classList.toggle('selected', on);
    li.querySelector('button')?.setAttribute('aria-pressed', String(on));
  }
}

// Shows a service: its stream replaces the previous one.
function select(r, name, signal) {
  if (signal.aborted || (name === selected && r.stream)) return;
  selected = name;
  markSelected(r);
  r.stream?.abort();
  const controller = new AbortController();
  signal.addEventListener('abort', () => controller.abort(), { once: true });
  r.stream = controller;
  r.detail.hidden = false;
  r.title.textContent = `Instances of ${name}`;
  r.status.textContent = 'connecting…';
  r.instances.tBodies[0].replaceChildren();
  r.leases.clear();
  liveStream(`${prefix()}/services/${encodeURIComponent(name)}/events`, {
    signal: controller.signal,
    onOpen: () => { r.status.textContent = 'live'; clearError('registry'); },
    onEvent: (ev) => {
      if (ev.type !== 'instances' && ev.type !== 'message') return;
      try {
        renderView(r, JSON.parse(ev.data));
      } catch (e) {
        showError(`the registry sent an event that is not JSON: ${messageOf(e)}`, 'registry');
      }
    },
    onDrop: (e) => { r.status.textContent = `reconnecting… (${messageOf(e)})`; },
    onFail: (e) => {
      r.status.textContent = 'no live view';
      showError(messageOf(e), 'registry');
      if (r.stream === controller) r.stream = null;
    },
  });
}

function renderView(r, view) {
  const now = Date.now();
  const instances = Array.isArray(view?.instances) ? view.instances : [];
  const leases = view && typeof view.leases === 'object' && view.leases ? view.leases : {};
  r.leases.clear();
  const rows = instances.map((inst) => {
    const id = String(inst.id ?? '');
    const lease = leases[id];
    if (lease && typeof lease.expires_in_ms === 'number') {
      r.leases.set(id, { deadline: now + lease.expires_in_ms, ttl: lease.ttl_ms });
    }
    const enabled = inst.enabled !== false;
    const port = inst.port ?? inst.sslPort;
    const cells = {
      id,
      address: port === undefined || port === null ? show(inst.address) : `${show(inst.address)}:${port}`,
      health: enabled ? 'healthy' : 'disabled',
      registered: typeof inst.registrationTimeUTC === 'number' ? isoDate(inst.registrationTimeUTC) : show(inst.registrationTimeUTC),
      ttl: '',
      payload: inst.payload === undefined || inst.payload === null ? '' : compact(inst.payload),
    };
    const row = el('tr', { dataset: { instanceId: id } },
      COLUMNS.map(([key]) => el('td', { class: key }, cells[key])));
    row.querySelector('.health').classList.add(enabled ? 'ok' : 'warn');
    if (inst.sslPort) row.querySelector('.address').title = `TLS port ${inst.sslPort}`;
    if (inst.uriSpec) row.querySelector('.id').title = `uriSpec: ${compact(inst.uriSpec, 400)}`;
    return row;
  });
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: String(COLUMNS.length), class: 'muted' }, 'No instances.')));
  r.instances.tBodies[0].replaceChildren(...rows);
  const index = view?.index === undefined ? '' : ` · index ${view.index}`;
  r.status.textContent = `live · ${instances.length} instance${instances.length === 1 ? '' : 's'}${index}`;
  tickLeases(r);
}

// Counts each lease down from the last view; "held by another member" when
// this member does not hold it.
function tickLeases(r) {
  const now = Date.now();
  for (const row of r.instances.tBodies[0].rows) {
    const id = row.dataset.instanceId;
    if (id === undefined) continue;
    const cell = row.querySelector('.ttl');
    const lease = r.leases.get(id);
    if (!lease) {
      cell.textContent = 'held by another member';
      continue;
    }
    const left = lease.deadline - now;
    const of = typeof lease.ttl === 'number' ? ` of ${duration(lease.ttl)}` : '';
    cell.textContent = left > 0 ? `${duration(left)} left${of}` : 'lapsing';
    cell.classList.toggle('warn', left <= 5000);
  }
}

function compact(value, max = 120) {
  let text;
  try { text = typeof value === 'string' ? value : JSON.stringify(value); } catch { text = String(value); }
  return text.length > max ? text.slice(0, max) + '…' : text;
}
