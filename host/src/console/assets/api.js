// Talking to the node: fetch with the access token, the login page, and a
// small element builder (text is always set as text, never as HTML).

const LOGIN_AGAIN = ['unknown user!', 'token invalid!', 'token expired!'];
const TOKEN = 'nacre.accessToken';

/** An error the page shows: the node's own message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN);
}

let onLoginNeeded = () => {};
/** Called when the node says the session is gone. */
export function whenLoginNeeded(f) {
  onLoginNeeded = f;
}

/**
 * `method path` with `params` (query for GET, form otherwise); the parsed
 * JSON answer, or the text when it is not JSON.
 */
export async function api(path, params = {}, method = 'GET') {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') body.append(k, String(v));
  }
  const headers = {};
  if (token()) headers.accessToken = token();
  let url = path;
  const init = { method, headers };
  if (method === 'GET') {
    if ([...body].length) url += (url.includes('?') ? '&' : '?') + body;
  } else {
    init.body = body;
  }
  const response = await fetch(url, init);
  const text = await response.text();
  let value = text;
  try { value = JSON.parse(text); } catch (_) { /* plain text answer */ }
  if (!response.ok) {
    const message = (value && value.message) || text || response.statusText;
    if (response.status === 403 && LOGIN_AGAIN.includes(message)) {
      sessionStorage.removeItem(TOKEN);
      onLoginNeeded();
    }
    throw new ApiError(response.status, message);
  }
  return value;
}

/** The auth flags (`console/server/state`); a node without it has auth off. */
export async function serverState() {
  try {
    return await api('/nacos/v1/console/server/state');
  } catch (e) {
    if (e.status === 404) return { auth_enabled: 'false' };
    throw e;
  }
}

export async function login(username, password) {
  const answer = await api('/nacos/v1/auth/login', { username, password }, 'POST');
  sessionStorage.setItem(TOKEN, answer.accessToken);
  sessionStorage.setItem('nacre.user', answer.username || username);
  return answer;
}

export function logout() {
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem('nacre.user');
}

/** `h('a', {href: '#/x', class: 'k'}, 'text', child)`: an element. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'width') el.style.width = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A table: header names, and rows of cells. */
export function table(head, rows, empty = 'Nothing here.') {
  if (!rows.length) return h('p', { class: 'muted empty' }, empty);
  return h('table', {},
    h('thead', {}, h('tr', {}, head.map((c) => h('th', {}, c)))),
    h('tbody', {}, rows));
}

export function when(ms) {
  if (!ms) return '—';
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

export function ago(ms) {
  if (!ms) return '—';
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

/** A pager: `count` items, page `no` of `size`, `go(n)` to move. */
export function pager(count, no, size, go) {
  const pages = Math.max(1, Math.ceil(count / size));
  return h('div', { class: 'pager' },
    h('button', { type: 'button', disabled: no <= 1, onclick: () => go(no - 1) }, '‹ prev'),
    ` page ${no} of ${pages} · ${count} total `,
    h('button', { type: 'button', disabled: no >= pages, onclick: () => go(no + 1) }, 'next ›'));
}

/** Why a change happened, in words. */
export function cause(c) {
  switch (c.kind) {
    case 'client': return `client request (${c.door})`;
    case 'beatOfUnknown': return 'beat from an instance this node did not hold';
    case 'beatResumed': return 'beats resumed';
    case 'beatTimeout': return `no beat for ${Math.round(c.silentMs / 1000)} s`;
    case 'probe': return `${c.check} probe ${c.ok ? 'succeeded' : 'failed'}`;
    case 'policy': return 'health policy plugin verdict';
    case 'edit': return `edit by ${c.by || 'anonymous'}`;
    case 'connectionClosed': return 'client connection closed';
    default: return c.kind;
  }
}

/** The route: `#/name?k=v` → { name, params }. */
export function route() {
  const [path, query] = location.hash.replace(/^#\/?/, '').split('?');
  return { name: path || 'services', params: new URLSearchParams(query || '') };
}

export function namespace() {
  return route().params.get('ns') || localStorage.getItem('nacre.ns') || 'public';
}

/** Moves to view `name` with `params`, keeping the namespace. */
export function go(name, params = {}) {
  const p = new URLSearchParams();
  p.set('ns', namespace());
  for (const [k, v] of Object.entries(params)) if (v !== '' && v != null) p.set(k, v);
  location.hash = `#/${name}?${p}`;
}

/** Calls `f` at most once per `ms` (live updates in bursts re-render once). */
export function debounce(f, ms = 300) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => f(...args), ms);
  };
}
