// Small DOM helpers shared by the pages: building elements (text is always
// set as text, never parsed as HTML), the error banner, modal dialogs,
// polling, and formatting numbers, times and paths.

// el('a', {href: '#/x', class: 'link'}, 'text', child...) → an element.
// Strings become text nodes; null/false children and attributes are skipped.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  appendAll(node, children);
  return node;
}

const PROPS = new Set(['value', 'checked', 'disabled', 'selected', 'indeterminate']);

function setAttrs(node, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (PROPS.has(key)) node[key] = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
}

function appendAll(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(key, String(value));
  }
  appendAll(node, children);
  return node;
}

// A table in a horizontally scrolling box (keyboard-scrollable too).
export function tableWrap(table, label) {
  return el('div', { class: 'table-wrap', role: 'region', 'aria-label': label, tabindex: '0' }, table);
}

// Disables a control with the reason as its tooltip, or enables it.
export function setAllowed(button, allowed, why) {
  button.disabled = !allowed;
  if (allowed) button.removeAttribute('title');
  else button.title = why;
}

// ---- the error banner (#error) ----------------------------------------------

let errorSource = null;

// Shows a message in #error. `source` names who showed it, so that the same
// poller can clear its own error when it succeeds again.
export function showError(message, source = null) {
  const box = document.getElementById('error');
  const text = document.getElementById('error-text');
  if (!box || !text) return;
  text.textContent = String(message);
  box.hidden = false;
  errorSource = source;
}

// Clears #error: all of it, or only when it was shown by `source`.
export function clearError(source) {
  if (source !== undefined && source !== errorSource) return;
  const box = document.getElementById('error');
  const text = document.getElementById('error-text');
  if (text) text.textContent = '';
  if (box) box.hidden = true;
  errorSource = null;
}

// The message of anything thrown.
export function messageOf(error) {
  if (!error) return 'unknown error';
  return error.message || String(error);
}

// ---- dialogs -------------------------------------------------------------

const FOCUSABLE = 'a[href], button, input, select, textarea, [tabindex]:not([tabindex="-1"])';

function focusables(root) {
  return [...root.querySelectorAll(FOCUSABLE)]
    .filter((n) => !n.disabled && !n.hidden && n.getClientRects().length > 0);
}

// Opens a <dialog> modally: focus stays inside (Tab wraps), Escape closes it,
// and focus returns to what had it. onClose runs once when it closes.
export function openDialog(dialog, { onClose, focus } = {}) {
  const opener = document.activeElement;
  const onKey = (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      closeDialog(dialog);
    } else if (e.key === 'Tab') {
      const list = focusables(dialog);
      if (!list.length) return;
      const first = list[0];
      const last = list[list.length - 1];
      if (e.shiftKey && (document.activeElement === first || !dialog.contains(document.activeElement))) {
        e.preventDefault();
        last.focus();
      } else if (!e.shiftKey && (document.activeElement === last || !dialog.contains(document.activeElement))) {
        e.preventDefault();
        first.focus();
      }
    }
  };
  dialog.addEventListener('keydown', onKey);
  dialog.addEventListener('close', () => {
    dialog.removeEventListener('keydown', onKey);
    if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
    onClose?.();
  }, { once: true });
  if (typeof dialog.showModal === 'function') dialog.showModal();
  else dialog.setAttribute('open', '');
  const target = focus || focusables(dialog)[0];
  target?.focus();
}

export function closeDialog(dialog) {
  if (typeof dialog.close === 'function') {
    if (dialog.open) dialog.close();
  } else if (dialog.hasAttribute('open')) {
    dialog.removeAttribute('open');
    dialog.dispatchEvent(new Event('close'));
  }
}

// ---- timing ----------------------------------------------------------------

// Runs fn now and then `interval` ms after each run ends (a function: asked
// each time), until `signal` aborts. Skips runs while the tab is hidden and
// runs at once when it shows again. Returns a function that runs it now.
export function poll(fn, interval, signal) {
  let timer = null;
  let running = false;
  const run = async () => {
    clearTimeout(timer);
    if (running || signal.aborted) return;
    running = true;
    try {
      if (!document.hidden) await fn();
    } catch (e) {
      if (e?.name !== 'AbortError') console.error(e);
    } finally {
      running = false;
    }
    if (!signal.aborted) timer = setTimeout(run, typeof interval === 'function' ? interval() : interval);
  };
  signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
  document.addEventListener('visibilitychange', () => { if (!document.hidden) run(); }, { signal });
  run();
  return run;
}

export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

// ---- formatting ------------------------------------------------------------

export const DASH = '—';

export function show(value) {
  return value === undefined || value === null || value === '' ? DASH : String(value);
}

// 1234567 → "1,234,567"; 0.5 → "0.5"; null → "—".
export function fmtNumber(value, digits = 2) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return show(value);
  return value.toLocaleString('en-US', { maximumFractionDigits: digits });
}

// Wall milliseconds as an ISO date ("2024-05-01T12:00:00.000Z").
export function isoDate(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return show(ms);
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}

// A past wall time as "3 s ago", "5 min ago", "2 h ago".
export function ago(ms, now = Date.now()) {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) return DASH;
  const s = Math.round((now - ms) / 1000);
  if (s < 1) return 'just now';
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

// A duration in ms as "12 s", "4 min 3 s".
export function duration(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const h = Math.floor(m / 60);
  return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
}

// ---- znode paths -----------------------------------------------------------

export function joinPath(parent, name) {
  return parent === '/' ? '/' + name : parent + '/' + name;
}

export function parentOf(path) {
  const cut = path.lastIndexOf('/');
  return cut <= 0 ? '/' : path.slice(0, cut);
}

// "a//b/" → "/a/b"; "" → "/".
export function normalizePath(text) {
  const parts = String(text).trim().split('/').filter((p) => p !== '');
  return '/' + parts.join('/');
}

// Characters left as they are in a #/tree/ link; the rest are percent-encoded.
const HASH_SAFE = /[A-Za-z0-9\-._~!$&'()*+,;=:@]/;

function encodeSegment(segment) {
  let out = '';
  for (const ch of segment) out += HASH_SAFE.test(ch) ? ch : encodeURIComponent(ch);
  return out;
}

// The link of a znode's page: "/a/b" → "#/tree/a/b", "/" → "#/tree/".
export function treeHref(path) {
  return '#/tree' + (path === '/' ? '/' : path.split('/').map(encodeSegment).join('/'));
}

export function decodeSegment(segment) {
  try { return decodeURIComponent(segment); } catch { return segment; }
}
