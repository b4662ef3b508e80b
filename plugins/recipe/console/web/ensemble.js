// The ensemble page (#/ensemble): every member's role, zxid, lag and
// latency from api/ensemble, a quorum summary, the serving member's
// consensus state (/commands/consensus, when the caller may read it), and
// a reconfig form. Polled every 2 s while shown.

import { apiUrl, commandUrl, isAbort, request } from './api.js';
import {
  clearError, el, fmtNumber, messageOf, poll, show, showError, tableWrap,
} from './ui.js';

const INTERVAL_MS = 2000;
const COLUMNS = [
  ['id', 'ID'], ['type', 'Type'], ['mode', 'Mode'], ['client', 'Client address'], ['zxid', 'zxid'],
  ['epoch', 'Epoch'], ['lag', 'Lag'], ['latency', 'Latency ms (min/avg/max)'],
  ['outstanding', 'Outstanding'], ['connections', 'Connections'], ['znodes', 'znodes'],
];

export function mount(main, { signal }) {
  const r = {
    quorum: el('p', { id: 'quorum', class: 'quorum', role: 'status' }, 'Asking the members…'),
    config: el('span', { id: 'config-version', class: 'muted' }),
    members: el('table', { id: 'members', class: 'grid' },
      el('thead', {}, el('tr', {}, COLUMNS.map(([key, label]) => el('th', { scope: 'col', class: key }, label)))),
      el('tbody')),
    consensus: el('div', { id: 'consensus' }, el('p', { class: 'muted' }, 'Loading…')),
  };
  main.append(el('div', { class: 'page ensemble-page' },
    el('h1', {}, 'Ensemble'),
    r.quorum,
    el('section', { class: 'panel', 'aria-labelledby': 'members-heading' },
      el('div', { class: 'block-head' }, el('h2', { id: 'members-heading' }, 'Members'), r.config),
      tableWrap(r.members, 'Members'),
      el('p', { class: 'muted small' },
        'Lag: transactions behind the leader (same epoch only). Each member answers srvr on its client port.')),
    el('section', { class: 'panel', 'aria-labelledby': 'consensus-heading' },
      el('h2', { id: 'consensus-heading' }, 'Consensus on this server'), r.consensus),
    reconfigForm(signal)));

  poll(async () => {
    await Promise.all([loadMembers(r, signal), loadConsensus(r, signal)]);
  }, INTERVAL_MS, signal);
}

async function loadMembers(r, signal) {
  try {
    const view = await request(apiUrl('ensemble'), { signal });
    renderMembers(r, view || {});
    clearError('ensemble');
  } catch (e) {
    if (isAbort(e)) return;
    showError(messageOf(e), 'ensemble');
    r.quorum.textContent = `unknown: ${messageOf(e)}`;
    r.quorum.className = 'quorum warn';
  }
}

function leaderOf(view, members) {
  if (typeof view.leader === 'number' && members.some((m) => m.id === view.leader)) return view.leader;
  const m = members.find((x) => x.mode === 'leader' || x.mode === 'standalone');
  return m ? m.id : null;
}

// "quorum: 3 of 3 voters reachable, leader 2", or NO QUORUM.
export function quorumSummary(view) {
  const members = Array.isArray(view.members) ? view.members : [];
  const voters = members.filter((m) => m.type !== 'observer');
  const up = voters.filter((m) => m.reachable !== false);
  const observers = members.filter((m) => m.type === 'observer');
  const leader = leaderOf(view, members);
  const ok = voters.length > 0 && up.length > voters.length / 2;
  let text = ok
    ? `quorum: ${up.length} of ${voters.length} voters reachable, ${leader === null ? 'no leader' : `leader ${leader}`}`
    : `NO QUORUM: ${up.length} of ${voters.length} voters reachable`;
  if (observers.length) {
    const seen = observers.filter((m) => m.reachable !== false).length;
    text += ` (observers: ${seen} of ${observers.length} reachable)`;
  }
  return { text, ok };
}

function renderMembers(r, view) {
  const members = Array.isArray(view.members) ? view.members : [];
  const { text, ok } = quorumSummary(view);
  r.quorum.textContent = text;
  r.quorum.className = ok ? 'quorum ok' : 'quorum warn';
  r.config.textContent = view.config_version ? `configuration version ${view.config_version}` : '';
  const rows = members.map((m) => memberRow(m, m.id === view.self));
  if (!rows.length) {
    rows.push(el('tr', {}, el('td', { colspan: String(COLUMNS.length), class: 'muted' }, 'No members known.')));
  }
  r.members.tBodies[0].replaceChildren(...rows);
}

function memberRow(m, self) {
  const reachable = m.reachable !== false;
  const lat = m.latency_ms;
  const cells = {
    id: show(m.id),
    type: show(m.type),
    mode: reachable ? show(m.mode) : 'unreachable',
    client: show(m.client),
    zxid: show(m.zxid),
    epoch: show(m.epoch),
    lag: typeof m.lag === 'number' ? fmtNumber(m.lag, 0) : show(m.lag),
    latency: lat ? [lat.min, lat.avg, lat.max].map((v) => fmtNumber(v, 3)).join(' / ') : show(null),
    outstanding: fmtNumber(m.outstanding, 0),
    connections: fmtNumber(m.connections, 0),
    znodes: fmtNumber(m.znodes, 0),
  };
  const row = el('tr', {
    dataset: { memberId: String(m.id) },
    class: [self ? 'self' : '', reachable ? '' : 'down', m.mode === 'leader' ? 'leader' : ''].join(' ').trim(),
    'aria-current': self ? 'true' : null,
    title: self ? 'this server (serving the page)' : null,
  }, COLUMNS.map(([key]) => el(key === 'id' ? 'th' : 'td', { class: key, scope: key === 'id' ? 'row' : null }, cells[key])));
  if (m.error) row.querySelector('.mode').title = String(m.error);
  if (m.peer) row.querySelector('.client').title = `peer ${m.peer}`;
  return row;
}

// ---- /commands/consensus ---------------------------------------------------

async function loadConsensus(r, signal) {
  try {
    const c = await request(commandUrl('consensus'), { signal });
    renderConsensus(r.consensus, c || {});
  } catch (e) {
    if (isAbort(e)) return;
    const why = e.status === 401 || e.status === 403
      ? 'The consensus state needs a user with every permission on / (or four-letter words opened to all). '
      : e.status === 404 ? 'This server does not offer /commands/consensus. ' : '';
    r.consensus.replaceChildren(el('p', { class: 'note' }, why, el('span', { class: 'server-says' }, messageOf(e))));
  }
}

function renderConsensus(box, c) {
  const items = [
    ['role', show(c.role)],
    ['leader', show(c.leader_id)],
    ['elections', show(c.elections)],
    ['last election', typeof c.last_election_ms === 'number' ? `last election took ${c.last_election_ms} ms` : show(null)],
    ['epochs', `accepted ${show(c.accepted_epoch)}, current ${show(c.current_epoch)}`],
    ['last logged zxid', show(c.last_logged_zxid)],
    ['last committed zxid', show(c.last_committed_zxid)],
    ['last applied zxid', show(c.last_applied_zxid)],
    ['pending proposals', show(c.pending_proposals)],
    ['plugins', [c.plugin, c.election].filter(Boolean).join(', ') || show(null)],
  ];
  const list = el('dl', { class: 'facts' }, items.flatMap(([k, v]) => [el('dt', {}, k), el('dd', { dataset: { fact: k } }, v)]));
  const parts = [list];
  if (Array.isArray(c.learners) && c.learners.length) {
    const table = el('table', { id: 'learners', class: 'grid' },
      el('thead', {}, el('tr', {}, ['learner', 'observer', 'synced', 'last acked zxid', 'stage'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, c.learners.map((l) => el('tr', { dataset: { learnerId: String(l.id) } },
        el('th', { scope: 'row' }, show(l.id)),
        el('td', {}, l.observer ? 'yes' : 'no'),
        el('td', { class: l.synced ? 'ok' : 'warn' }, l.synced ? 'synced' : 'not synced'),
        el('td', {}, show(l.last_acked_zxid)),
        el('td', {}, show(l.stage))))));
    parts.push(el('h3', {}, 'Learners'), tableWrap(table, 'Learners'));
  }
  box.replaceChildren(...parts);
}

// ---- reconfig --------------------------------------------------------------

function reconfigForm(signal) {
  const joining = el('input', {
    id: 'reconfig-joining', type: 'text', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'server.4=10.0.0.4:2888:3888:participant;2181',
  });
  const leaving = el('input', { id: 'reconfig-leaving', type: 'text', autocomplete: 'off', placeholder: '4,5' });
  const submit = el('button', { id: 'reconfig-submit', type: 'submit', class: 'primary' }, 'Reconfigure');
  const result = el('div', { id: 'reconfig-result', role: 'status' });
  const form = el('form', { id: 'reconfig-form', class: 'panel', 'aria-labelledby': 'reconfig-heading' },
    el('h2', { id: 'reconfig-heading' }, 'Reconfigure'),
    el('p', { class: 'muted small' },
      'ZooKeeper’s incremental reconfig, as you: it needs rights on /zookeeper/config. Several servers: separate them with commas.'),
    el('label', { class: 'field', for: 'reconfig-joining' }, 'Joining'), joining,
    el('label', { class: 'field', for: 'reconfig-leaving' }, 'Leaving (server ids)'), leaving,
    el('div', { class: 'button-row' }, submit), result);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { joining: joining.value.trim(), leaving: leaving.value.trim(), version: -1 };
    if (!body.joining && !body.leaving) {
      result.replaceChildren(el('p', { class: 'message' }, 'Say who is joining or leaving.'));
      return;
    }
    submit.disabled = true;
    result.replaceChildren(el('p', { class: 'muted' }, 'Reconfiguring…'));
    try {
      const answer = await request(apiUrl('reconfig'), { method: 'POST', json: body, signal });
      clearError();
      result.replaceChildren(el('p', {}, 'The new configuration:'), el('pre', { class: 'data' }, show(answer?.config)));
    } catch (err) {
      if (isAbort(err)) return;
      result.replaceChildren(el('p', { class: 'message' }, 'Refused.'));
      showError(messageOf(err));
    } finally {
      submit.disabled = false;
    }
  }, { signal });
  return form;
}
