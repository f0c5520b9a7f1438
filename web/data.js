// What the views load from the API. The catalogue, the map's outlines and each crime type's
// map are kept for the session (a failed load is not kept, so the next view asks again).

import * as API from './api.js';
import { projectAreas } from './choropleth.js';

const kept = new Map(); // 'catalog', 'boundaries', 'map:<type>' -> the promise of its answer

function remember(key, load) {
  if (!kept.has(key)) {
    const request = load();
    kept.set(key, request);
    request.catch(() => {
      if (kept.get(key) === request) kept.delete(key);
    });
  }
  return kept.get(key);
}

/** Forget what may change with the model or the user: all but the outlines. */
export function forget() {
  for (const key of [...kept.keys()]) if (key !== 'boundaries') kept.delete(key);
}

/** The crime types ("ALL" first) and which series have a forecast. */
export function loadCatalog() {
  return remember('catalog', () => API.api('/catalog').then((catalog) => {
    const types = [...new Set((catalog.types || []).map(String))].sort((a, b) => (a === 'ALL' ? -1 : b === 'ALL' ? 1 : a.localeCompare(b)));
    if (!types.includes('ALL')) types.unshift('ALL');
    return { types, series: Array.isArray(catalog.series) ? new Set(catalog.series) : null, version: catalog.model_version };
  }));
}

/** True when the catalogue lists this series (or lists none: then every one is tried). */
export function hasForecast(catalog, area, type) {
  return !catalog.series || catalog.series.has(`${area ?? 'city'}:${type}`);
}

/** The 77 areas' outlines, projected for drawing. */
export function loadBoundaries() {
  return remember('boundaries', () => API.api('/boundaries').then((geojson) => {
    const projected = projectAreas(geojson);
    if (!projected.areas.length) throw new API.ApiError(200, 'bad_response', 'The map outlines came back empty.');
    return projected;
  }));
}

/** Next month's forecast of `type` in every area. */
export function loadMap(type) {
  return remember(`map:${type}`, () => API.api('/predict/map', { query: { crime_type: type } }));
}

/** One series' history, forecast, comparison and accuracy. */
export function loadForecast({ area, type, months }) {
  return API.api('/predict', { query: { community_area: area ?? 'city', crime_type: type, months } });
}

/** The series of `type` whose latest complete month fell outside its range. */
export function loadAlerts(type) {
  return API.api('/alerts', { query: { crime_type: type } });
}

/** Fetch `path` as CSV and save it (named by the service, else `fallbackName`); `status` says how it went. */
export async function downloadCsv(path, query, fallbackName, status) {
  status.textContent = 'Preparing the file…';
  try {
    const { text, filename } = await API.apiText(path, { query: { ...query, format: 'csv' } });
    API.saveFile(text, filename || fallbackName);
    status.textContent = `Saved ${filename || fallbackName}.`;
  } catch (err) {
    if (!API.isSessionEnd(err)) status.textContent = `Could not download the file. ${err.message}`;
  }
}

/**
 * The answer to `request`, or undefined when it failed: then `onError(err)` says so, unless a
 * newer load started (`current()` is false) or the session ended (the login form is shown).
 */
export async function settle(request, current, onError) {
  try {
    return await request;
  } catch (err) {
    if (current() && !API.isSessionEnd(err)) onError(err);
    return undefined;
  }
}

/** A guard against late answers: `next()` starts a load and returns `current()`, false once a newer load started. */
export function latest() {
  let count = 0;
  return {
    next() {
      const mine = ++count;
      return () => mine === count;
    },
    cancel() {
      count += 1;
    },
  };
}
