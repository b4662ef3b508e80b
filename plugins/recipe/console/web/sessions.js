// The sessions page (#/sessions): this server's connections and sessions
// (/commands/connections) and its watches, by path or by session
// (/commands/watch_summary, watches_by_path, watches). These admin commands
// need a user with every permission on /; a refusal is explained in the
// page rather than in the error banner. Refreshed every 5 s.

import { commandUrl, isAbort, request } from './api.js';
import { DASH, ago, el, fmtNumber, messageOf, poll, show, tableWrap } from './ui.js';

const INTERVAL_MS = 5000;
const MAX_WATCH_ITEMS = 1000;  // entries of a watch list drawn at once
const COLUMNS = [
  ['session', 'Session'], ['remote', 'Remote address'], ['timeout', 'Timeout ms'],
  ['outstanding', 'Outstanding'], ['received', 'Packets received'], ['sent', 'Packets sent'],
  ['activity', 'Last activity'],
];

let watchMode = 'path';  // which list shows: 'path' or 'session'; kept across visits

export function mount(main, { signal }) {
  const r = {
    connNote: el('div', { id: 'sessions-note', class: 'note', hidden: true }),
    table: el('table', { id: 'sessions-table', class: 'grid' },
      el('thead', {}, el('tr', {}, COLUMNS.map(([key, label]) => el('th', { scope: 'col', class: key }, label)))),
      el('tbody')),
    count: el('span', { class: 'muted', id: 'sessions-count' }),
    summary: el('p', { id: 'watch-summary' }),
    watchNote: el('div', { id: 'watches-note', class: 'note', hidden: true }),
    byPath: el('ul', { id: 'watches-by-path', class: 'watch-list' }),
    bySession: el('ul', { id: 'watches-by-session', class: 'watch-list' }),
    filter: el('input', { id: 'watches-filter', type: 'search', placeholder: 'path or session contains…', autocomplete: 'off' }),
    toggle: {
      path: el('button', { type: 'button', id: 'watches-show-path', 'aria-pressed': 'true' }, 'By path'),
      session: el('button', { type: 'button', id: 'watches-show-session', 'aria-pressed': 'false' }, 'By session'),
    },
    data: { path: null, session: null },
    truncated: { path: false, session: false },
  };
  main.append(el('div', { class: 'page sessions-page' },
    el('h1', {}, 'Sessions'),
    el('section', { class: 'panel', 'aria-labelledby': 'conn-heading' },
      el('div', { class: 'block-head' }, el('h2', { id: 'conn-heading' }, 'Connections on this server'), r.count),
      r.connNote, tableWrap(r.table, 'Connections')),
    el('section', { class: 'panel', 'aria-labelledby': 'watch-heading' },
      el('h2', { id: 'watch-heading' }, 'Watches'),
      r.summary, r.watchNote,
      el('div', { class: 'toolbar' },
        el('div', { class: 'segmented', role: 'group', 'aria-label': 'Show watches' }, r.toggle.path, r.toggle.session),
        el('label', { class: 'inline' }, 'Filter ', r.filter)),
      r.byPath, r.bySession)));

  const refresh = poll(() => loadAll(r, signal), INTERVAL_MS, signal);
  for (const mode of ['path', 'session']) {
    r.toggle[mode].addEventListener('click', () => {
      watchMode = mode;
      showMode(r);
      refresh();
    }, { signal });
  }
  r.filter.addEventListener('input', () => renderWatches(r), { signal });
  showMode(r);
}

function showMode(r) {
  r.toggle.path.setAttribute('aria-pressed', String(watchMode === 'path'));
  r.toggle.session.setAttribute('aria-pressed', String(watchMode === 'session'));
  r.byPath.hidden = watchMode !== 'path';
  r.bySession.hidden = watchMode !== 'session';
}

// A refusal explained in the page: who may read these, and what the server said.
function explain(box, what, e) {
  const lead = e.status === 401 || e.status === 403
    ? `${what} needs a user with every permission on / (cdrwa), unless the server opens its four-letter words to all. `
    : e.status === 404 ? `This server does not offer ${what}. ` : `${what} could not be read. `;
  box.replaceChildren(el('span', {}, lead), el('span', { class: 'server-says' }, messageOf(e)));
  box.hidden = false;
}

async function loadAll(r, signal) {
  const wanted = watchMode === 'path' ? 'watches_by_path' : 'watches';
  await Promise.all([
    loadConnections(r, signal),
    loadSummary(r, signal),
    loadWatches(r, signal, wanted),
  ]);
}

async function loadConnections(r, signal) {
  try {
    const answer = await request(commandUrl('connections'), { signal });
    r.connNote.hidden = true;
    renderConnections(r, Array.isArray(answer?.connections) ? answer.connections : []);
  } catch (e) {
    if (isAbort(e)) return;
    explain(r.connNote, 'The list of connections', e);
    r.table.tBodies[0].replaceChildren();
    r.count.textContent = '';
  }
}

function renderConnections(r, list) {
  const now = Date.now();
  const rows = list.map((c) => {
    const id = c.session_id === undefined || c.session_id === null ? '' : String(c.session_id);
    const cells = {
      session: id || '(no session yet)',
      remote: show(c.remote_socket_address),
      timeout: fmtNumber(c.session_timeout, 0),
      outstanding: fmtNumber(c.outstanding_requests, 0),
      received: fmtNumber(c.packets_received, 0),
      sent: fmtNumber(c.packets_sent, 0),
      activity: typeof c.last_activity === 'number' ? ago(c.last_activity, now) : DASH,
    };
    const row = el('tr', { dataset: { sessionId: id } },
      COLUMNS.map(([key]) => el('td', { class: key }, cells[key])));
    if (typeof c.last_activity === 'number') row.querySelector('.activity').title = new Date(c.last_activity).toISOString();
    return row;
  });
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: String(COLUMNS.length), class: 'muted' }, 'No connections.')));
  r.table.tBodies[0].replaceChildren(...rows);
  const sessions = list.filter((c) => c.session_id).length;
  r.count.textContent = `${list.length} connection${list.length === 1 ? '' : 's'}, ${sessions} with a session`;
}

async function loadSummary(r, signal) {
  try {
    const s = await request(commandUrl('watch_summary'), { signal });
    r.summary.textContent = `${fmtNumber(s?.num_total_watches, 0)} watches on ${fmtNumber(s?.num_paths, 0)} paths `
      + `from ${fmtNumber(s?.num_connections, 0)} connections`;
  } catch (e) {
    if (isAbort(e)) return;
    r.summary.textContent = '';
  }
}

// The map a watch command answers with, whichever name it goes by.
function watchMap(answer, keys) {
  for (const key of keys) {
    if (answer && typeof answer[key] === 'object' && answer[key] !== null) return answer[key];
  }
  return {};
}

async function loadWatches(r, signal, command) {
  try {
    const answer = await request(commandUrl(command), { signal });
    const mode = command === 'watches_by_path' ? 'path' : 'session';
    r.data[mode] = mode === 'path'
      ? watchMap(answer, ['watches_by_path', 'path_to_session_ids'])
      : watchMap(answer, ['watches', 'session_id_to_watched_paths']);
    r.truncated[mode] = answer?.truncated === true;
    r.watchNote.hidden = true;
    renderWatches(r);
  } catch (e) {
    if (isAbort(e)) return;
    explain(r.watchNote, `/commands/${command}`, e);
    (command === 'watches_by_path' ? r.byPath : r.bySession).replaceChildren();
  }
}

function renderWatches(r) {
  const needle = r.filter.value.trim();
  const draw = (list, map, label, truncated) => {
    if (!map) return;
    const keys = Object.keys(map).sort();
    const fragment = document.createDocumentFragment();
    let drawn = 0;
    let matched = 0;
    for (const key of keys) {
      const values = Array.isArray(map[key]) ? map[key].map(String) : [String(map[key])];
      if (needle && !key.includes(needle) && !values.some((v) => v.includes(needle))) continue;
      matched++;
      if (drawn >= MAX_WATCH_ITEMS) continue;
      drawn++;
      fragment.append(el('li', { dataset: { key } },
        el('code', { class: 'key' }, key),
        el('span', { class: 'muted' }, ` ${values.length} ${label}`),
        el('ul', {}, values.map((v) => el('li', {}, el('code', {}, v))))));
    }
    if (!matched) fragment.append(el('li', { class: 'muted' }, needle ? 'Nothing matches.' : 'No watches.'));
    if (matched > drawn) fragment.append(el('li', { class: 'muted' }, `… and ${matched - drawn} more (filter to narrow)`));
    if (truncated) fragment.append(el('li', { class: 'muted' }, 'The server listed only part of its watches (too many to list).'));
    list.replaceChildren(fragment);
  };
  draw(r.byPath, r.data.path, 'session(s)', r.truncated.path);
  draw(r.bySession, r.data.session, 'path(s)', r.truncated.session);
}
