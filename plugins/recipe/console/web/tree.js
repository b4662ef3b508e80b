// The tree page (#/tree/<path>): one znode with its stat, data (text, JSON
// or hex), editor and ACL; its children, paged and filtered by the server;
// create and delete dialogs; and a live stream that re-reads the znode when
// it changes. What the caller's rights forbid is disabled with the reason.

import {
  apiUrl, base64ToBytes, isAbort, liveStream, request, textToBase64,
} from './api.js';
import {
  clearError, closeDialog, debounce, el, isoDate, joinPath, messageOf, normalizePath,
  openDialog, parentOf, setAllowed, showError, tableWrap, treeHref,
} from './ui.js';

const PAGE = 200;         // children per page
const MAX_LIMIT = 1000;   // children asked for at once when reloading loaded pages
const HEX_LIMIT = 262144; // bytes shown by the hex view
const STAT_FIELDS = ['czxid', 'mzxid', 'pzxid', 'ctime', 'mtime', 'version', 'cversion',
  'aversion', 'ephemeralOwner', 'dataLength', 'numChildren'];
const PERMS = [['c', 'create'], ['d', 'delete'], ['r', 'read'], ['w', 'write'], ['a', 'admin']];
const SCHEMES = ['world', 'auth', 'digest', 'ip', 'sasl', 'x509'];
const ID_HINTS = {
  world: 'anyone', auth: '(empty: the caller’s identities)', digest: 'user:base64(sha1(user:password))',
  ip: '10.0.0.0/8', sasl: 'user', x509: 'CN=client,O=example',
};
const MODES = ['persistent', 'ephemeral', 'persistent_sequential', 'ephemeral_sequential',
  'container', 'ttl', 'ttl_sequential'];
const LACKS = {
  w: 'your identities lack WRITE on this node',
  c: 'your identities lack CREATE on this node',
  a: 'your identities lack ADMIN on this node',
  parentD: 'your identities lack DELETE on the parent node',
};

let dataView = 'text';     // the data view chosen last, kept from znode to znode
let carriedNotice = null;  // a message for the next tree page (after a delete)

export function mount(main, { arg, signal }) {
  new TreePage(main, arg || '/', signal).start();
}

function matchingOf(answer) {
  if (typeof answer.children_matching === 'number') return answer.children_matching;
  if (typeof answer.children_total === 'number') return answer.children_total;
  return (answer.children || []).length;
}

function plural(n, one, many) {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}

// A classic hexdump: offset, 16 bytes in hex, the printable ones as text.
export function hexdump(bytes, limit = HEX_LIMIT) {
  const n = Math.min(bytes.length, limit);
  const lines = [];
  for (let off = 0; off < n; off += 16) {
    let hex = '';
    let ascii = '';
    for (let i = 0; i < 16; i++) {
      if (i === 8) hex += ' ';
      if (off + i < n) {
        const b = bytes[off + i];
        hex += b.toString(16).padStart(2, '0') + ' ';
        ascii += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.';
      } else {
        hex += '   ';
      }
    }
    lines.push(`${off.toString(16).padStart(8, '0')}  ${hex} |${ascii}|`);
  }
  lines.push(n.toString(16).padStart(8, '0'));
  if (bytes.length > n) lines.push(`… ${bytes.length - n} more bytes not shown`);
  return lines.join('\n');
}

function decodeUtf8(bytes) {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  let valid = true;
  try { new TextDecoder('utf-8', { fatal: true }).decode(bytes); } catch { valid = false; }
  return { text, valid };
}

class TreePage {
  constructor(main, path, signal) {
    this.main = main;
    this.path = path;
    this.signal = signal;
    this.node = null;          // the last answer for the znode itself (offset 0)
    this.bytes = new Uint8Array(0);
    this.text = '';
    this.validUtf8 = true;
    this.names = [];           // children loaded so far
    this.matching = 0;
    this.total = 0;
    this.filter = '';
    this.seq = 0;              // bumped by each reload of the list from its start
    this.reloading = false;    // a reload of the list is under way
    this.morePending = false;  // "Load more" asked for while it was: it loads one page more
    this.loadingMore = null;   // the seq a "Load more" in flight started under
    this.moreInView = false;
    this.editBase = null;      // {text, version} the editor started from
    this.aclBase = null;       // the aversion the ACL editor started from
    this.parentRights = undefined;
    this.gone = false;
    this.busy = false;
    this.refreshTimer = null;
    this.flashTimer = null;
    this.flashUntil = 0;
    this.refreshing = false;
    this.refreshAgain = false;
    this.r = {};
  }

  start() {
    this.build();
    this.signal.addEventListener('abort', () => {
      clearTimeout(this.refreshTimer);
      clearTimeout(this.flashTimer);
    }, { once: true });
    if (carriedNotice) {
      this.flash(carriedNotice, 6000);
      carriedNotice = null;
    }
    this.load(PAGE)
      .then((ok) => { if (ok) this.loadParentRights(); })
      .catch((e) => this.loadFailed(e));
    this.startStream();
  }

  // ---- layout --------------------------------------------------------------

  build() {
    const r = this.r;
    const on = (node, type, fn) => node.addEventListener(type, fn, { signal: this.signal });

    r.pathInput = el('input', {
      id: 'path-input', type: 'text', value: this.path, 'aria-label': 'Path of a znode',
      autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false', placeholder: '/path/to/znode',
    });
    r.pathForm = el('form', { id: 'path-form', class: 'path-bar', role: 'search' },
      r.pathInput, el('button', { id: 'path-go', type: 'submit' }, 'Go'));
    on(r.pathForm, 'submit', (e) => { e.preventDefault(); this.goTo(r.pathInput.value); });

    r.children = el('ul', { id: 'children', class: 'children' });
    r.more = el('button', { id: 'children-more', type: 'button', class: 'more', hidden: true }, 'Load more');
    r.childBox = el('div', { class: 'children-box' }, r.children, r.more);
    r.childCount = el('span', { id: 'children-count', class: 'muted' });
    r.childEmpty = el('p', { class: 'muted empty', hidden: true });
    r.filter = el('input', {
      id: 'children-filter', type: 'search', placeholder: 'name contains…', autocomplete: 'off',
      spellcheck: 'false',
    });
    on(r.more, 'click', () => this.loadMore());
    const refilter = debounce(() => this.setFilter(r.filter.value), 250);
    on(r.filter, 'input', refilter);
    this.signal.addEventListener('abort', refilter.cancel);
    this.observeMore();

    const childPanel = el('section', { class: 'panel children-panel', 'aria-labelledby': 'children-heading' },
      el('div', { class: 'panel-head' }, el('h2', { id: 'children-heading' }, 'Children'), r.childCount),
      el('label', { class: 'field' }, el('span', {}, 'Filter children'), r.filter),
      r.childBox, r.childEmpty);

    const nodePanel = el('section', { class: 'panel node-panel', 'aria-labelledby': 'node-path' },
      this.buildHead(), this.buildStat(), this.buildData(), this.buildEditor(), this.buildAcl());

    this.main.append(el('div', { class: 'page tree-page' },
      r.pathForm, this.buildBreadcrumbs(),
      el('div', { class: 'tree-layout' }, childPanel, nodePanel),
      this.buildCreateDialog(), this.buildConfirmDialog()));
  }

  buildBreadcrumbs() {
    const list = el('ol');
    const names = this.path.split('/').filter(Boolean);
    const crumb = (label, path, last) => el('li', {},
      last ? el('span', { 'aria-current': 'page' }, label) : el('a', { href: treeHref(path) }, label));
    list.append(crumb('/', '/', names.length === 0));
    let at = '/';
    names.forEach((name, i) => {
      at = joinPath(at, name);
      list.append(crumb(name, at, i === names.length - 1));
    });
    return el('nav', { id: 'breadcrumbs', class: 'breadcrumbs', 'aria-label': 'Ancestors' }, list);
  }

  buildHead() {
    const r = this.r;
    r.nodePath = el('h1', { id: 'node-path', class: 'node-path', tabindex: '-1', 'data-focus-target': '' }, this.path);
    r.flash = el('span', { id: 'node-flash', class: 'flash', role: 'status', 'aria-live': 'polite' });
    r.live = el('span', { id: 'live-status', class: 'live-status muted', title: 'live updates' }, 'connecting…');
    r.rights = el('span', { id: 'node-rights', class: 'muted' });
    r.createOpen = el('button', { id: 'create-open', type: 'button' }, 'New znode…');
    r.deleteNode = el('button', { id: 'delete-node', type: 'button', class: 'danger' }, 'Delete…');
    r.notice = el('div', { id: 'node-notice', class: 'notice', role: 'status', hidden: true });
    r.createOpen.addEventListener('click', () => this.openCreate(), { signal: this.signal });
    r.deleteNode.addEventListener('click', () => this.openConfirm(), { signal: this.signal });
    return el('div', { class: 'node-head' },
      el('div', { class: 'title-row' }, r.nodePath, r.flash),
      el('div', { class: 'meta-row' }, r.live, r.rights),
      el('div', { class: 'actions' }, r.createOpen, r.deleteNode),
      r.notice);
  }

  buildStat() {
    this.r.stat = el('table', { id: 'node-stat', class: 'kv' }, el('tbody'));
    return el('section', { class: 'block', 'aria-labelledby': 'stat-heading' },
      el('h2', { id: 'stat-heading' }, 'Stat'), tableWrap(this.r.stat, 'Stat'));
  }

  buildData() {
    const r = this.r;
    r.view = el('select', { id: 'data-view' },
      ['text', 'json', 'hex'].map((v) => el('option', { value: v, selected: v === dataView }, v)));
    r.data = el('pre', { id: 'node-data', class: 'data', tabindex: '0', 'aria-label': 'Data' });
    r.dataHint = el('p', { id: 'data-hint', class: 'muted' });
    r.view.addEventListener('change', () => { dataView = r.view.value; this.renderData(); }, { signal: this.signal });
    return el('section', { class: 'block', 'aria-labelledby': 'data-heading' },
      el('div', { class: 'block-head' }, el('h2', { id: 'data-heading' }, 'Data'),
        el('label', { class: 'inline' }, 'View as ', r.view)),
      r.data, r.dataHint);
  }

  buildEditor() {
    const r = this.r;
    r.edit = el('textarea', { id: 'edit-data', rows: '8', spellcheck: 'false', autocapitalize: 'off' });
    r.version = el('span', { id: 'node-version' });
    r.save = el('button', { id: 'save-data', type: 'button', class: 'primary' }, 'Save');
    r.revert = el('button', { id: 'edit-revert', type: 'button' }, 'Revert');
    r.editMsg = el('span', { id: 'edit-message', class: 'message', role: 'status' });
    const on = (node, type, fn) => node.addEventListener(type, fn, { signal: this.signal });
    on(r.save, 'click', () => this.save());
    on(r.revert, 'click', () => this.revert());
    on(r.edit, 'keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); if (!r.save.disabled) this.save(); }
    });
    return el('section', { class: 'block', 'aria-labelledby': 'edit-heading' },
      el('h2', { id: 'edit-heading' }, 'Edit'),
      el('label', { class: 'field', for: 'edit-data' }, 'Data as text (UTF-8); Ctrl+Enter saves'),
      r.edit,
      el('div', { class: 'button-row' }, r.save, r.revert,
        el('span', { class: 'muted' }, 'based on version ', r.version), r.editMsg));
  }

  buildAcl() {
    const r = this.r;
    r.aclHead = el('tr', {}, el('th', { scope: 'col' }, 'scheme'), el('th', { scope: 'col' }, 'id'),
      el('th', { scope: 'col' }, 'perms'));
    r.aclBody = el('tbody');
    r.acl = el('table', { id: 'node-acl', class: 'grid' }, el('thead', {}, r.aclHead), r.aclBody);
    r.aclEdit = el('button', { id: 'acl-edit', type: 'button' }, 'Edit ACL');
    r.aclAdd = el('button', { id: 'acl-add', type: 'button', hidden: true }, 'Add entry');
    r.aclSave = el('button', { id: 'acl-save', type: 'button', class: 'primary', hidden: true }, 'Save ACL');
    r.aclCancel = el('button', { id: 'acl-cancel', type: 'button', hidden: true }, 'Cancel');
    r.aclMsg = el('span', { id: 'acl-message', class: 'message', role: 'status' });
    r.aclVersion = el('span', { class: 'muted' });
    const on = (node, type, fn) => node.addEventListener(type, fn, { signal: this.signal });
    on(r.aclEdit, 'click', () => this.startAclEdit());
    on(r.aclAdd, 'click', () => {
      const row = this.aclEditRow({ scheme: 'world', id: 'anyone', perms: 'r' });
      r.aclBody.append(row);
      row.querySelector('select').focus();
    });
    on(r.aclSave, 'click', () => this.saveAcl());
    on(r.aclCancel, 'click', () => this.stopAclEdit());
    return el('section', { class: 'block', 'aria-labelledby': 'acl-heading' },
      el('div', { class: 'block-head' }, el('h2', { id: 'acl-heading' }, 'ACL'), r.aclVersion),
      tableWrap(r.acl, 'ACL'),
      el('div', { class: 'button-row' }, r.aclEdit, r.aclAdd, r.aclSave, r.aclCancel, r.aclMsg));
  }

  // ---- loading -------------------------------------------------------------

  fetchNode(offset, limit, path = this.path) {
    const params = { path, offset, limit };
    if (path === this.path && this.filter) params.filter = this.filter;
    return request(apiUrl('node', params), { signal: this.signal });
  }

  // Reads the znode and its first `want` children (several requests when the
  // server's page is smaller); false when a newer load overtook this one.
  // A "Load more" that comes while it runs adds a page to what it loads
  // (the reload replaces the list, so a page appended meanwhile would be
  // lost).
  async load(want, { keepScroll = false } = {}) {
    const seq = ++this.seq;
    this.reloading = true;
    let shown = false;
    try {
      const target = () => want + (this.morePending ? PAGE : 0);
      const first = await this.fetchNode(0, Math.min(target(), MAX_LIMIT));
      let names = first.children || [];
      const matching = matchingOf(first);
      while (seq === this.seq && names.length < target() && names.length < matching) {
        const more = await this.fetchNode(names.length, Math.min(target() - names.length, MAX_LIMIT));
        if (seq !== this.seq) return false;
        const got = more.children || [];
        if (!got.length) break;
        names = names.concat(got);
      }
      if (seq !== this.seq || this.signal.aborted) return false;
      this.gone = false;
      this.showNode(first);
      this.showChildren(names, first, keepScroll);
      shown = true;
      return true;
    } finally {
      if (seq === this.seq) {
        const asked = this.morePending;
        this.reloading = false;
        this.morePending = false;  // loaded, or the reload failed and shows why
        this.r.more.disabled = false;
        this.updateChildCount();
        // Still in view (a tall list box): keep filling it, as loadMore does.
        if (shown && asked && this.moreInView && !this.signal.aborted) setTimeout(() => this.loadMore(), 0);
      }
    }
  }

  // Whether a "Load more" of the list shown now is in flight (one that a
  // reload overtook no longer counts: its page is dropped when it comes).
  moreInFlight() {
    return this.loadingMore !== null && this.loadingMore === this.seq;
  }

  loadFailed(e) {
    if (isAbort(e)) return;
    showError(messageOf(e));
    if (e.status === 404) this.markGone();
    else this.r.rights.textContent = '';
    this.updateRights();
  }

  async loadParentRights() {
    if (this.path === '/') return;
    try {
      const parent = await request(apiUrl('node', { path: parentOf(this.path), limit: 0 }), { signal: this.signal });
      this.parentRights = typeof parent?.rights === 'string' ? parent.rights : undefined;
    } catch {
      this.parentRights = undefined;  // unknown: the server decides
    }
    this.updateRights();
  }

  // The znode no longer exists (or never did).
  markGone() {
    this.gone = true;
    const parent = parentOf(this.path);
    this.r.notice.replaceChildren(
      el('span', {}, 'This znode does not exist (any more). '),
      this.path === '/' ? null : el('a', { href: treeHref(parent) }, `Go to ${parent}`));
    this.r.notice.hidden = false;
    this.updateRights();
  }

  goTo(text) {
    const path = normalizePath(text);
    if (path === this.path) this.scheduleRefresh(0);
    else location.hash = treeHref(path);
  }

  // ---- children ------------------------------------------------------------

  childItem(name) {
    return el('li', { class: 'child', dataset: { name } },
      el('a', { href: treeHref(joinPath(this.path, name)) }, name));
  }

  showChildren(names, answer, keepScroll) {
    const { children, childBox } = this.r;
    const top = childBox.scrollTop;
    const focused = children.contains(document.activeElement)
      ? document.activeElement.closest('li')?.dataset.name : undefined;
    const fragment = document.createDocumentFragment();
    for (const name of names) fragment.append(this.childItem(name));
    children.replaceChildren(fragment);
    this.names = names;
    this.total = typeof answer.children_total === 'number' ? answer.children_total : names.length;
    this.matching = matchingOf(answer);
    childBox.scrollTop = keepScroll ? top : 0;
    if (focused !== undefined) {
      const again = [...children.children].find((li) => li.dataset.name === focused);
      again?.querySelector('a')?.focus();
    }
    this.updateChildCount();
  }

  async loadMore() {
    if (this.reloading) {
      // The reload under way loads the page (fetching it here could land
      // before the reload and be replaced by it).
      this.morePending = true;
      this.r.more.disabled = true;
      this.r.more.textContent = 'Loading…';
      return;
    }
    if (this.moreInFlight() || this.names.length >= this.matching) return;
    const seq = this.seq;
    this.loadingMore = seq;
    const offset = this.names.length;
    const { more, children } = this.r;
    more.disabled = true;
    more.textContent = 'Loading…';
    let ok = false;
    try {
      const answer = await this.fetchNode(offset, PAGE);
      // A reload overtook it (and loads this page too), or the list is no
      // longer the one this page continues.
      if (seq !== this.seq || this.names.length !== offset) return;
      const got = answer.children || [];
      const fragment = document.createDocumentFragment();
      for (const name of got) fragment.append(this.childItem(name));
      children.append(fragment);
      this.names = this.names.concat(got);
      this.total = typeof answer.children_total === 'number' ? answer.children_total : this.total;
      this.matching = got.length ? matchingOf(answer) : this.names.length;
      ok = true;
    } catch (e) {
      if (!isAbort(e)) showError(messageOf(e));
    } finally {
      if (this.loadingMore === seq) this.loadingMore = null;
      if (seq === this.seq) {  // (else the reload that overtook it owns the button)
        more.disabled = false;
        this.updateChildCount();
      }
    }
    // Still in view (a tall list box): keep filling it. (Not after a
    // failure: the button is there to try again.)
    if (ok && this.moreInView && seq === this.seq && !this.signal.aborted) setTimeout(() => this.loadMore(), 0);
  }

  // Loads the next page when "Load more" scrolls into view.
  observeMore() {
    if (typeof IntersectionObserver !== 'function') return;
    const observer = new IntersectionObserver((entries) => {
      this.moreInView = entries.some((e) => e.isIntersecting);
      if (this.moreInView && !this.r.more.hidden) this.loadMore();
    }, { root: this.r.childBox, rootMargin: '0px 0px 120px 0px' });
    observer.observe(this.r.more);
    this.signal.addEventListener('abort', () => observer.disconnect(), { once: true });
  }

  setFilter(value) {
    if (value === this.filter) return;
    this.filter = value;
    this.morePending = false;  // it asked for more of the list this one replaces
    this.load(PAGE).catch((e) => { if (!isAbort(e)) showError(messageOf(e)); });
  }

  updateChildCount() {
    const { childCount, more, childEmpty } = this.r;
    const shown = this.names.length;
    let text = this.filter
      ? `${this.matching.toLocaleString('en-US')} of ${plural(this.total, 'child', 'children')} match`
      : plural(this.total, 'child', 'children');
    if (shown < this.matching) text += ` (${shown.toLocaleString('en-US')} shown)`;
    childCount.textContent = text;
    const left = this.matching - shown;
    more.hidden = left <= 0;
    if (!this.moreInFlight() && !this.morePending) more.textContent = `Load ${Math.min(PAGE, left).toLocaleString('en-US')} more`;
    childEmpty.hidden = shown > 0;
    childEmpty.textContent = this.filter ? 'No children match.' : 'No children.';
  }

  // ---- the znode -----------------------------------------------------------

  showNode(answer) {
    this.node = answer;
    const stat = answer.stat || {};
    this.r.nodePath.textContent = answer.path || this.path;
    try {
      this.bytes = base64ToBytes(answer.data_b64);
    } catch {
      this.bytes = new Uint8Array(0);
      showError('the server sent data that is not base64');
    }
    ({ text: this.text, valid: this.validUtf8 } = decodeUtf8(this.bytes));
    this.renderStat(stat);
    this.renderData();
    this.syncEditor(stat.version);
    if (this.aclBase === null) this.renderAcl(answer.acl);
    this.r.aclVersion.textContent = stat.aversion === undefined ? '' : `version ${stat.aversion}`;
    this.r.rights.textContent = typeof answer.rights === 'string'
      ? `your rights: ${answer.rights || 'none'}` : 'your rights: unknown (the ACL is not readable)';
    this.updateRights();
  }

  renderStat(stat) {
    const keys = STAT_FIELDS.filter((k) => k in stat)
      .concat(Object.keys(stat).filter((k) => !STAT_FIELDS.includes(k)));
    const rows = keys.map((key) => {
      const value = stat[key];
      const td = el('td', {}, key === 'ctime' || key === 'mtime' ? isoDate(value) : String(value));
      if ((key === 'ctime' || key === 'mtime') && typeof value === 'number') {
        td.title = `${new Date(value).toLocaleString()} (${value})`;
      }
      return el('tr', { dataset: { field: key } }, el('th', { scope: 'row' }, key), td);
    });
    this.r.stat.tBodies[0].replaceChildren(...rows);
  }

  renderData() {
    const { data, dataHint, view } = this.r;
    let out;
    data.classList.remove('invalid');
    if (view.value === 'hex') {
      out = hexdump(this.bytes);
    } else if (view.value === 'json') {
      try {
        out = JSON.stringify(JSON.parse(this.text), null, 2);
      } catch (e) {
        out = `not valid JSON: ${e.message}`;
        data.classList.add('invalid');
      }
    } else {
      out = this.text;
    }
    data.textContent = out;
    const n = this.bytes.length;
    let hint = n === 0 ? 'No data.' : plural(n, 'byte', 'bytes') + '.';
    if (!this.validUtf8) {
      hint += ' Not valid UTF-8: the text shows replacement characters and saving from the editor writes text; the hex view shows the bytes.';
    }
    dataHint.textContent = hint;
  }

  // The editor follows the server unless the user has changed its text.
  syncEditor(version) {
    const { edit, notice } = this.r;
    const dirty = this.editBase !== null && edit.value !== this.editBase.text;
    if (!dirty) {
      edit.value = this.text;
      this.editBase = { text: this.text, version };
      this.r.version.textContent = String(version);
      if (!this.gone) notice.hidden = true;
      return;
    }
    if (version !== this.editBase.version || this.text !== this.editBase.text) {
      const reload = el('button', { type: 'button', id: 'notice-reload' }, 'Discard my edits and load it');
      reload.addEventListener('click', () => this.revert(), { signal: this.signal });
      notice.replaceChildren(el('span', {},
        `This znode changed on the server (now version ${version}) while you were editing. `
        + `Your text is kept; saving it now is refused with BadVersion. `), reload);
      notice.hidden = false;
    }
  }

  revert() {
    this.editBase = null;
    this.r.editMsg.textContent = '';
    this.syncEditor(this.node?.stat?.version ?? -1);
    this.r.notice.hidden = !this.gone;
  }

  async save() {
    const { edit, view, save, editMsg } = this.r;
    if (!this.node || !this.editBase) return;
    const text = edit.value;
    if (view.value === 'json') {
      try {
        JSON.parse(text);
      } catch (e) {
        const msg = `not saved: the text is not valid JSON (${e.message}). Switch the view to text to save it as it is.`;
        editMsg.textContent = msg;
        showError(msg);
        return;
      }
    }
    this.busy = true;
    this.updateRights();
    editMsg.textContent = 'Saving…';
    try {
      const answer = await request(apiUrl('node'), {
        method: 'PUT', signal: this.signal,
        json: { path: this.path, data_b64: textToBase64(text), version: this.editBase.version },
      });
      const version = answer?.stat?.version ?? this.editBase.version;
      this.editBase = { text, version };
      this.r.version.textContent = String(version);
      editMsg.textContent = `Saved (version ${version}).`;
      clearError();
      this.scheduleRefresh(0);
    } catch (e) {
      if (isAbort(e)) return;
      editMsg.textContent = 'Not saved.';
      showError(messageOf(e));
    } finally {
      this.busy = false;
      this.updateRights();
    }
  }

  // ---- ACL -----------------------------------------------------------------

  renderAcl(acl) {
    const { aclBody, aclHead } = this.r;
    if (aclHead.cells.length > 3) aclHead.lastElementChild.remove();
    if (!Array.isArray(acl)) {
      aclBody.replaceChildren(el('tr', {}, el('td', { colspan: '3', class: 'muted' },
        'The ACL is not readable with your identities.')));
      return;
    }
    aclBody.replaceChildren(...acl.map((entry) => el('tr', { class: 'acl-entry' },
      el('td', { class: 'scheme' }, String(entry.scheme)),
      el('td', { class: 'id' }, String(entry.id)),
      el('td', { class: 'perms', title: permsTitle(entry.perms) }, String(entry.perms)))));
  }

  aclEditRow(entry) {
    const schemes = SCHEMES.includes(entry.scheme) ? SCHEMES : SCHEMES.concat(entry.scheme);
    const scheme = el('select', { class: 'acl-scheme', 'aria-label': 'Scheme' },
      schemes.map((s) => el('option', { value: s, selected: s === entry.scheme }, s)));
    const id = el('input', {
      class: 'acl-id', type: 'text', value: entry.id, 'aria-label': 'Id',
      placeholder: ID_HINTS[entry.scheme] || '', autocomplete: 'off', spellcheck: 'false',
    });
    scheme.addEventListener('change', () => {
      id.placeholder = ID_HINTS[scheme.value] || '';
      if (scheme.value === 'world' && !id.value) id.value = 'anyone';
    });
    const perms = el('span', { class: 'perm-boxes' }, PERMS.map(([letter, name]) => el('label', { class: 'perm', title: name },
      el('input', { type: 'checkbox', class: 'acl-perm', value: letter, checked: String(entry.perms).includes(letter), 'aria-label': name }),
      letter)));
    const remove = el('button', { type: 'button', class: 'acl-remove', 'aria-label': 'Remove this entry' }, 'Remove');
    const row = el('tr', { class: 'acl-entry editing' },
      el('td', { class: 'scheme' }, scheme), el('td', { class: 'id' }, id),
      el('td', { class: 'perms' }, perms), el('td', {}, remove));
    remove.addEventListener('click', () => {
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      (next?.querySelector('select') || this.r.aclAdd).focus();
    });
    return row;
  }

  startAclEdit() {
    const acl = Array.isArray(this.node?.acl) ? this.node.acl : [];
    this.aclBase = this.node?.stat?.aversion ?? -1;
    const { aclBody, aclHead } = this.r;
    aclHead.append(el('th', { scope: 'col' }, el('span', { class: 'visually-hidden' }, 'remove')));
    aclBody.replaceChildren(...acl.map((entry) => this.aclEditRow(entry)));
    this.setAclEditing(true);
    (aclBody.querySelector('select') || this.r.aclAdd).focus();
  }

  stopAclEdit() {
    this.aclBase = null;
    this.setAclEditing(false);
    this.renderAcl(this.node?.acl);
    this.r.aclEdit.focus();
  }

  setAclEditing(on) {
    const { aclEdit, aclAdd, aclSave, aclCancel, aclMsg } = this.r;
    aclEdit.hidden = on;
    aclAdd.hidden = !on;
    aclSave.hidden = !on;
    aclCancel.hidden = !on;
    aclMsg.textContent = on ? `Editing from ACL version ${this.aclBase}.` : '';
    this.updateRights();
  }

  readAclRows() {
    return [...this.r.aclBody.querySelectorAll('tr.acl-entry')].map((row) => {
      const scheme = row.querySelector('.acl-scheme').value;
      let id = row.querySelector('.acl-id').value.trim();
      if (scheme === 'world' && !id) id = 'anyone';
      const perms = [...row.querySelectorAll('.acl-perm')].filter((c) => c.checked).map((c) => c.value).join('');
      return { scheme, id, perms };
    });
  }

  async saveAcl() {
    const acl = this.readAclRows();
    const { aclMsg } = this.r;
    if (!acl.length) {
      aclMsg.textContent = 'An ACL needs at least one entry.';
      return;
    }
    this.busy = true;
    this.updateRights();
    aclMsg.textContent = 'Saving…';
    try {
      await request(apiUrl('acl'), {
        method: 'PUT', signal: this.signal, json: { path: this.path, acl, version: this.aclBase },
      });
      clearError();
      this.aclBase = null;
      this.setAclEditing(false);
      aclMsg.textContent = 'ACL saved.';
      this.scheduleRefresh(0);
    } catch (e) {
      if (isAbort(e)) return;
      aclMsg.textContent = 'Not saved.';
      showError(messageOf(e));
    } finally {
      this.busy = false;
      this.updateRights();
    }
  }

  // ---- rights --------------------------------------------------------------

  updateRights() {
    const r = this.r;
    const rights = this.node?.rights;
    const has = (p) => typeof rights !== 'string' || rights.includes(p);
    const gone = 'this znode does not exist';
    const allow = (button, letter, why) => {
      if (this.gone) setAllowed(button, false, gone);
      else setAllowed(button, has(letter), why);
    };
    allow(r.save, 'w', LACKS.w);
    if (this.busy || !this.node) r.save.disabled = true;
    allow(r.createOpen, 'c', LACKS.c);
    allow(r.aclEdit, 'a', LACKS.a);
    if (!this.node) r.aclEdit.disabled = true;
    allow(r.aclSave, 'a', LACKS.a);
    if (this.busy) r.aclSave.disabled = true;
    if (this.path === '/') setAllowed(r.deleteNode, false, 'the root znode cannot be deleted');
    else if (this.path === '/zookeeper' || this.path.startsWith('/zookeeper/')) {
      setAllowed(r.deleteNode, false, 'the server’s own znodes cannot be deleted');
    } else if (this.gone) setAllowed(r.deleteNode, false, gone);
    else if (typeof this.parentRights === 'string' && !this.parentRights.includes('d')) {
      setAllowed(r.deleteNode, false, LACKS.parentD);
    } else setAllowed(r.deleteNode, true);
  }

  // ---- create --------------------------------------------------------------

  buildCreateDialog() {
    const r = this.r;
    r.createName = el('input', { id: 'create-name', type: 'text', autocomplete: 'off', spellcheck: 'false', required: true });
    r.createData = el('textarea', { id: 'create-data', rows: '4', spellcheck: 'false' });
    r.createMode = el('select', { id: 'create-mode' }, MODES.map((m) => el('option', { value: m }, m)));
    r.createTtl = el('input', { id: 'create-ttl', type: 'number', min: '1', step: '1', inputmode: 'numeric', disabled: true });
    r.createNote = el('p', { id: 'create-note', class: 'note', hidden: true },
      'An ephemeral znode lives as long as the console’s session on this server.');
    r.createError = el('p', { id: 'create-error', class: 'message error-text', role: 'alert' });
    r.createWhere = el('p', { class: 'muted' });
    const cancel = el('button', { id: 'create-cancel', type: 'button' }, 'Cancel');
    const form = el('form', { id: 'create-form', novalidate: true },
      el('h2', { id: 'create-title' }, 'New znode'),
      r.createWhere,
      el('label', { class: 'field', for: 'create-name' }, 'Name (relative to this znode) or absolute path'),
      r.createName,
      el('label', { class: 'field', for: 'create-data' }, 'Data (text)'),
      r.createData,
      el('div', { class: 'two' },
        el('div', {}, el('label', { class: 'field', for: 'create-mode' }, 'Mode'), r.createMode),
        el('div', {}, el('label', { class: 'field', for: 'create-ttl' }, 'TTL (ms)'), r.createTtl)),
      r.createNote, r.createError,
      el('div', { class: 'button-row end' }, cancel,
        el('button', { id: 'create-submit', type: 'submit', class: 'primary' }, 'Create')));
    r.createDialog = el('dialog', { id: 'create-dialog', 'aria-labelledby': 'create-title' }, form);
    const on = (node, type, fn) => node.addEventListener(type, fn, { signal: this.signal });
    on(r.createMode, 'change', () => this.syncCreateMode());
    on(cancel, 'click', () => closeDialog(r.createDialog));
    on(form, 'submit', (e) => { e.preventDefault(); this.create(); });
    return r.createDialog;
  }

  syncCreateMode() {
    const mode = this.r.createMode.value;
    this.r.createTtl.disabled = !mode.startsWith('ttl');
    this.r.createNote.hidden = !mode.startsWith('ephemeral');
  }

  openCreate() {
    const r = this.r;
    r.createError.textContent = '';
    r.createWhere.textContent = `Under ${this.path}`;
    this.syncCreateMode();
    openDialog(r.createDialog, { focus: r.createName });
  }

  async create() {
    const r = this.r;
    const name = r.createName.value.trim();
    const mode = r.createMode.value;
    const fail = (message) => {
      r.createError.textContent = message;
      showError(message);
    };
    if (!name) {
      r.createError.textContent = 'Enter a name or a path.';
      r.createName.focus();
      return;
    }
    const body = {
      path: name.startsWith('/') ? name : joinPath(this.path, name),
      data_b64: textToBase64(r.createData.value),
      mode,
    };
    if (mode.startsWith('ttl')) {
      const ttl = Number(r.createTtl.value);
      if (!Number.isInteger(ttl) || ttl <= 0) {
        r.createError.textContent = 'A TTL mode needs a TTL: a whole number of milliseconds above 0.';
        r.createTtl.focus();
        return;
      }
      body.ttl_ms = ttl;
    }
    const submit = r.createDialog.querySelector('#create-submit');
    submit.disabled = true;
    r.createError.textContent = '';
    try {
      const answer = await request(apiUrl('node'), { method: 'POST', json: body, signal: this.signal });
      clearError();
      closeDialog(r.createDialog);
      r.createName.value = '';
      r.createData.value = '';
      this.flash(`created ${answer?.path || body.path}`, 5000);
      this.scheduleRefresh(0);
    } catch (e) {
      if (!isAbort(e)) fail(messageOf(e));
    } finally {
      submit.disabled = false;
    }
  }

  // ---- delete --------------------------------------------------------------

  buildConfirmDialog() {
    const r = this.r;
    r.confirmText = el('p', { id: 'confirm-text' });
    r.recursive = el('input', { id: 'delete-recursive', type: 'checkbox' });
    r.recursiveLabel = el('span');
    r.confirmError = el('p', { id: 'confirm-error', class: 'message error-text', role: 'alert' });
    r.confirmOk = el('button', { id: 'confirm-ok', type: 'button', class: 'danger' }, 'Delete');
    r.confirmCancel = el('button', { id: 'confirm-cancel', type: 'button' }, 'Cancel');
    r.confirmDialog = el('dialog', { id: 'confirm-dialog', 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-text' },
      el('h2', { id: 'confirm-title' }, 'Delete znode'),
      r.confirmText,
      el('label', { class: 'check' }, r.recursive, ' ', r.recursiveLabel),
      r.confirmError,
      el('div', { class: 'button-row end' }, r.confirmCancel, r.confirmOk));
    const on = (node, type, fn) => node.addEventListener(type, fn, { signal: this.signal });
    on(r.confirmCancel, 'click', () => closeDialog(r.confirmDialog));
    on(r.confirmOk, 'click', () => this.remove());
    return r.confirmDialog;
  }

  openConfirm() {
    const r = this.r;
    const n = this.node?.stat?.numChildren ?? this.total;
    r.confirmText.textContent = `Delete ${this.path}?`;
    r.recursive.checked = false;
    r.recursiveLabel.textContent = `and everything under it (${plural(n, 'child', 'children')})`;
    r.confirmError.textContent = '';
    openDialog(r.confirmDialog, { focus: r.confirmCancel });
  }

  async remove() {
    const r = this.r;
    const recursive = r.recursive.checked;
    const params = { path: this.path, version: recursive ? -1 : (this.node?.stat?.version ?? -1) };
    if (recursive) params.recursive = 1;
    r.confirmOk.disabled = true;
    r.confirmError.textContent = '';
    try {
      const answer = await request(apiUrl('node', params), { method: 'DELETE', signal: this.signal });
      const n = typeof answer?.deleted === 'number' ? answer.deleted : 1;
      carriedNotice = n > 1 ? `deleted ${this.path} and ${plural(n - 1, 'znode', 'znodes')} under it` : `deleted ${this.path}`;
      closeDialog(r.confirmDialog);
      location.hash = treeHref(parentOf(this.path));
    } catch (e) {
      if (isAbort(e)) return;
      r.confirmError.textContent = messageOf(e);
      showError(messageOf(e));
    } finally {
      r.confirmOk.disabled = false;
    }
  }

  // ---- live updates --------------------------------------------------------

  startStream() {
    const live = this.r.live;
    const status = (text, cls, title) => {
      live.textContent = text;
      live.className = `live-status ${cls}`;
      live.title = title || 'live updates';
    };
    liveStream(apiUrl('events', { path: this.path }), {
      signal: this.signal,
      onOpen: (reconnected) => {
        status('live', 'ok', 'changes on the server show here as they happen');
        if (reconnected) this.scheduleRefresh();  // changes may have been missed
      },
      onEvent: (ev) => { if (ev.type === 'node' || ev.type === 'message') this.scheduleRefresh(); },
      onDrop: (e) => status('reconnecting…', 'warn', messageOf(e)),
      onFail: (e) => status('no live updates', 'warn', messageOf(e)),
    });
  }

  // Re-reads the znode soon (events come in bursts), keeping the loaded
  // pages and the list's scroll position.
  scheduleRefresh(delay = 200) {
    if (this.signal.aborted) return;
    if (this.refreshTimer !== null) {
      if (delay === 0) {  // a change of our own: read it at once
        clearTimeout(this.refreshTimer);
        this.refreshTimer = null;
      } else {
        return;
      }
    }
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      this.refresh();
    }, delay);
  }

  async refresh() {
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = true;
    try {
      const wasGone = this.gone;
      // A page being loaded is overtaken by this reload: load it here too,
      // or the reader's "Load more" would be lost.
      if (this.moreInFlight()) this.morePending = true;
      // (The list a reload under way replaces, for a new filter say, is no
      // measure of how much to load.)
      const want = this.reloading ? PAGE : Math.max(PAGE, this.names.length);
      if (await this.load(want, { keepScroll: true })) {
        this.flash('updated', 1500, true);
        clearError('refresh');
        if (wasGone) this.r.notice.hidden = true;
      }
    } catch (e) {
      if (!isAbort(e)) {
        showError(messageOf(e), 'refresh');
        if (e.status === 404) this.markGone();
      }
    } finally {
      this.refreshing = false;
      if (this.refreshAgain) {
        this.refreshAgain = false;
        this.scheduleRefresh();
      }
    }
  }

  // A short message by the title. A weak one ("updated") does not replace
  // a message still showing.
  flash(text, ms = 1500, weak = false) {
    const f = this.r.flash;
    if (weak && Date.now() < this.flashUntil) return;
    this.flashUntil = weak ? 0 : Date.now() + ms;
    f.textContent = text;
    f.classList.add('show');
    clearTimeout(this.flashTimer);
    this.flashTimer = setTimeout(() => {
      f.classList.remove('show');
      f.textContent = '';
    }, ms);
  }
}

function permsTitle(perms) {
  return PERMS.filter(([letter]) => String(perms).includes(letter)).map(([, name]) => name).join(', ') || 'no rights';
}
