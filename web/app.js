// crimecast web page: log in, then the forecast of one series, the comparison of a few, the
// map, and the admin page. The URL's hash names the view (see router.js); each view is a
// module in views/ with enter(params) to show it and init() to wire its controls.

import * as API from './api.js';
import { $ } from './dom.js';
import { forecastHash, onRoute, parseHash } from './router.js';
import { VIEWS, showLoggedIn, showView } from './shell.js';
import * as Admin from './views/admin.js';
import * as Compare from './views/compare.js';
import * as Forecast from './views/forecast.js';
import * as Login from './views/login.js';
import * as MapView from './views/map.js';

const ENTER = { forecast: Forecast.enter, map: MapView.enter, compare: Compare.enter, admin: Admin.enter };
const CAVEATS = ['forecast-caveats', 'compare-caveats', 'map-caveats'];

/** Show the view the hash names: the login form without a valid session, the forecast for an unknown name. */
function route() {
  const { name, params } = parseHash();
  const session = API.currentSession();
  if (!session || API.isExpired(session)) {
    Login.askToLogIn(name);
    return;
  }
  if (name === 'login' || !VIEWS.includes(name)) {
    location.replace(forecastHash());
    return;
  }
  showLoggedIn();
  showView(name);
  ENTER[name](params);
}

/** The notes under each view's results, written once in the page (a template) and shown in each. */
function fillCaveats() {
  const template = $('caveats');
  for (const id of CAVEATS) $(id).replaceWith(template.content.cloneNode(true));
}

function wire() {
  fillCaveats();
  Login.init();
  Forecast.init();
  MapView.init();
  Compare.init();
  Admin.init();
  onRoute(route);
  window.addEventListener('hashchange', route);
}

function boot() {
  wire();
  const session = API.currentSession();
  if (session && !API.isExpired(session)) {
    showLoggedIn();
    Login.scheduleExpiry();
    route();
    // A reloaded page checks its token and refreshes the roles.
    API.api('/auth/me').then((me) => {
      API.updateIdentity(me);
      showLoggedIn();
      if (parseHash().name === 'admin') Admin.enter();
    }).catch(() => {});
  } else {
    route();
  }
}

boot();
