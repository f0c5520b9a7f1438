// crimecast web page: log in, then the forecast of one series, the map, and the admin page.
// Views are switched by the URL's hash (#/forecast?area=25&type=ASSAULT&months=12, #/map, #/admin).

import * as API from './api.js';
import { AREA_NAMES, areaName, areaKey, resolveArea, suggestAreas } from './areas.js';
import { COMPARE_STYLES, drawCompareChart, drawForecastChart, HISTORY_SHOWN } from './chart.js';
import {
  METRIC_ROWS, accuracySentences, bestMethods, dataThroughText, formatCount, formatDate, formatMetricValue, isNumber, methodsOf,
  monthLabel, plural, roughCount, seriesTitle, typeLabel,
} from './format.js';
import { drawLegend, drawMap, formatChange, projectAreas } from './map.js';
import * as Models from './models.js';
import * as Admin from './admin.js';
import { h } from './dom.js';

const $ = (id) => document.getElementById(id);
const VIEWS = ['login', 'forecast', 'compare', 'map', 'admin'];
const TITLES = { login: 'Log in', forecast: 'Forecast', compare: 'Compare', map: 'Map', admin: 'Admin' };
const MAX_COMPARED = 3;
const MONTH_CHOICES = [6, 12, 24];

/** What the forecast and map views show; the URL carries it too. */
const state = { area: null, type: 'ALL', months: 12, mapMode: 'expected', compare: [] };
const cache = { catalog: null, boundaries: null, maps: new Map() };
let pendingHash = null; // where to go after logging in
let expiryTimer = null;
let firstView = true;
let forecastTicket = 0;
let mapTicket = 0;
let lastChart = null; // what the chart shows, to draw it again when its width changes
let lastCompare = null;
let compareTicket = 0;
let shownMap = null; // the map data shown, for its download

// --- small DOM helpers ------------------------------------------------------------------

function setText(id, text) {
  const node = $(id);
  node.textContent = text || '';
  node.hidden = !text;
}

function showProblem(id, message, retry) {
  const box = $(id);
  box.replaceChildren(h('p', { text: message }));
  if (retry) box.append(h('button', { type: 'button', className: 'button button-secondary', onclick: retry, text: 'Try again' }));
  box.hidden = false;
}

// --- session ----------------------------------------------------------------------------

function clearCaches() {
  cache.catalog = null;
  cache.maps.clear();
}

function scheduleExpiry() {
  clearTimeout(expiryTimer);
  const session = API.currentSession();
  if (!session) return;
  const wait = Math.min(Math.max(0, session.expiresAt - Date.now()) + 50, 2 ** 31 - 1);
  expiryTimer = setTimeout(() => {
    if (!API.currentSession()) return;
    if (API.isExpired()) {
      API.clearSession();
      sessionEnded(API.EXPIRED_MESSAGE);
    } else {
      scheduleExpiry();
    }
  }, wait);
}

function sessionEnded(message) {
  clearTimeout(expiryTimer);
  Admin.stop();
  clearCaches();
  if (!pendingHash && location.hash && !location.hash.startsWith('#/login')) pendingHash = location.hash;
  showLogin(message);
}

API.onSessionExpired(() => sessionEnded(API.EXPIRED_MESSAGE));

function showLoggedIn() {
  const session = API.currentSession();
  $('user-name').textContent = session?.username || '';
  $('user-box').hidden = !session;
  $('main-nav').hidden = !session;
  $('nav-admin').hidden = !API.hasRole('admin');
}

function showLogin(notice) {
  $('user-box').hidden = true;
  $('main-nav').hidden = true;
  setText('login-notice', notice);
  $('login-error').hidden = true;
  $('login-password').value = '';
  $('login-button').disabled = false;
  if (location.hash !== '#/login') history.replaceState(null, '', '#/login');
  showView('login');
  ($('login-username').value ? $('login-password') : $('login-username')).focus();
}

async function onLogin(event) {
  event.preventDefault();
  const username = $('login-username').value.trim();
  const password = $('login-password').value;
  const error = $('login-error');
  error.hidden = true;
  if (!username || !password) {
    error.textContent = 'Please enter your user name and your password.';
    error.hidden = false;
    (username ? $('login-password') : $('login-username')).focus();
    return;
  }
  const button = $('login-button');
  button.disabled = true;
  button.textContent = 'Logging in…';
  try {
    await API.login(username, password);
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
    $('login-password').select();
    return;
  } finally {
    button.disabled = false;
    button.textContent = 'Log in';
  }
  $('login-password').value = '';
  $('login-notice').hidden = true;
  showLoggedIn();
  scheduleExpiry();
  const target = pendingHash && !pendingHash.startsWith('#/login') ? pendingHash : '#/forecast';
  pendingHash = null;
  if (location.hash === target) route();
  else location.hash = target;
}

function logout() {
  API.logout();
  clearTimeout(expiryTimer);
  Admin.stop();
  clearCaches();
  pendingHash = null;
  $('login-username').value = '';
  showLogin('You have logged out.');
}

// --- routing ----------------------------------------------------------------------------

function parseHash() {
  const text = location.hash.replace(/^#\/?/, '');
  const [name, query] = text.split('?');
  return { name: name || 'forecast', params: new URLSearchParams(query || '') };
}

function forecastHash() {
  return `#/forecast?area=${state.area ?? 'city'}&type=${encodeURIComponent(state.type)}&months=${state.months}`;
}

function mapHash() {
  return `#/map?type=${encodeURIComponent(state.type)}${state.mapMode === 'change' ? '&show=change' : ''}`;
}

function compareHash(list = state.compare) {
  return `#/compare?series=${list.map((s) => `${s.area ?? 'city'}:${encodeURIComponent(s.type)}`).join(',')}`;
}

function updateNavLinks(current) {
  for (const link of document.querySelectorAll('#main-nav a')) {
    if (link.dataset.view === current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.querySelector('#main-nav a[data-view="forecast"]').href = forecastHash();
  document.querySelector('#main-nav a[data-view="map"]').href = mapHash();
  document.querySelector('#main-nav a[data-view="compare"]').href = compareHash(state.compare.length ? state.compare
    : [{ area: state.area, type: state.type }, { area: null, type: state.type }]);
  $('forecast-compare').href = compareHash([{ area: state.area, type: state.type }, { area: null, type: state.type }]);
  $('pick-on-map').href = mapHash();
}

function showView(name) {
  $('page-loading').hidden = true;
  for (const view of VIEWS) $(`view-${view}`).hidden = view !== name;
  document.title = `${TITLES[name]} · crimecast`;
  if (name !== 'login') updateNavLinks(name);
  if (!firstView) {
    const heading = $(`${name}-heading`);
    heading?.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }
  firstView = false;
}

function route() {
  const { name, params } = parseHash();
  const session = API.currentSession();
  if (!session || API.isExpired(session)) {
    const expired = Boolean(session);
    API.clearSession();
    if (name !== 'login') pendingHash = location.hash;
    showLogin(expired ? API.EXPIRED_MESSAGE : $('login-notice').hidden ? null : $('login-notice').textContent);
    return;
  }
  if (name === 'login' || !VIEWS.includes(name)) {
    location.replace(forecastHash());
    return;
  }
  showLoggedIn();
  showView(name);
  if (name === 'forecast') enterForecast(params);
  else if (name === 'map') enterMap(params);
  else if (name === 'compare') enterCompare(params);
  else if (name === 'admin') enterAdmin();
}

// --- the catalogue: crime types and which series have a forecast --------------------------

function loadCatalog() {
  if (!cache.catalog) {
    cache.catalog = API.api('/catalog').then((catalog) => {
      const types = [...new Set((catalog.types || []).map(String))].sort((a, b) => (a === 'ALL' ? -1 : b === 'ALL' ? 1 : a.localeCompare(b)));
      if (!types.includes('ALL')) types.unshift('ALL');
      return { types, series: Array.isArray(catalog.series) ? new Set(catalog.series) : null, version: catalog.model_version };
    });
    cache.catalog.catch(() => { cache.catalog = null; });
  }
  return cache.catalog;
}

function hasForecast(catalog, area, type) {
  return !catalog.series || catalog.series.has(`${area ?? 'city'}:${type}`);
}

function fillTypeSelect(select, types, current) {
  const values = [...select.options].map((o) => o.value);
  if (values.length !== types.length || values.some((v, i) => v !== types[i])) {
    select.replaceChildren(...types.map((t) => h('option', { value: t, text: typeLabel(t) })));
  }
  select.value = current;
}

function fillAreaOptions() {
  $('area-options').replaceChildren(
    h('option', { value: 'Citywide', label: 'All of Chicago' }),
    ...AREA_NAMES.map((name, i) => h('option', { value: name, label: `Area ${i + 1}` })),
  );
}

// --- forecast view ----------------------------------------------------------------------

function readForecastParams(params) {
  if (params.has('area')) {
    const value = params.get('area');
    const area = value === 'city' ? null : resolveArea(value);
    if (area !== undefined) state.area = area;
  }
  if (params.has('type')) state.type = params.get('type').trim().toUpperCase() || 'ALL';
  const months = Number(params.get('months'));
  if (MONTH_CHOICES.includes(months)) state.months = months;
}

async function enterForecast(params) {
  readForecastParams(params);
  if (location.hash !== forecastHash()) history.replaceState(null, '', forecastHash());
  updateNavLinks('forecast');
  const ticket = ++forecastTicket;
  $('area-input').value = areaName(state.area);
  $('area-error').hidden = true;
  $('months-select').value = String(state.months);
  $('forecast-heading').textContent = seriesTitle(state.type, areaName(state.area), state.area == null);
  $('forecast-problem').hidden = true;
  $('forecast-status').textContent = 'Loading the forecast…';
  $('forecast-result').setAttribute('aria-busy', 'true');
  const done = () => {
    $('forecast-status').textContent = '';
    $('forecast-result').removeAttribute('aria-busy');
  };

  let catalog;
  try {
    catalog = await loadCatalog();
  } catch (err) {
    if (ticket !== forecastTicket || API.isSessionEnd(err)) return;
    done();
    $('forecast-result').hidden = true;
    showProblem('forecast-problem', `Could not load the list of crime types. ${err.message}`, () => route());
    return;
  }
  if (ticket !== forecastTicket) return;
  if (!catalog.types.includes(state.type)) {
    showProblem('forecast-problem', `There is no crime type called “${state.type}”. Showing all crimes instead.`);
    state.type = 'ALL';
    history.replaceState(null, '', forecastHash());
    $('forecast-heading').textContent = seriesTitle(state.type, areaName(state.area), state.area == null);
  }
  fillTypeSelect($('type-select'), catalog.types, state.type);
  updateNavLinks('forecast');
  if (!hasForecast(catalog, state.area, state.type)) {
    done();
    $('forecast-result').hidden = true;
    const where = state.area == null ? 'across Chicago' : `for ${areaName(state.area)}`;
    showProblem('forecast-problem', `There is no forecast of ${typeLabel(state.type).toLowerCase()} ${where}: there were too ` +
      'few reports to build one. Try “All crimes”, a related crime type, or Citywide.');
    return;
  }

  let data;
  try {
    data = await API.api('/predict', { query: { community_area: state.area ?? 'city', crime_type: state.type, months: state.months } });
  } catch (err) {
    if (ticket !== forecastTicket || API.isSessionEnd(err)) return;
    done();
    $('forecast-result').hidden = true;
    showProblem('forecast-problem', `Could not load this forecast. ${err.message}`, () => route());
    return;
  }
  if (ticket !== forecastTicket) return;
  done();
  try {
    renderForecast(data);
  } catch (err) {
    console.error(err);
    $('forecast-result').hidden = true;
    showProblem('forecast-problem', 'This forecast could not be drawn: the service sent data this page does not understand. ' +
      'Please reload the page; if it keeps happening, tell the crimecast team.');
  }
}

function renderForecast(data) {
  const isCity = data.community_area == null;
  const place = isCity ? 'Citywide' : (data.area_name || areaName(data.community_area));
  const title = seriesTitle(data.crime_type, place, isCity);
  $('forecast-heading').textContent = title;
  $('forecast-result').hidden = false; // shown first, so the chart is drawn at its real width
  const history = Array.isArray(data.history) ? data.history : [];
  const forecast = Array.isArray(data.forecast) ? data.forecast : [];

  // The headline: the first forecast month in words, and the total over the horizon.
  const headline = $('forecast-headline');
  const first = forecast[0];
  if (first) {
    const rest = [`likely between ${formatCount(first.yhat_lower)} and ${formatCount(first.yhat_upper)}.`];
    const partial = history.find((row) => row.partial && row.month === first.month);
    if (partial) rest.push(`${formatCount(partial.count)} reported so far; that month's figures are not complete yet.`);
    if (forecast.length > 1) {
      const total = forecast.reduce((sum, f) => sum + (isNumber(f.yhat) ? f.yhat : 0), 0);
      rest.push(`Over the ${forecast.length} months to ${monthLabel(forecast[forecast.length - 1].month)}: about ${roughCount(total)} in total.`);
    }
    headline.replaceChildren(
      h('strong', { text: `${monthLabel(first.month)}: ${first.yhat < 0.5 ? 'fewer than 1 report'
        : `about ${roughCount(first.yhat)} ${plural(first.yhat, 'report')}`} expected` }),
      `, ${rest.join(' ')}`);
  } else {
    headline.textContent = 'This forecast has no months in it.';
  }

  showDataThrough($('forecast-data-through'), data.data_through, data.data_gaps);

  lastChart = {
    width: $('chart').clientWidth,
    args: { history, forecast, unusual: data.unusual || [], title: `${title}: reports per month${first ? ` and the forecast from ${monthLabel(first.month)}` : ''}` },
  };
  drawForecastChart($('chart'), lastChart.args);
  $('chart-caption').textContent = `${typeLabel(data.crime_type)}, ${isCity ? 'all of Chicago' : place}: ` +
    (data.data_gaps?.length ? `reports per month in the last ${HISTORY_SHOWN} months with data, and the forecast`
      : 'reports per month over the last three years, and the forecast');
  renderNumbers(history.slice(-HISTORY_SHOWN), forecast, data.unusual || [], data.data_gaps || []);
  renderUnusualNote(data.unusual || []);
  renderComparison(data.comparison);
  renderAccuracy(data, history);
  $('forecast-result').hidden = false;
}


function changeText(part) {
  if (!part || !isNumber(part.change)) return '—';
  const sign = part.change > 0 ? '+' : part.change < 0 ? '−' : '';
  const pct = isNumber(part.pct) ? ` (${sign}${Math.abs(Math.round(part.pct))}%)` : '';
  return `${sign}${formatCount(Math.abs(part.change))}${pct}`;
}

function span(from, to) {
  return from && to ? `${monthLabel(from)} – ${monthLabel(to)}` : '';
}

/** Last 12 months, year to date and the coming 12 months, each against a year before. */
function renderComparison(c) {
  const body = $('comparison-table').tBodies[0];
  if (!c || !c.last_12) {
    body.replaceChildren(h('tr', {}, h('td', { colspan: 4, text: 'Not enough complete months to compare with last year.' })));
    $('comparison-note').textContent = '';
    return;
  }
  const row = (label, part, when) => h('tr', {},
    h('th', { scope: 'row' }, label, h('br'), h('span', { className: 'fine-print', text: when })),
    h('td', { className: 'num', text: formatCount(part?.now) }),
    h('td', { className: 'num', text: formatCount(part?.before) }),
    h('td', { className: 'num', text: changeText(part) }));
  const ytd = c.year_to_date;
  body.replaceChildren(
    row('Last 12 months', c.last_12, `${span(c.last_12.from, c.last_12.to)}, against ${span(c.last_12.before_from, c.last_12.before_to)}`),
    row('Year to date', ytd, `${span(ytd.from, ytd.to)}, against ${span(ytd.before_from, ytd.before_to)}`),
    row('Next 12 months (forecast)', c.next_12, `${span(c.next_12.from, c.next_12.to)}, against the last 12 months`));
  $('comparison-note').textContent = `Complete months only, through ${monthLabel(c.data_through)}; recent months may still be revised.`;
}

function renderUnusualNote(unusual) {
  $('unusual-note').textContent = unusual.length
    ? `${unusual.length} of the months shown ${unusual.length === 1 ? 'was' : 'were'} unusual (ringed): further outside the range ` +
      'forecast for them beforehand than chance explains across the city\'s series. By chance alone about 1 month in 5 falls outside its range.'
    : 'No month shown was unusual. Each month is judged when its data arrive, against the range forecast for it beforehand; ' +
      'by chance alone about 1 month in 5 falls outside its range.';
}

async function download(path, query, fallbackName, resultId) {
  const result = $(resultId);
  result.textContent = 'Preparing the file…';
  try {
    const { text, filename } = await API.apiText(path, { query: { ...query, format: 'csv' } });
    API.saveFile(text, filename || fallbackName);
    result.textContent = `Saved ${filename || fallbackName}.`;
  } catch (err) {
    if (!API.isSessionEnd(err)) result.textContent = `Could not download the file. ${err.message}`;
  }
}

function renderNumbers(history, forecast, unusual = [], gaps = []) {
  const outside = new Map(unusual.map((u) => [u.month, u]));
  const rows = new Map();
  for (const row of history) rows.set(row.month, { observed: row });
  for (const f of forecast) rows.set(f.month, { ...(rows.get(f.month) || {}), forecast: f });
  // A run of months with no data inside the months shown: one row that says so, in its place.
  const shown = [...rows.keys()].sort();
  for (const g of gaps) {
    if (shown.length && g.from > shown[0] && g.to < shown[shown.length - 1]) rows.set(g.from, { gap: g });
  }
  const body = $('numbers-table').tBodies[0];
  body.replaceChildren(...[...rows.keys()].sort().reverse().map((month) => {
    const { observed, forecast: f, gap } = rows.get(month);
    if (gap) {
      return h('tr', { className: 'no-data' },
        h('th', { scope: 'row', text: `${monthLabel(gap.from)} – ${monthLabel(gap.to)}` }),
        h('td', { colspan: 4, text: 'No data for these months' }));
    }
    return h('tr', {},
      h('th', { scope: 'row', text: monthLabel(month) }),
      h('td', { className: 'num', text: observed ? `${formatCount(observed.count)}${observed.partial ? ' (partial)' : ''}` : '' }),
      h('td', { className: 'num', text: f ? formatCount(f.yhat) : '' }),
      h('td', { className: 'num', text: f ? `${formatCount(f.yhat_lower)}–${formatCount(f.yhat_upper)}` : '' }),
      h('td', { text: outside.has(month) ? `${outside.get(month).direction === 'above' ? 'Higher' : 'Lower'} than the range ` +
        `${formatCount(outside.get(month).yhat_lower)}–${formatCount(outside.get(month).yhat_upper)} forecast before it` : '' }));
  }));
}

function renderAccuracy(data, history) {
  const metrics = data.metrics || {};
  const complete = history.filter((row) => !row.partial).slice(-12);
  const typical = complete.length ? complete.reduce((s, r) => s + r.count, 0) / complete.length : null;
  $('accuracy-text').replaceChildren(...accuracySentences(metrics, typical).map((text) => h('p', { text })));

  renderMaeBars(metrics);

  const table = $('metrics-table');
  $('metrics-caption').textContent = `How ${methodsOf(metrics).length} ways of forecasting this series did in its tests`;
  table.tHead.replaceChildren(h('tr', {}, h('th', { scope: 'col', text: 'Measure' }),
    ...methodsOf(metrics).map((m) => h('th', { scope: 'col', className: 'num', text: m.label }))));
  table.tBodies[0].replaceChildren(...METRIC_ROWS.map((row) => {
    const best = bestMethods(metrics, row);
    return h('tr', {},
      h('th', { scope: 'row' }, row.label, ' ', h('abbr', { title: row.help, text: `(${row.abbr})` })),
      ...methodsOf(metrics).map((m) => {
        const value = metrics[m.key]?.[row.key];
        const cell = h('td', { className: best.has(m.key) ? 'num best' : 'num' });
        if (isNumber(value)) {
          cell.textContent = formatMetricValue(row, value);
          if (best.has(m.key)) cell.append(h('span', { className: 'visually-hidden', text: ' (best)' }));
        } else {
          cell.append(h('span', { 'aria-hidden': 'true', text: '—' }), h('span', { className: 'visually-hidden', text: 'not available' }));
        }
        return cell;
      }));
  }));

  const origins = metrics.origins ?? (metrics.backtest_origin ? [metrics.backtest_origin] : []);
  const prophetNote = metrics.seed_prophet ? "; the earlier Prophet model is the service's first set-up" : '';
  $('scores-note').textContent = origins.length
    ? `Each way forecast the 12 months after ${origins.map(monthLabel).join(' and after ')} from the data up to then, ` +
      `and was compared with what was reported${origins.length > 1 ? ' (the figures are means over those tests)' : ''}. ` +
      `'Same month last year' repeats last year's count${prophetNote}. The best score in each row is in bold; — means no score.`
    : 'No test has been run for this series yet; — means no score.';
  $('metrics-note').textContent = `Model version ${data.model_version || 'unknown'}` +
    `${data.trained_at ? `, trained ${formatDate(data.trained_at)}` : ''}.`;
}

/** Says the month a series' data end and the months inside it with no data, and plainly when
 * the end is long past: a stale series is not current. */
function showDataThrough(element, month, gaps = []) {
  if (!month) {
    element.textContent = '';
    element.classList.remove('stale');
    return;
  }
  const now = new Date();
  const monthsOld = (now.getUTCFullYear() * 12 + now.getUTCMonth()) - (Number(month.slice(0, 4)) * 12 + Number(month.slice(5, 7)) - 1);
  const stale = monthsOld > 3;
  element.textContent = dataThroughText(month, gaps) + (stale
    ? ' These reports are not up to date: the forecast starts from the last month with data, not from today.' : '');
  element.classList.toggle('stale', stale);
}

/** Three bars: the typical miss (MAE) of each method, the model's highlighted. */
function renderMaeBars(metrics) {
  const values = methodsOf(metrics).map((m) => metrics[m.key]?.mae);
  const top = Math.max(...values.filter(isNumber), 0);
  $('mae-bars').hidden = !(top > 0);
  $('mae-bars-rows').replaceChildren(...methodsOf(metrics).map((m, i) => {
    const value = values[i];
    const bar = h('span', { className: `bar${m.key === 'model' ? ' bar-model' : ''}` });
    bar.style.width = isNumber(value) && top > 0 ? `${Math.max(1, (value / top) * 100)}%` : '0';
    return h('div', { className: 'bar-row' },
      h('span', { className: 'bar-label', text: m.label }),
      h('span', { className: 'bar-track', 'aria-hidden': 'true' }, bar),
      h('span', { className: 'bar-value', text: isNumber(value) ? formatMetricValue(METRIC_ROWS[0], value) : 'no score' }));
  }));
}

function chooseArea(text, { quiet = false } = {}) {
  const area = resolveArea(text);
  const error = $('area-error');
  if (area === undefined) {
    if (quiet) return;
    const ideas = suggestAreas(text);
    error.textContent = text.trim()
      ? `No community area is called “${text.trim()}”.${ideas.length ? ` Did you mean ${ideas.join(', ')}?` : ''} Pick a name from the list, or type Citywide.`
      : 'Type the name of a community area, or Citywide.';
    error.hidden = false;
    return;
  }
  error.hidden = true;
  if (area === state.area && location.hash === forecastHash()) {
    $('area-input').value = areaName(area);
    return;
  }
  state.area = area;
  location.hash = forecastHash();
}

// --- map view ---------------------------------------------------------------------------

function loadBoundaries() {
  if (!cache.boundaries) {
    cache.boundaries = API.api('/boundaries').then((geojson) => {
      const projected = projectAreas(geojson);
      if (!projected.areas.length) throw new API.ApiError(200, 'bad_response', 'The map outlines came back empty.');
      return projected;
    });
    cache.boundaries.catch(() => { cache.boundaries = null; });
  }
  return cache.boundaries;
}

function loadMapData(type) {
  if (!cache.maps.has(type)) {
    const request = API.api('/predict/map', { query: { crime_type: type } });
    cache.maps.set(type, request);
    request.catch(() => cache.maps.delete(type));
  }
  return cache.maps.get(type);
}

async function enterMap(params) {
  if (params.has('type')) state.type = params.get('type').trim().toUpperCase() || 'ALL';
  state.mapMode = params.get('show') === 'change' ? 'change' : 'expected';
  for (const input of document.querySelectorAll('input[name="map-mode"]')) input.checked = input.value === state.mapMode;
  if (location.hash !== mapHash()) history.replaceState(null, '', mapHash());
  updateNavLinks('map');
  const ticket = ++mapTicket;
  $('map-heading').textContent = `${typeLabel(state.type)}: where the most reports are expected`;
  $('map-problem').hidden = true;
  $('map-status').textContent = 'Loading the map…';
  $('map-result').setAttribute('aria-busy', 'true');
  let catalog;
  let projected;
  let data;
  try {
    catalog = await loadCatalog();
    if (ticket !== mapTicket) return;
    if (!catalog.types.includes(state.type)) {
      state.type = 'ALL';
      history.replaceState(null, '', mapHash());
    }
    fillTypeSelect($('map-type-select'), catalog.types, state.type);
    // Without the outlines the ranking is still worth showing.
    [projected, data] = await Promise.all([loadBoundaries().catch((err) => ({ error: err })), loadMapData(state.type)]);
    if (projected.error && API.isSessionEnd(projected.error)) return;
  } catch (err) {
    if (ticket !== mapTicket || API.isSessionEnd(err)) return;
    $('map-status').textContent = '';
    $('map-result').hidden = true;
    showProblem('map-problem', `Could not load the map. ${err.message}`, () => route());
    return;
  }
  if (ticket !== mapTicket) return;
  $('map-status').textContent = '';
  $('map-result').removeAttribute('aria-busy');
  loadAlerts(state.type, ticket);
  try {
    renderMap(projected, data);
  } catch (err) {
    console.error(err);
    $('map-result').hidden = true;
    showProblem('map-problem', 'The map could not be drawn: the service sent data this page does not understand. ' +
      'Please reload the page; if it keeps happening, tell the crimecast team.');
  }
}

/** The map type's unusual months: the series whose latest complete month fell outside its range. */
async function loadAlerts(type, ticket) {
  const card = $('alerts-card');
  let data;
  try {
    data = await API.api('/alerts', { query: { crime_type: type } });
  } catch (err) {
    if (ticket !== mapTicket || API.isSessionEnd(err)) return;
    card.hidden = false;
    $('alerts-summary').textContent = `Could not check for unusual months. ${err.message}`;
    $('alerts-list').replaceChildren();
    return;
  }
  if (ticket !== mapTicket) return;
  card.hidden = false;
  const alerts = data.alerts || [];
  const areas = alerts.filter((a) => a.community_area != null);
  const above = areas.filter((a) => a.direction === 'above').length;
  const below = areas.filter((a) => a.direction === 'below').length;
  const month = data.months?.length === 1 ? ` in ${monthLabel(data.months[0])}` : '';
  const parts = [];
  if (above) parts.push(`higher than expected in ${above} ${plural(above, 'area')}`);
  if (below) parts.push(`lower than expected in ${below} ${plural(below, 'area')}`);
  const city = alerts.find((a) => a.community_area == null);
  if (city) parts.push(`${city.direction === 'above' ? 'higher' : 'lower'} than expected citywide`);
  let summary = parts.length ? `${typeLabel(type)}${month}: ${parts.join('; ')}.`
    : data.series_checked ? `${typeLabel(type)}${month}: no area was unusual.`
      : `${typeLabel(type)}: no month can be judged yet, because no forecast was issued before the latest month with data.`;
  if (data.series_checked) {
    summary += ` ${formatCount(data.series_checked)} series checked: ${formatCount(data.outside_band ?? 0)} fell outside their likely range, ` +
      `about ${roughCount(data.expected_by_chance)} would by chance; only those further out than chance explains are listed.`;
  }
  $('alerts-summary').textContent = summary;
  $('alerts-list').replaceChildren(...alerts.slice(0, 10).map((a) => h('li', {},
    h('a', { href: `#/forecast?area=${a.community_area ?? 'city'}&type=${encodeURIComponent(a.crime_type)}&months=${state.months}`,
      text: a.community_area == null ? 'Citywide' : (a.area_name || areaName(a.community_area)) }),
    `: ${formatCount(a.count)} reported in ${monthLabel(a.month)}, ${a.direction === 'above' ? 'above' : 'below'} the likely range ` +
    `${formatCount(a.yhat_lower)}–${formatCount(a.yhat_upper)}`)));
  $('alerts-note').textContent = data.note || 'By chance alone about 1 month in 5 falls outside an 80% range.';
}

function renderMap(projected, data) {
  shownMap = data;
  const rows = new Map((data.areas || []).map((row) => [Number(row.community_area), row]));
  const reasons = new Map((data.missing || []).map((m) => [Number(m.community_area), m.reason]));
  const type = typeLabel(data.crime_type || state.type);
  const change = state.mapMode === 'change';
  $('map-heading').textContent = change ? `${type}: expected against the same month last year` : `${type}: where the most reports are expected`;
  $('map-caption').textContent = (change
    ? `Change from ${data.month ? monthLabel(`${Number(data.month.slice(0, 4)) - 1}${data.month.slice(4)}`) : 'last year'} to the forecast for ${monthLabel(data.month)}`
    : data.month ? `Reports expected in ${monthLabel(data.month)}, by community area` : 'Reports expected next month, by community area') +
    (data.data_through ? ` (${dataThroughText(data.data_through, data.data_gaps).replace(/^Data/, 'data').replace(/\.$/, '')})` : '');
  if (projected.error) {
    $('map').replaceChildren(h('p', { className: 'problem', text: `The map cannot be drawn: ${projected.error.message} ` +
      'The ranking of the areas is still shown.' }));
    $('map-legend').replaceChildren();
    $('map-legend').hidden = true;
  } else {
    const classes = drawMap($('map'), projected, {
      rows, month: data.month, selected: state.area, mode: state.mapMode, reasons,
      label: `Map of the 77 community areas: ${type.toLowerCase()} ${change ? 'change from last year' : 'expected'} in ${monthLabel(data.month)}`,
      onSelect: (area) => selectArea(area),
    });
    $('map-legend').hidden = false;
    $('map-legend').dataset.mode = state.mapMode;
    $('map-legend').setAttribute('aria-label', change ? 'Legend: change from the same month last year' : 'Legend: reports expected');
    drawLegend($('map-legend'), classes, { missing: projected.areas.some((a) => !rows.has(a.number)) });
  }

  const ranked = [...rows.values()].sort((a, b) => a.rank - b.rank);
  const line = (row) => h('tr', {},
    h('td', { text: String(row.rank) }),
    h('td', {}, h('a', { href: `#/forecast?area=${row.community_area}&type=${encodeURIComponent(state.type)}&months=${state.months}`,
      text: row.name || areaName(row.community_area),
      onclick: (event) => { event.preventDefault(); selectArea(Number(row.community_area)); } })),
    h('td', { className: 'num', text: formatCount(row.yhat) }),
    h('td', { className: 'num', text: `${formatCount(row.yhat_lower)}–${formatCount(row.yhat_upper)}` }));
  $('top-table').tBodies[0].replaceChildren(...ranked.slice(0, 10).map(line));
  const none = (data.missing || []).map((m) => h('tr', { className: 'row-none' },
    h('td', { text: '—' }), h('td', { text: m.name || areaName(m.community_area) }),
    h('td', { colspan: 3, text: `No forecast: ${m.reason}` })));
  $('all-table').tBodies[0].replaceChildren(...ranked.map((row) => {
    const tr = line(row);
    tr.append(h('td', { className: 'num', text: formatChange(row.change_pct) }));
    return tr;
  }), ...none);
  if (!ranked.length) {
    $('top-table').tBodies[0].replaceChildren(h('tr', {}, h('td', { colspan: 4, text: 'No area has a forecast for this crime type.' })));
  }
  $('map-result').hidden = false;
}

function selectArea(area) {
  state.area = area;
  location.hash = forecastHash();
}

// --- compare view -----------------------------------------------------------------------

function parseCompare(params) {
  const list = [];
  for (const part of (params.get('series') || '').split(',').filter(Boolean).slice(0, MAX_COMPARED)) {
    const [areaText, typeText] = decodeURIComponent(part).split(':');
    const area = areaText === 'city' ? null : resolveArea(areaText);
    if (area === undefined) continue;
    list.push({ area, type: (typeText || 'ALL').trim().toUpperCase() });
  }
  return list.length ? list : [{ area: state.area, type: state.type }, { area: null, type: state.type }];
}

async function enterCompare(params) {
  state.compare = parseCompare(params);
  if (location.hash !== compareHash()) history.replaceState(null, '', compareHash());
  updateNavLinks('compare');
  const ticket = ++compareTicket;
  $('compare-problem').hidden = true;
  $('compare-status').textContent = 'Loading the series…';
  let catalog;
  try {
    catalog = await loadCatalog();
  } catch (err) {
    if (ticket !== compareTicket || API.isSessionEnd(err)) return;
    $('compare-status').textContent = '';
    showProblem('compare-problem', `Could not load the list of crime types. ${err.message}`, () => route());
    return;
  }
  for (let i = 0; i < MAX_COMPARED; i += 1) {
    const chosen = state.compare[i];
    $(`compare-area-${i}`).value = chosen ? areaName(chosen.area) : '';
    fillTypeSelect($(`compare-type-${i}`), catalog.types, chosen && catalog.types.includes(chosen.type) ? chosen.type : 'ALL');
  }
  const results = await Promise.all(state.compare.map((s) => API.api('/predict', {
    query: { community_area: s.area ?? 'city', crime_type: s.type, months: 12 } }).then((data) => ({ ...s, data }), (error) => ({ ...s, error }))));
  if (ticket !== compareTicket) return;
  $('compare-status').textContent = '';
  if (results.some((r) => r.error && API.isSessionEnd(r.error))) return;
  const failed = results.filter((r) => r.error);
  if (failed.length) {
    showProblem('compare-problem', failed.map((r) => `${seriesTitle(r.type, areaName(r.area), r.area == null)}: ${r.error.message}`).join(' '));
  }
  const shown = results.filter((r) => r.data);
  $('compare-result').hidden = !shown.length;
  if (shown.length) renderCompare(shown);
}

function renderCompare(shown) {
  const series = shown.map((r) => ({
    label: seriesTitle(r.data.crime_type, r.area == null ? 'Citywide' : (r.data.area_name || areaName(r.area)), r.area == null),
    history: r.data.history || [], forecast: r.data.forecast || [], data: r.data,
  }));
  const title = `Reports per month and the forecast: ${series.map((s) => s.label).join('; ')}`;
  $('compare-heading').textContent = `Compare: ${series.map((s) => s.label).join(', ')}`;
  const levels = series.map((s) => Math.max(1, ...s.history.map((r) => r.count)));
  $('compare-caption').textContent = 'Reports per month over the last three years, and the forecast (thinner line)' +
    (Math.max(...levels) > 5 * Math.min(...levels) ? '. One series is far larger than another, so the smaller ones sit low on the ' +
      'same scale: read them in the numbers below.' : '');
  lastCompare = { width: $('compare-chart').clientWidth, args: { series, title } };
  drawCompareChart($('compare-chart'), lastCompare.args);
  $('compare-legend').replaceChildren(...series.map((s, i) => {
    const key = h('span', { className: 'key key-line', 'aria-hidden': 'true' });
    key.style.borderTopColor = COMPARE_STYLES[i].colour;
    key.style.borderTopStyle = COMPARE_STYLES[i].dash ? (i === 1 ? 'dashed' : 'dotted') : 'solid';
    return h('li', {}, key, `${s.label} (${COMPARE_STYLES[i].name})`);
  }));
  const months = [...new Set(series.flatMap((s) => [...s.history.filter((r) => !r.partial).slice(-HISTORY_SHOWN).map((r) => r.month),
    ...s.forecast.map((f) => f.month)]))].sort().reverse();
  const table = $('compare-table');
  table.tHead.replaceChildren(h('tr', {}, h('th', { scope: 'col', text: 'Month' }),
    ...series.map((s) => h('th', { scope: 'col', className: 'num', text: s.label }))));
  table.tBodies[0].replaceChildren(...months.map((month) => h('tr', {}, h('th', { scope: 'row', text: monthLabel(month) }),
    ...series.map((s) => {
      const o = s.history.find((r) => r.month === month && !r.partial);
      const f = s.forecast.find((r) => r.month === month);
      return h('td', { className: 'num', text: o ? formatCount(o.count) : f ? `${formatCount(f.yhat)} (forecast)` : '' });
    }))));
  $('compare-year-table').tBodies[0].replaceChildren(...series.map((s) => {
    const c = s.data.comparison?.last_12;
    return h('tr', {}, h('th', { scope: 'row', text: s.label }), h('td', { className: 'num', text: formatCount(c?.now) }),
      h('td', { className: 'num', text: formatCount(c?.before) }), h('td', { className: 'num', text: changeText(c) }),
      h('td', { text: `${monthLabel(s.data.data_through)}${(s.data.data_gaps || []).map((g) => `; no data ${g.from} to ${g.to}`).join('')}` }));
  }));
}

function onCompare(event) {
  event.preventDefault();
  const list = [];
  for (let i = 0; i < MAX_COMPARED; i += 1) {
    const text = $(`compare-area-${i}`).value.trim();
    if (!text) continue;
    const area = resolveArea(text);
    if (area === undefined) {
      showProblem('compare-problem', `No community area is called “${text}”. Pick a name from the list, or type Citywide.`);
      $(`compare-area-${i}`).focus();
      return;
    }
    list.push({ area, type: $(`compare-type-${i}`).value });
  }
  if (!list.length) {
    showProblem('compare-problem', 'Choose at least one area, or Citywide.');
    return;
  }
  location.hash = compareHash(list);
}

// --- admin view -------------------------------------------------------------------------

function enterAdmin() {
  const allowed = API.hasRole('admin');
  $('admin-forbidden').hidden = allowed;
  $('admin-content').hidden = !allowed;
  if (allowed) {
    Admin.enter();
    Models.enter();
  }
}

// --- wiring -----------------------------------------------------------------------------

function wire() {
  fillAreaOptions();
  $('login-form').addEventListener('submit', onLogin);
  $('logout-button').addEventListener('click', logout);
  $('forecast-controls').addEventListener('submit', (event) => {
    event.preventDefault();
    chooseArea($('area-input').value);
  });
  $('area-input').addEventListener('change', () => chooseArea($('area-input').value));
  $('area-input').addEventListener('input', () => {
    // A pick from the list applies at once; typing waits for Enter or leaving the field.
    const value = $('area-input').value;
    if (AREA_NAMES.some((name) => areaKey(name) === areaKey(value)) || areaKey(value) === 'citywide') chooseArea(value, { quiet: true });
  });
  $('type-select').addEventListener('change', () => {
    state.type = $('type-select').value;
    location.hash = forecastHash();
  });
  $('months-select').addEventListener('change', () => {
    state.months = Number($('months-select').value);
    location.hash = forecastHash();
  });
  $('map-type-select').addEventListener('change', () => {
    state.type = $('map-type-select').value;
    location.hash = mapHash();
  });
  for (const input of document.querySelectorAll('input[name="map-mode"]')) {
    input.addEventListener('change', () => {
      state.mapMode = input.value;
      location.hash = mapHash();
    });
  }
  $('map-download').addEventListener('click', () => download('/predict/map', { crime_type: state.type },
    `crimecast-map-${state.type}.csv`, 'map-status'));
  $('forecast-download').addEventListener('click', () => download('/predict',
    { community_area: state.area ?? 'city', crime_type: state.type, months: state.months },
    `crimecast-${state.area ?? 'city'}-${state.type}.csv`, 'forecast-download-result'));
  $('forecast-print').addEventListener('click', () => window.print());
  $('compare-form').addEventListener('submit', onCompare);
  Models.init({ onModelChanged: () => clearCaches() });
  Admin.init({
    onModelChanged: () => clearCaches(),
    currentUser: () => API.currentSession()?.username,
  });
  window.addEventListener('hashchange', route);
  new ResizeObserver(() => {
    const width = $('chart').clientWidth;
    if (!lastChart || !width || Math.abs(width - lastChart.width) < 24) return;
    lastChart.width = width;
    drawForecastChart($('chart'), lastChart.args);
  }).observe($('chart'));
  new ResizeObserver(() => {
    const width = $('compare-chart').clientWidth;
    if (!lastCompare || !width || Math.abs(width - lastCompare.width) < 24) return;
    lastCompare.width = width;
    drawCompareChart($('compare-chart'), lastCompare.args);
  }).observe($('compare-chart'));
}

function boot() {
  wire();
  const session = API.currentSession();
  if (session && !API.isExpired(session)) {
    showLoggedIn();
    scheduleExpiry();
    route();
    // A reloaded page checks its token and refreshes the roles.
    API.api('/auth/me').then((me) => {
      API.updateIdentity(me);
      showLoggedIn();
      if (parseHash().name === 'admin') enterAdmin();
    }).catch(() => {});
  } else {
    route();
  }
}

boot();
