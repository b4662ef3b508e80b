// Talking to the Corral server: where the console lives, the caller's
// credentials, JSON requests that turn every failure into the server's own
// error text, and Server-Sent Events read over fetch() (so that headers can
// be sent), with reconnection.

const AUTH_KEY = 'corral-console.auth';
const USER_KEY = 'corral-console.user';

// The directory index.html is served from: "/ui/" for "/ui/" or
// "/ui/index.html" (and "/ui" itself, which the server redirects).
export function appBase(pathname = location.pathname) {
  if (pathname.endsWith('/')) return pathname;
  const cut = pathname.lastIndexOf('/') + 1;
  const last = pathname.slice(cut);
  return last.includes('.') ? pathname.slice(0, cut) : pathname + '/';
}

export const BASE = appBase();

// "k=v&..." with every value percent-encoded; empty and missing values left out.
export function query(params = {}) {
  const parts = [];
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`);
  }
  return parts.length ? '?' + parts.join('&') : '';
}

// A URL of the console's API: apiUrl('node', {path: '/a'}) → "/ui/api/node?path=%2Fa".
export function apiUrl(route, params) {
  return BASE + 'api/' + route + query(params);
}

// An admin endpoint command, at the origin's root: "/commands/connections".
export function commandUrl(name) {
  return '/commands/' + encodeURIComponent(name);
}

function storageGet(key) {
  try { return sessionStorage.getItem(key); } catch { return null; }
}

function storageSet(key, value) {
  try {
    if (value === null) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, value);
  } catch { /* storage unavailable: the credentials last as long as the page */ }
}

// The caller: the Authorization header sent with every request (null when
// anonymous), the user name it was made from, and the last whoami answer.
export const session = {
  authorization: storageGet(AUTH_KEY),
  user: storageGet(USER_KEY),
  info: null,
};

// "Basic base64(user:password)", the name and password as UTF-8.
export function basicAuthorization(user, password) {
  return 'Basic ' + bytesToBase64(new TextEncoder().encode(`${user}:${password}`));
}

export function saveCredentials(user, authorization) {
  session.user = user;
  session.authorization = authorization;
  storageSet(USER_KEY, user);
  storageSet(AUTH_KEY, authorization);
}

export function clearCredentials() {
  session.user = null;
  session.authorization = null;
  storageSet(USER_KEY, null);
  storageSet(AUTH_KEY, null);
}

// The headers of every request. X-Requested-With makes the server leave out
// WWW-Authenticate, so that the browser never shows its own login dialog.
export function requestHeaders(extra = {}, authorization = session.authorization) {
  const headers = { 'X-Requested-With': 'corral-console', ...extra };
  if (authorization) headers.Authorization = authorization;
  return headers;
}

// A failed call: `message` is what to show (the server's `error` when it
// sent one), `status` the HTTP status (0: the server was not reached).
export class ApiError extends Error {
  constructor(message, status = 0, code = null, body = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

export function isAbort(error) {
  return error && error.name === 'AbortError';
}

function snippet(text, max = 160) {
  const flat = String(text).replace(/\s+/g, ' ').trim();
  return flat.length > max ? flat.slice(0, max) + '…' : flat;
}

function parseJson(text) {
  try { return { ok: true, value: JSON.parse(text) }; } catch (e) { return { ok: false, reason: e.message }; }
}

// The ApiError a non-2xx answer stands for.
function errorFromAnswer(response, text) {
  const parsed = text ? parseJson(text) : { ok: false };
  const body = parsed.ok ? parsed.value : null;
  if (body && typeof body.error === 'string' && body.error) {
    return new ApiError(body.error, response.status, body.code ?? null, body);
  }
  const what = `${response.status} ${response.statusText || ''}`.trim();
  const detail = text && !parsed.ok ? `: ${snippet(text)}` : '';
  return new ApiError(`the server answered ${what}${detail}`, response.status, null, body);
}

async function send(url, { method = 'GET', json, signal, authorization, accept } = {}) {
  const extra = { Accept: accept || 'application/json' };
  let body;
  if (json !== undefined) {
    extra['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  }
  const headers = requestHeaders(extra, authorization === undefined ? session.authorization : authorization);
  try {
    return await fetch(url, { method, headers, body, signal, cache: 'no-store' });
  } catch (e) {
    if (isAbort(e)) throw e;
    throw new ApiError(`cannot reach the server (${e.message || 'network error'}) for ${method} ${url}`, 0);
  }
}

// A JSON request. Resolves to the parsed body (null when empty); rejects with
// an ApiError for a network failure, a non-2xx status or a body that is not JSON.
// `authorization` overrides the stored credentials (null: anonymous).
export async function request(url, options = {}) {
  const response = await send(url, options);
  let text;
  try {
    text = await response.text();
  } catch (e) {
    if (isAbort(e)) throw e;
    throw new ApiError(`the connection broke while reading the answer to ${url} (${e.message})`, 0);
  }
  if (!response.ok) throw errorFromAnswer(response, text);
  if (!text.trim()) return null;
  const parsed = parseJson(text);
  if (!parsed.ok) {
    throw new ApiError(`the answer to ${url} is not JSON (${parsed.reason}): ${snippet(text)}`, response.status);
  }
  return parsed.value;
}

// Reads a text/event-stream body, calling onEvent({type, data}) for each
// event; resolves when the server ends the stream.
export async function readEventStream(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder('utf-8');
  let pending = '';
  let type = '';
  let data = [];
  const line = (text) => {
    if (text === '') {
      if (data.length || type) onEvent({ type: type || 'message', data: data.join('\n') });
      type = '';
      data = [];
      return;
    }
    if (text.startsWith(':')) return;  // a comment: the server's keepalive
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') type = value;
    else if (field === 'data') data.push(value);
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += decoder.decode(value, { stream: true });
    // A trailing "\r" may be the first half of "\r\n": keep it for the next chunk.
    const holdCr = pending.endsWith('\r');
    const text = holdCr ? pending.slice(0, -1) : pending;
    const lines = text.split(/\r\n|\r|\n/);
    pending = lines.pop() + (holdCr ? '\r' : '');
    for (const l of lines) line(l);
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

// Answers that mean "asking again will not help".
function permanent(error) {
  const s = error.status;
  return s >= 400 && s < 500 && s !== 408 && s !== 429;
}

// Keeps an event stream open until `signal` aborts, reconnecting with
// backoff (1 s doubling to 30 s) when it drops.
//   onOpen(reconnected)  the stream is (again) open; after a drop, events may have been missed
//   onEvent({type,data}) an event
//   onDrop(error)        it dropped; a reconnection follows
//   onFail(error)        refused for good (a 4xx such as 403 or 404): no more attempts
export function liveStream(url, { signal, onOpen, onEvent, onDrop, onFail }) {
  (async () => {
    let delay = 1000;
    let opened = false;
    while (!signal.aborted) {
      const started = Date.now();
      try {
        const response = await send(url, { signal, accept: 'text/event-stream' });
        if (!response.ok) throw errorFromAnswer(response, await response.text().catch(() => ''));
        if (!response.body) throw new ApiError('this browser cannot read streamed answers', 0);
        onOpen?.(opened);
        opened = true;
        await readEventStream(response, (ev) => { if (!signal.aborted) onEvent?.(ev); });
        if (signal.aborted) return;
        onDrop?.(new ApiError('the server ended the live stream', 0));
      } catch (e) {
        if (signal.aborted || isAbort(e)) return;
        const error = e instanceof ApiError ? e : new ApiError(`live stream broke (${e.message})`, 0);
        if (permanent(error)) { onFail?.(error); return; }
        onDrop?.(error);
      }
      if (Date.now() - started > 10000) delay = 1000;  // it had been up a while
      await sleep(delay + Math.random() * 250, signal);
      delay = Math.min(delay * 2, 30000);
    }
  })();
}

// Base64 of bytes (chunked: String.fromCharCode takes a limited argument list).
export function bytesToBase64(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export function base64ToBytes(text) {
  const binary = atob(text || '');
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function textToBase64(text) {
  return bytesToBase64(new TextEncoder().encode(text));
}
