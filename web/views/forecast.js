// The forecast view's controller: reads the series from the URL into the store, loads the
// catalogue and the forecast, and hands them to the render functions; the form's controls.

import { AREA_NAMES, areaKey, areaName, resolveArea, suggestAreas } from '../areas.js';
import { downloadCsv, hasForecast, latest, loadCatalog, loadForecast, settle } from '../data.js';
import { $, fillSelect, h, renderOrExplain, showProblem } from '../dom.js';
import { seriesTitle, typeLabel } from '../format.js';
import { forecastHash, go, keepHash, reroute, typeParam } from '../router.js';
import * as store from '../store.js';
import { renderForecast } from './forecast-render.js';

const MONTH_CHOICES = [6, 12, 24];
const loads = latest();

/** The series the parameters name, over what the store holds (a bad value keeps the one before). */
function readParams(params) {
  const changes = {};
  if (params.has('area')) {
    const value = params.get('area');
    const area = value === 'city' ? null : resolveArea(value);
    if (area !== undefined) changes.area = area;
  }
  if (params.has('type')) changes.type = typeParam(params);
  const months = Number(params.get('months'));
  if (MONTH_CHOICES.includes(months)) changes.months = months;
  store.set(changes);
}

function showHeading({ type, area }) {
  $('forecast-heading').textContent = seriesTitle(type, areaName(area), area == null);
}

function showLoading(loading) {
  $('forecast-status').textContent = loading ? 'Loading the forecast…' : '';
  if (loading) $('forecast-result').setAttribute('aria-busy', 'true');
  else $('forecast-result').removeAttribute('aria-busy');
}

/** Stop loading and show `message` in place of the forecast. */
function fail(message, retry) {
  showLoading(false);
  $('forecast-result').hidden = true;
  showProblem('forecast-problem', message, retry);
}

export async function enter(params) {
  readParams(params);
  keepHash(forecastHash());
  const current = loads.next();
  const state = store.get();
  $('area-input').value = areaName(state.area);
  $('area-error').hidden = true;
  $('months-select').value = String(state.months);
  showHeading(state);
  $('forecast-problem').hidden = true;
  showLoading(true);

  const catalog = await settle(loadCatalog(), current, (err) => fail(`Could not load the list of crime types. ${err.message}`, reroute));
  if (catalog === undefined || !current()) return;
  if (!catalog.types.includes(state.type)) {
    showProblem('forecast-problem', `There is no crime type called “${state.type}”. Showing all crimes instead.`);
    store.set({ type: 'ALL' });
    keepHash(forecastHash());
    showHeading(state);
  }
  fillSelect($('type-select'), catalog.types, typeLabel, state.type);
  if (!hasForecast(catalog, state.area, state.type)) {
    const where = state.area == null ? 'across Chicago' : `for ${areaName(state.area)}`;
    fail(`There is no forecast of ${typeLabel(state.type).toLowerCase()} ${where}: there were too ` +
      'few reports to build one. Try “All crimes”, a related crime type, or Citywide.');
    return;
  }

  const data = await settle(loadForecast(state), current, (err) => fail(`Could not load this forecast. ${err.message}`, reroute));
  if (data === undefined || !current()) return;
  showLoading(false);
  renderOrExplain(() => renderForecast(data), 'forecast-result', 'forecast-problem', 'This forecast');
}

/** Show the area the user typed, or say why it names none (`quiet`: say nothing, the typing goes on). */
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
  if (area === store.get().area && location.hash === forecastHash()) {
    $('area-input').value = areaName(area);
    return;
  }
  store.set({ area });
  go(forecastHash());
}

export function init() {
  $('area-options').replaceChildren(
    h('option', { value: 'Citywide', label: 'All of Chicago' }),
    ...AREA_NAMES.map((name, i) => h('option', { value: name, label: `Area ${i + 1}` })),
  );
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
    store.set({ type: $('type-select').value });
    go(forecastHash());
  });
  $('months-select').addEventListener('change', () => {
    store.set({ months: Number($('months-select').value) });
    go(forecastHash());
  });
  $('forecast-download').addEventListener('click', () => {
    const { area, type, months } = store.get();
    downloadCsv('/predict', { community_area: area ?? 'city', crime_type: type, months },
      `crimecast-${area ?? 'city'}-${type}.csv`, $('forecast-download-result'));
  });
  $('forecast-print').addEventListener('click', () => window.print());
}
