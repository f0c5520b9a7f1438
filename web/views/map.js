// The map view's controller: the crime type and colouring from the URL into the store, the
// outlines, the map's data and the unusual months loaded, then handed to the render functions.

import * as API from '../api.js';
import { downloadCsv, latest, loadAlerts, loadBoundaries, loadCatalog, loadMap } from '../data.js';
import { $, fillSelect, showProblem } from '../dom.js';
import { typeLabel } from '../format.js';
import { forecastHash, go, keepHash, mapHash, reroute } from '../router.js';
import * as store from '../store.js';
import { renderAlerts, renderAlertsProblem, renderMap } from './map-render.js';

const loads = latest();

/** Open the forecast of `area` (a click on the map or in the ranking). */
function selectArea(area) {
  store.set({ area });
  go(forecastHash());
}

export async function enter(params) {
  const changes = { mapMode: params.get('show') === 'change' ? 'change' : 'expected' };
  if (params.has('type')) changes.type = params.get('type').trim().toUpperCase() || 'ALL';
  store.set(changes);
  const state = store.get();
  for (const input of document.querySelectorAll('input[name="map-mode"]')) input.checked = input.value === state.mapMode;
  keepHash(mapHash());
  const current = loads.next();
  $('map-heading').textContent = `${typeLabel(state.type)}: where the most reports are expected`;
  $('map-problem').hidden = true;
  $('map-status').textContent = 'Loading the map…';
  $('map-result').setAttribute('aria-busy', 'true');
  let projected;
  let data;
  try {
    const catalog = await loadCatalog();
    if (!current()) return;
    if (!catalog.types.includes(state.type)) {
      store.set({ type: 'ALL' });
      keepHash(mapHash());
    }
    fillSelect($('map-type-select'), catalog.types, typeLabel, state.type);
    // Without the outlines the ranking is still worth showing.
    [projected, data] = await Promise.all([loadBoundaries().catch((err) => ({ error: err })), loadMap(state.type)]);
    if (projected.error && API.isSessionEnd(projected.error)) return;
  } catch (err) {
    if (!current() || API.isSessionEnd(err)) return;
    $('map-status').textContent = '';
    $('map-result').hidden = true;
    showProblem('map-problem', `Could not load the map. ${err.message}`, reroute);
    return;
  }
  if (!current()) return;
  $('map-status').textContent = '';
  $('map-result').removeAttribute('aria-busy');
  showAlerts(state.type, current);
  try {
    renderMap(projected, data, state, selectArea);
  } catch (err) {
    console.error(err);
    $('map-result').hidden = true;
    showProblem('map-problem', 'The map could not be drawn: the service sent data this page does not understand. ' +
      'Please reload the page; if it keeps happening, tell the crimecast team.');
  }
}

/** The type's unusual months, unless the map moved on meanwhile. */
async function showAlerts(type, current) {
  let data;
  try {
    data = await loadAlerts(type);
  } catch (err) {
    if (current() && !API.isSessionEnd(err)) renderAlertsProblem(err.message);
    return;
  }
  if (current()) renderAlerts(type, data, store.get());
}

export function init() {
  $('map-type-select').addEventListener('change', () => {
    store.set({ type: $('map-type-select').value });
    go(mapHash());
  });
  for (const input of document.querySelectorAll('input[name="map-mode"]')) {
    input.addEventListener('change', () => {
      store.set({ mapMode: input.value });
      go(mapHash());
    });
  }
  $('map-download').addEventListener('click', () => {
    const { type } = store.get();
    downloadCsv('/predict/map', { crime_type: type }, `crimecast-map-${type}.csv`, $('map-status'));
  });
}
