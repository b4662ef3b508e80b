// The Corral console's entry point: the top bar (navigation, who is logged
// in, the login form), the error banner, and the hash router that mounts one
// page at a time. Each page module exports mount(container, {arg, signal}):
// everything it starts (listeners, timers, requests, streams) ends when
// `signal` aborts, which happens when another page is shown.

import {
  apiUrl, basicAuthorization, clearCredentials, request, saveCredentials, session,
} from './api.js';
import { clearError, decodeSegment, messageOf, showError } from './ui.js';
import * as tree from './tree.js';
import * as ensemble from './ensemble.js';
import * as sessions from './sessions.js';
import * as registry from './registry.js';
import * as metrics from './metrics.js';

const PAGES = { tree, ensemble, sessions, registry, metrics };
const TITLES = { tree: 'Tree', ensemble: 'Ensemble', sessions: 'Sessions', registry: 'Registry', metrics: 'Metrics' };

const $ = (id) => document.getElementById(id);

// ---- routing ---------------------------------------------------------------

// "#/tree/a/b" → {name: 'tree', arg: '/a/b'}; "#/metrics" → {name: 'metrics', arg: ''}.
export function parseRoute(hash) {
  const h = hash.replace(/^#/, '');
  if (h === '/tree' || h.startsWith('/tree/')) {
    const names = h.slice(5).split('/').filter((s) => s !== '').map(decodeSegment);
    return { name: 'tree', arg: '/' + names.join('/') };
  }
  for (const name of Object.keys(PAGES)) {
    if (h === '/' + name || h.startsWith('/' + name + '/')) {
      return { name, arg: decodeSegment(h.slice(name.length + 2)) };
    }
  }
  return null;
}

let current = null;  // {name, arg, controller}

function route() {
  let target = parseRoute(location.hash);
  if (!target) {
    history.replaceState(null, '', '#/tree/');
    target = { name: 'tree', arg: '/' };
  }
  const main = $('main');
  const focusedId = main.contains(document.activeElement) ? document.activeElement.id : null;
  const hadFocus = main.contains(document.activeElement);

  current?.controller.abort();
  clearError();
  const controller = new AbortController();
  current = { ...target, controller };
  main.replaceChildren();
  main.dataset.page = target.name;
  markNav(target.name);
  closeNav();
  document.title = `${TITLES[target.name]}${target.name === 'tree' ? ' ' + target.arg : ''} · Corral console`;
  try {
    PAGES[target.name].mount(main, { arg: target.arg, signal: controller.signal });
  } catch (e) {
    console.error(e);
    showError(`the ${target.name} page failed to start: ${messageOf(e)}`);
  }
  // Keep the keyboard where it was: the same control if the new page has
  // it, else the page's heading.
  if (hadFocus) {
    const again = focusedId && document.getElementById(focusedId);
    const heading = main.querySelector('[data-focus-target]') || main.querySelector('h1');
    (again || heading)?.focus();
  }
}

function markNav(name) {
  for (const link of document.querySelectorAll('#nav a[data-route]')) {
    if (link.dataset.route === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function closeNav() {
  document.body.classList.remove('nav-open');
  $('nav-toggle')?.setAttribute('aria-expanded', 'false');
}

function remount() {
  if (current) route();
}

// ---- who is logged in ------------------------------------------------------

function renderAccount() {
  const info = session.info;
  const loggedIn = Boolean(session.authorization);
  $('whoami').textContent = loggedIn ? (info?.user || session.user || 'anonymous') : 'anonymous';
  if (info?.identities?.length) {
    $('whoami').title = 'identities: ' + info.identities.map((i) => `${i.scheme}:${i.id}`).join(', ');
  } else {
    $('whoami').removeAttribute('title');
  }
  $('logout').hidden = !loggedIn;
  $('login-form').hidden = loggedIn;
  const parts = [];
  if (info && info.server_id !== undefined) parts.push(`server ${info.server_id}`);
  if (info?.version) parts.push(info.version);
  if (info?.role) parts.push(info.role);
  $('server-info').textContent = parts.join(' · ');
}

function setLoginError(message) {
  $('login-error').textContent = message || '';
  $('login-error').hidden = !message;
}

// Learns the server's id, version and registry prefix, as the stored caller
// if there is one. Stored credentials the server refuses are forgotten.
// Resolves to the message of a failure that is not about credentials.
async function loadWhoami() {
  let failure = null;
  try {
    session.info = await request(apiUrl('whoami'));
  } catch (e) {
    if (e.status === 401 && session.authorization) {
      clearCredentials();
      setLoginError(`log in again: ${e.message}`);
      try {
        session.info = await request(apiUrl('whoami'));
      } catch (e2) {
        session.info = null;
        if (e2.status === 401) setLoginError(e2.message);
      }
    } else if (e.status === 401) {
      session.info = null;
      setLoginError(e.message);
    } else {
      failure = `cannot ask the server who you are: ${messageOf(e)}`;
    }
  }
  renderAccount();
  return failure;
}

async function onLogin(event) {
  event.preventDefault();
  const user = $('login-user').value.trim();
  const password = $('login-password').value;
  if (!user) {
    setLoginError('enter a user name');
    $('login-user').focus();
    return;
  }
  const authorization = basicAuthorization(user, password);
  $('login-submit').disabled = true;
  setLoginError('');
  try {
    const info = await request(apiUrl('whoami'), { authorization });
    if (info && info.authenticated === true) {
      saveCredentials(info.user || user, authorization);
      session.info = info;
      $('login-password').value = '';
      renderAccount();
      $('logout').focus();
      remount();
    } else {
      setLoginError('the server did not accept these credentials');
    }
  } catch (e) {
    setLoginError(messageOf(e));
  } finally {
    $('login-submit').disabled = false;
  }
}

async function onLogout() {
  clearCredentials();
  setLoginError('');
  renderAccount();
  $('login-user').focus();
  await loadWhoami();
  remount();
}

// ---- start -----------------------------------------------------------------

function start() {
  $('login-form').addEventListener('submit', onLogin);
  $('logout').addEventListener('click', onLogout);
  $('error-close').addEventListener('click', () => clearError());
  $('nav-toggle').addEventListener('click', () => {
    const open = document.body.classList.toggle('nav-open');
    $('nav-toggle').setAttribute('aria-expanded', String(open));
  });
  $('skip-link').addEventListener('click', (e) => {
    e.preventDefault();
    $('main').focus();
  });
  setLoginError('');
  renderAccount();
  // whoami first: the pages need to know the caller and the registry prefix.
  loadWhoami().then((failure) => {
    window.addEventListener('hashchange', route);
    route();
    if (failure) showError(failure);
  });
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
