// The page's addresses: the URL hash of each view, built from the state (#/forecast?area=25&
// type=ASSAULT&months=12, #/map?type=THEFT&show=change, #/compare?series=25:THEFT,city:THEFT,
// #/admin), and the hash read back.

import * as store from './store.js';

/** The view named by the hash, and its parameters. */
export function parseHash() {
  const text = location.hash.replace(/^#\/?/, '');
  const [name, query] = text.split('?');
  return { name: name || 'forecast', params: new URLSearchParams(query || '') };
}

export function forecastHash({ area, type, months } = store.get()) {
  return `#/forecast?area=${area ?? 'city'}&type=${encodeURIComponent(type)}&months=${months}`;
}

export function mapHash({ type, mapMode } = store.get()) {
  return `#/map?type=${encodeURIComponent(type)}${mapMode === 'change' ? '&show=change' : ''}`;
}

export function compareHash(list = store.get().compare) {
  return `#/compare?series=${list.map((s) => `${s.area ?? 'city'}:${encodeURIComponent(s.type)}`).join(',')}`;
}

/** The crime type a URL names (any case), "ALL" when it names none. */
export function typeParam(params) {
  return params.get('type').trim().toUpperCase() || 'ALL';
}

/** What Compare shows when nothing is chosen: the current series next to the city's. */
export function defaultComparison({ area, type } = store.get()) {
  return [{ area, type }, { area: null, type }];
}

/** Go to `hash` (the hashchange shows it). */
export function go(hash) {
  location.hash = hash;
}

/** Make the address `hash` without a new history entry (a view corrects what the URL asked for). */
export function keepHash(hash) {
  if (location.hash !== hash) history.replaceState(null, '', hash);
}

let showRoute = () => {};

/** `show` is what shows the view the hash names. */
export function onRoute(show) {
  showRoute = show;
}

/** Show the current hash's view again (after logging in, or to try a failed load again). */
export function reroute() {
  showRoute();
}
