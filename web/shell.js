// The page around the views: which view is shown, the title, the header's user box and the
// navigation, whose links follow the state (a subscriber of the store).

import * as API from './api.js';
import { $ } from './dom.js';
import { compareHash, defaultComparison, forecastHash, mapHash } from './router.js';
import * as store from './store.js';

export const VIEWS = ['login', 'forecast', 'compare', 'map', 'admin'];
const TITLES = { login: 'Log in', forecast: 'Forecast', compare: 'Compare', map: 'Map', admin: 'Admin' };
let firstView = true; // the first view shown keeps the page's own focus

/** The navigation: the current view marked, each link to that view as the state would show it. */
function updateNavLinks(state) {
  if (!state.view) return;
  for (const link of document.querySelectorAll('#main-nav a')) {
    if (link.dataset.view === state.view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.querySelector('#main-nav a[data-view="forecast"]').href = forecastHash(state);
  document.querySelector('#main-nav a[data-view="map"]').href = mapHash(state);
  document.querySelector('#main-nav a[data-view="compare"]').href = compareHash(state.compare.length ? state.compare : defaultComparison(state));
  $('forecast-compare').href = compareHash(defaultComparison(state));
  $('pick-on-map').href = mapHash(state);
}

store.subscribe(updateNavLinks);

/** Show view `name` alone, title the page after it and, after the first, move the focus to its heading. */
export function showView(name) {
  $('page-loading').hidden = true;
  for (const view of VIEWS) $(`view-${view}`).hidden = view !== name;
  document.title = `${TITLES[name]} · crimecast`;
  if (name !== 'login') store.set({ view: name });
  if (!firstView) {
    $(`${name}-heading`)?.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }
  firstView = false;
}

/** The header as the session is: who is logged in, the navigation, the admin link for admins. */
export function showLoggedIn() {
  const session = API.currentSession();
  $('user-name').textContent = session?.username || '';
  $('user-box').hidden = !session;
  $('main-nav').hidden = !session;
  $('nav-admin').hidden = !API.hasRole('admin');
}

/** The header while nobody is logged in. */
export function showLoggedOut() {
  $('user-box').hidden = true;
  $('main-nav').hidden = true;
}
