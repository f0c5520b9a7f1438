// The admin's runs: start an ingest or a retrain and watch it until it ends (a check every
// 2 seconds), and the run history. The words and the DOM are in run-render.js.

import { api, apiBase, isSessionEnd } from '../api.js';
import { forget, latest, settle } from '../data.js';
import { $, h } from '../dom.js';
import { FINAL, historyRow, renderWatch } from './run-render.js';

const POLL_MS = 2000;
let watch = null; // { runId, kind, timer, failures } of the run being watched
const historyLoads = latest();

function setButtons(disabled) {
  $('start-ingest').disabled = disabled;
  $('start-retrain').disabled = disabled;
}

/** True when the API is on the page's own origin. */
function sameOrigin() {
  try {
    return !apiBase() || new URL(apiBase(), location.href).origin === location.origin;
  } catch {
    return false;
  }
}

async function startRun(kind) {
  if (watch) return;
  setButtons(true);
  const box = $('run-watch');
  box.hidden = false;
  box.className = 'run-watch';
  box.replaceChildren(h('p', { text: `Starting the ${kind}…` }));
  let run;
  try {
    const options = { method: 'POST' };
    // One key per click, so a repeated request gets the same run back. Only to the page's own
    // origin: a cross-origin API must list the header in its CORS AllowHeaders first.
    if (sameOrigin()) {
      options.headers = { 'Idempotency-Key': globalThis.crypto?.randomUUID?.() ?? `${Date.now()}-${Math.random().toString(36).slice(2)}` };
    }
    if (kind === 'ingest') options.json = { mode: $('ingest-mode').value };
    run = await api(`/${kind}`, options);
  } catch (err) {
    if (isSessionEnd(err)) return;
    const message = err.status === 409 ? `Another ${kind} is running already. ${err.message}` : `Could not start the ${kind}. ${err.message}`;
    box.replaceChildren(h('p', { className: 'error', text: message }));
    setButtons(false);
    return;
  }
  watch = { runId: run.run_id, kind, timer: null, failures: 0 };
  renderWatch(box, run);
  loadHistory();
  if (FINAL.has(run.status)) finish(run);
  else poll();
}

/** Check the watched run again in POLL_MS; after five failed checks in a row, stop and say so. */
function poll() {
  const current = watch;
  if (!current) return;
  current.timer = setTimeout(async () => {
    let run;
    try {
      run = await api(`/runs/${encodeURIComponent(current.runId)}`);
    } catch (err) {
      if (watch !== current || isSessionEnd(err)) return;
      current.failures += 1;
      if (current.failures >= 5) {
        $('run-watch').append(h('p', { className: 'error', text: `Stopped checking this run: ${err.message} Its status is in the run history.` }));
        watch = null;
        setButtons(false);
        return;
      }
      poll();
      return;
    }
    if (watch !== current) return;
    current.failures = 0;
    renderWatch($('run-watch'), run);
    if (FINAL.has(run.status)) finish(run);
    else poll();
  }, POLL_MS);
}

function finish(run) {
  watch = null;
  setButtons(false);
  loadHistory();
  if (run.kind === 'retrain' && run.status === 'succeeded') forget(); // a new model: new forecasts
}

async function fetchRuns(kind) {
  if (kind) return (await api('/runs', { query: { kind } })).runs || [];
  // Every kind: the API lists one kind at a time (retrains when none is named), so ask for each.
  const lists = await Promise.all(['retrain', 'ingest', 'promote'].map((k) => fetchRuns(k)));
  return lists.flat().sort((a, b) => String(b.started_at).localeCompare(String(a.started_at)));
}

export async function loadHistory() {
  const current = historyLoads.next();
  const status = $('history-status');
  const table = $('history-table');
  status.textContent = 'Loading the run history…';
  const runs = await settle(fetchRuns($('history-kind').value), current, (err) => {
    status.textContent = err.status === 404 && err.code === 'not_found' && /route/i.test(err.message)
      ? 'The run history is not available on this server yet.'
      : `Could not load the run history. ${err.message}`;
    table.hidden = true;
  });
  if (runs === undefined || !current()) return;
  status.textContent = runs.length ? '' : 'No runs yet.';
  table.hidden = !runs.length;
  table.tBodies[0].replaceChildren(...runs.map(historyRow));
}

export function init() {
  $('start-ingest').addEventListener('click', () => startRun('ingest'));
  $('start-retrain').addEventListener('click', () => startRun('retrain'));
  $('history-refresh').addEventListener('click', loadHistory);
  $('history-kind').addEventListener('change', loadHistory);
}

/** Stop watching and forget the runs shown. */
export function stop() {
  if (watch) clearTimeout(watch.timer);
  watch = null;
  historyLoads.cancel();
  setButtons(false);
  $('run-watch').hidden = true;
  $('run-watch').replaceChildren();
  $('history-table').tBodies[0].replaceChildren();
  $('history-table').hidden = true;
  $('history-status').textContent = '';
}
