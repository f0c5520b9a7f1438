// The map view's controller: the crime type and colouring from the URL into the store, the
// outlines, the map's data and the unusual months loaded, then handed to the render functions.

import * as API from '../api.js';
import { downloadCsv, latest, loadAlerts, loadBoundaries, loadCatalog, loadMap, settle } from '../data.js';
import { $, fillSelect, renderOrExplain, showProblem } from '../dom.js';
import { typeLabel } from '../format.js';
import { forecastHash, go, keepHash, mapHash, reroute, typeParam } from '../router.js';
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
  if (params.has('type')) changes.type = typeParam(params);
  store.set(changes);
  const state = store.get();
  for (const input of document.querySelectorAll('input[name="map-mode"]')) input.checked = input.value === state.mapMode;
  keepHash(mapHash());
  const current = loads.next();
  $('map-heading').textContent = `${typeLabel(state.type)}: where the most reports are expected`;
  $('map-problem').hidden = true;
  $('map-status').textContent = 'Loading the map…';
  $('map-result').setAttribute('aria-busy', 'true');
  const failed = (err) => {
    $('map-status').textContent = '';
    $('map-result').hidden = true;
    showProblem('map-problem', `Could not load the map. ${err.message}`, reroute);
  };
  const catalog = await settle(loadCatalog(), current, failed);
  if (catalog === undefined || !current()) return;
  if (!catalog.types.includes(state.type)) {
    store.set({ type: 'ALL' });
    keepHash(mapHash());
  }
  fillSelect($('map-type-select'), catalog.types, typeLabel, state.type);
  // Without the outlines the ranking is still worth showing.
  const loaded = await settle(Promise.all([loadBoundaries().catch((err) => ({ error: err })), loadMap(state.type)]), current, failed);
  if (loaded === undefined) return;
  const [projected, data] = loaded;
  if ((projected.error && API.isSessionEnd(projected.error)) || !current()) return;
  $('map-status').textContent = '';
  $('map-result').removeAttribute('aria-busy');
  showAlerts(state.type, current);
  renderOrExplain(() => renderMap(projected, data, state, selectArea), 'map-result', 'map-problem', 'The map');
}

/** The type's unusual months, unless the map moved on meanwhile. */
async function showAlerts(type, current) {
  const data = await settle(loadAlerts(type), current, (err) => renderAlertsProblem(err.message));
  if (data !== undefined && current()) renderAlerts(type, data, store.get());
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
