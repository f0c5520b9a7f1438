// What the page shows, in one place: the series chosen, the map's colouring and the compared
// series. Views read it with get() and change it with set(); whoever shows a part of it (the
// navigation links, say) subscribes and is told after each change.

const state = { view: null, area: null, type: 'ALL', months: 12, mapMode: 'expected', compare: [] };
const listeners = new Set();

/** The current state (read it; change it only through set). */
export function get() {
  return state;
}

/** Merge `changes` into the state, then tell every subscriber. */
export function set(changes) {
  Object.assign(state, changes);
  for (const listener of listeners) listener(state);
}

/** Call `listener(state)` after every change; returns the function that stops it. */
export function subscribe(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
