// The console's shell: hash routes (every view is a deep link), the
// namespace picker, the auth banner or login page, and the live stream that
// re-renders the view when the registry changes.

import { api, serverState, login, logout, token, whenLoginNeeded, h, route, go, namespace } from './api.js';
import { namespacesView, servicesView, serviceView } from './services.js';
import { instancesView, subscribersView, feedView } from './instances.js';
import { clusterView, pluginsView, metricsView } from './node.js';

const VIEWS = {
  namespaces: namespacesView,
  services: servicesView,
  service: serviceView,
  instances: instancesView,
  subscribers: subscribersView,
  feed: feedView,
  cluster: clusterView,
  plugins: pluginsView,
  metrics: metricsView,
};

const main = document.getElementById('main');
let current = null; // { live(change), stop() } of the shown view
let paused = false;
let auth = { auth_enabled: 'false' };

async function show() {
  if (current && current.stop) current.stop();
  current = null;
  if (auth.auth_enabled === 'true' && !token()) return showLogin();
  const { name, params } = route();
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.getAttribute('href') === `#/${name}`);
  }
  const view = VIEWS[name] || servicesView;
  const box = h('section', { class: `view view-${name}` });
  main.replaceChildren(box);
  try {
    current = (await view(box, params, namespace())) || null;
    // When the first view is on screen (measured in docs/BENCHMARKS.md).
    if (!performance.getEntriesByName('nacre:first-view').length) performance.mark('nacre:first-view');
  } catch (e) {
    box.replaceChildren(h('p', { class: 'error' }, `Could not load: ${e.message}`));
  }
}

async function fillNamespaces() {
  const select = document.getElementById('namespace');
  try {
    const answer = await api('/nacos/v1/console/namespaces');
    select.replaceChildren(...answer.data.map((n) => {
      const id = n.namespace || 'public';
      return h('option', { value: id, selected: id === namespace() }, n.namespaceShowName);
    }));
  } catch (_) { /* shown empty; views say why */ }
  select.onchange = () => {
    localStorage.setItem('nacre.ns', select.value);
    go(route().name === 'service' ? 'services' : route().name);
  };
}

function showLogin() {
  const user = h('input', { name: 'username', autocomplete: 'username', required: true });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const error = h('p', { class: 'error' });
  const form = h('form', { class: 'login' },
    h('h1', {}, 'Sign in'),
    h('label', {}, 'user ', user), h('label', {}, 'password ', pass),
    h('button', { type: 'submit' }, 'Sign in'), error);
  form.onsubmit = async (event) => {
    event.preventDefault();
    try {
      await login(user.value, pass.value);
      await start();
      listen();
    } catch (e) {
      error.textContent = e.status === 403 ? 'Wrong user or password.' : e.message;
    }
  };
  main.replaceChildren(form);
}

function showUser() {
  const box = document.getElementById('user');
  const name = sessionStorage.getItem('nacre.user');
  if (auth.auth_enabled !== 'true' || !name) return box.replaceChildren();
  box.replaceChildren(name, ' ', h('button', { type: 'button', onclick: () => { logout(); start(); } }, 'sign out'));
}

/** The live stream: each registry change goes to the shown view. */
let stream = null;
let streaming = null; // the namespace `stream` follows
function listen() {
  // A closed stream (refused before sign-in, say) is opened again.
  if (stream && streaming === namespace() && stream.readyState !== EventSource.CLOSED) return;
  if (stream) stream.close();
  streaming = namespace();
  const query = new URLSearchParams({ namespaceId: streaming });
  if (token()) query.set('accessToken', token());
  stream = new EventSource(`/nacre/v1/console/events?${query}`);
  const button = document.getElementById('live');
  // `change`: a feed entry of this node; `service`: a service changed by
  // any member. Views look at `.service` of either.
  for (const kind of ['change', 'service']) {
    stream.addEventListener(kind, (event) => {
      if (paused || !current || !current.live) return;
      current.live(JSON.parse(event.data));
    });
  }
  stream.addEventListener('dropped', () => { if (!paused) show(); });
  stream.onopen = () => button.classList.add('on');
  stream.onerror = () => button.classList.remove('on');
  button.onclick = () => {
    paused = !paused;
    button.textContent = paused ? 'paused' : 'live';
    if (!paused) show();
  };
}

async function start() {
  auth = await serverState().catch(() => ({ auth_enabled: 'false' }));
  const banner = document.getElementById('banner');
  banner.hidden = auth.auth_enabled === 'true';
  banner.textContent = 'Auth is off: anyone who can reach this port can read and change the registry.';
  showUser();
  await fillNamespaces();
  show();
}

whenLoginNeeded(() => showLogin());
window.addEventListener('hashchange', () => { listen(); show(); });
// The namespaces page created, renamed or deleted one: the picker follows.
window.addEventListener('nacre:namespaces', () => { fillNamespaces(); });
start().then(listen);
