// The admin page: start an ingest or a retrain and watch it, the run history, and users.

import { api, apiBase, isSessionEnd } from './api.js';
import { h } from './dom.js';
import { formatCount, formatDuration, formatSeconds, formatTime, isNumber, monthLabel } from './format.js';

const $ = (id) => document.getElementById(id);
const POLL_MS = 2000;
const FINAL = new Set(['succeeded', 'failed']);
const STATUS_TEXT = { queued: 'Queued', running: 'Running', succeeded: 'Succeeded', failed: 'Failed' };
const KIND_TEXT = { ingest: 'Ingest', retrain: 'Retrain', evaluate: 'Evaluation', promote: 'Rollback' };

let hooks = { onModelChanged: () => {}, currentUser: () => null };
let watch = null; // { runId, kind, timer, failures }
let historyTicket = 0;
let pendingDelete = null;

function badge(status) {
  const known = STATUS_TEXT[status] ? status : 'unknown';
  return h('span', { className: `badge badge-${known}`, text: STATUS_TEXT[status] || String(status || 'Unknown') });
}

function setResult(id, message, ok) {
  const node = $(id);
  node.textContent = message;
  node.className = `form-result ${ok ? 'is-ok' : 'is-error'}`;
}

// --- what a run's detail says ---------------------------------------------------------

const TRIGGERS = { api: 'an admin (API or this page)', schedule: 'the monthly schedule', cli: 'the command line' };
const PHASES = { fetching: 'Fetching reports', publishing: 'Publishing the counts', done: 'Done', failed: 'Failed' };
const MODES = { incremental: 'Recent months only', backfill: 'Whole history (backfill)' };

function monthRange(range) {
  if (!range || typeof range !== 'object') return null;
  const from = range.from ?? range.first_month;
  const to = range.to ?? range.last_month;
  return from && to ? `${monthLabel(from)} to ${monthLabel(to)}` : null;
}

/** A value the page has no words for, kept short. */
function plainValue(value) {
  if (Array.isArray(value)) {
    const simple = value.every((v) => v === null || ['string', 'number', 'boolean'].includes(typeof v));
    return simple && value.length <= 5 ? value.join(', ') || 'none' : `${formatCount(value.length)} items`;
  }
  if (value && typeof value === 'object') {
    const text = Object.entries(value).map(([k, v]) => `${k.replace(/_/g, ' ')}: ${typeof v === 'object' && v !== null ? JSON.stringify(v) : v}`).join(', ');
    return text.length > 160 ? `${text.slice(0, 157)}…` : text;
  }
  return String(value);
}

// Kept under "More details": what an admin rarely needs to read.
const EXTRA = new Set(['pages', 'retries', 'base_version', 'source', 'batches', 'window_months', 'as_of',
  'changes', 'versions_dropped', 'legs', 'boundaries', 'execution_arn', 'first_year', 'key']);

/** [label, text, extra] for a run's detail, the known keys first and in words; extra ones go under "More details". */
export function detailFacts(run) {
  const d = run?.detail && typeof run.detail === 'object' ? run.detail : {};
  const facts = [];
  const used = new Set(['failures', 'promotion', 'chunks', 'chunks_done']);
  const add = (key, label, text) => {
    used.add(key);
    if (d[key] !== undefined && d[key] !== null && d[key] !== '' && text !== null) facts.push([label, text ?? String(d[key]), EXTRA.has(key)]);
  };
  add('error', 'Error', d.error && String(d.error));
  add('note', 'Note');
  add('phase', 'Step', PHASES[d.phase] || d.phase);
  add('trigger', 'Started by', TRIGGERS[d.trigger] || d.trigger);
  add('mode', 'Ingest', MODES[d.mode] || d.mode);
  add('window', 'Months fetched', monthRange(d.window));
  if (Array.isArray(d.chunks)) facts.push(['Queries done', `${formatCount((d.chunks_done || []).length)} of ${formatCount(d.chunks.length)}`, false]);
  add('rows', 'Rows read', formatCount(d.rows));
  add('incidents', 'Reports counted', formatCount(d.incidents));
  add('pages', 'Pages', formatCount(d.pages));
  add('retries', 'Retries', formatCount(d.retries));
  add('stored', 'Counts stored', d.stored && typeof d.stored === 'object'
    ? [monthRange(d.stored), isNumber(d.stored.rows) ? `${formatCount(d.stored.rows)} rows` : null].filter(Boolean).join(', ') : null);
  add('months_replaced', 'Months replaced', d.months_replaced && typeof d.months_replaced === 'object'
    ? [d.months_replaced.count != null ? formatCount(d.months_replaced.count) : null, monthRange(d.months_replaced)
      ? `(${monthRange(d.months_replaced)})` : null].filter(Boolean).join(' ') : null);
  add('latest_month', 'Latest month', monthLabel(d.latest_month));
  add('partial_month', 'Month still coming in', monthLabel(d.partial_month));
  add('months', 'Months counted', formatCount(d.months));
  add('version', run?.kind === 'ingest' ? 'Counts version' : 'Model version');
  add('base_version', 'Previous version');
  add('series_planned', 'Series to train', formatCount(d.series_planned));
  add('batches', 'Batches', formatCount(d.batches));
  add('series_trained', 'Series trained', formatCount(d.series_trained));
  add('series_failed', 'Series failed', formatCount(d.series_failed));
  add('duration_s', 'Time taken', isNumber(d.duration_s) ? formatSeconds(d.duration_s) : null);
  add('source', 'Source');
  // The drift alarm's decision, in its own words ("THEFT rose above their bands in 41 of 77 areas ...").
  add('alarm', 'Drift alarm', d.alarm === true ? 'sounded' : d.alarm === false ? 'quiet' : null);
  add('drift', 'What moved', d.drift && typeof d.drift === 'object' && d.drift.summary ? String(d.drift.summary) : null);
  for (const [key, value] of Object.entries(d)) {
    if (used.has(key) || value === null || value === undefined) continue;
    const label = key.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
    facts.push([label, plainValue(value), EXTRA.has(key) || typeof value === 'object']);
  }
  return facts;
}

function promotionText(run) {
  const p = run?.detail?.promotion;
  if (!p || typeof p !== 'object') return null;
  return { promoted: Boolean(p.promoted), reason: p.reason ? String(p.reason) : '' };
}

function keyFigures(run) {
  const d = run?.detail || {};
  const bits = [];
  if (run.kind === 'retrain') {
    if (d.series_trained != null) bits.push(`${formatCount(d.series_trained)} series trained, ${formatCount(d.series_failed ?? 0)} failed`);
    else if (d.series_planned != null) bits.push(`${formatCount(d.series_planned)} series planned`);
    if (d.version) bits.push(`version ${d.version}`);
  } else if (run.kind === 'promote') {
    if (d.version) bits.push(`served ${d.version} again${d.previous ? ` instead of ${d.previous}` : ''}`);
    if (d.by) bits.push(`by ${d.by}: ${d.reason || 'no reason given'}`);
  } else if (run.kind === 'evaluate') {
    if (d.series_evaluated != null) bits.push(`${formatCount(d.series_evaluated)} series scored`);
    if (d.drift?.summary) bits.push(`${d.alarm ? 'drift alarm: ' : ''}${d.drift.summary}`);
  } else if (run.kind === 'ingest') {
    if (d.mode) bits.push(MODES[d.mode] || d.mode);
    if (d.rows != null) bits.push(`${formatCount(d.rows)} rows read`);
    const last = d.stored?.last_month || d.latest_month;
    if (last) bits.push(`counts up to ${monthLabel(last)}`);
    if (d.phase && !FINAL.has(run.status)) bits.push(PHASES[d.phase] || d.phase);
  }
  if (d.error) bits.push(`error: ${d.error}`);
  return bits.join('; ') || '—';
}

// --- start and watch a run ------------------------------------------------------------

function renderWatch(run, note) {
  const box = $('run-watch');
  box.hidden = false;
  const facts = detailFacts(run);
  const promotion = promotionText(run);
  const failures = Array.isArray(run.detail?.failures) ? run.detail.failures : [];
  const final = FINAL.has(run.status);
  box.className = `run-watch run-${STATUS_TEXT[run.status] ? run.status : 'unknown'}`;
  box.replaceChildren(...[
    h('p', { className: 'run-title' }, badge(run.status), ' ',
      h('span', { text: `${KIND_TEXT[run.kind] || run.kind} run` }), ' ', h('code', { text: run.run_id })),
    h('p', { className: 'run-progress', id: 'run-progress' },
      final ? `${STATUS_TEXT[run.status]} after ${formatDuration(run.started_at, run.finished_at)}.`
        : `${run.status === 'queued' ? 'Waiting to start' : 'In progress'} for ${formatDuration(run.started_at)}. ` +
          'This page checks every 2 seconds; you can leave it and come back.'),
    h('dl', { className: 'facts' },
      h('div', {}, h('dt', { text: 'Started' }), h('dd', { text: formatTime(run.started_at) })),
      run.finished_at ? h('div', {}, h('dt', { text: 'Finished' }), h('dd', { text: formatTime(run.finished_at) })) : null,
      ...facts.filter((f) => !f[2]).map(([label, text]) => h('div', {}, h('dt', { text: label }), h('dd', { text })))),
    facts.some((f) => f[2]) ? h('details', { className: 'more-facts' }, h('summary', { text: 'More details' }),
      h('dl', { className: 'facts' },
        ...facts.filter((f) => f[2]).map(([label, text]) => h('div', {}, h('dt', { text: label }), h('dd', { text }))))) : null,
    promotion ? h('p', { className: `promotion ${promotion.promoted ? 'is-promoted' : 'is-kept'}` },
      h('strong', { text: promotion.promoted ? 'The new model is now served. ' : 'The new model was not promoted. ' }),
      promotion.reason ? `Reason: ${promotion.reason}.`.replace(/\.\.$/, '.') : '') : null,
    failures.length ? h('details', {}, h('summary', { text: `Series that failed (${failures.length}${
      run.detail.series_failed > failures.length ? ` of ${formatCount(run.detail.series_failed)}` : ''})` }),
    h('ul', {}, ...failures.map((f) => h('li', { text: `${f.series}: ${f.error}` })))) : null,
    note ? h('p', { className: 'error', text: note }) : null,
  ].filter(Boolean));
}

function setButtons(disabled) {
  $('start-ingest').disabled = disabled;
  $('start-retrain').disabled = disabled;
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
  renderWatch(run);
  loadHistory();
  if (FINAL.has(run.status)) finish(run);
  else poll();
}

function sameOrigin() {
  try {
    return !apiBase() || new URL(apiBase(), location.href).origin === location.origin;
  } catch {
    return false;
  }
}

function poll() {
  if (!watch) return;
  const current = watch;
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
    renderWatch(run);
    if (FINAL.has(run.status)) finish(run);
    else poll();
  }, POLL_MS);
}

function finish(run) {
  watch = null;
  setButtons(false);
  loadHistory();
  if (run.kind === 'retrain' && run.status === 'succeeded') hooks.onModelChanged();
}

// --- run history ----------------------------------------------------------------------

async function fetchRuns(kind) {
  if (kind) return (await api('/runs', { query: { kind } })).runs || [];
  // Every kind: the API lists one kind at a time (retrains when none is named), so ask for each.
  const lists = await Promise.all(['retrain', 'ingest', 'promote'].map((k) => fetchRuns(k)));
  return lists.flat().sort((a, b) => String(b.started_at).localeCompare(String(a.started_at)));
}

async function loadHistory() {
  const ticket = ++historyTicket;
  const status = $('history-status');
  status.textContent = 'Loading the run history…';
  let runs;
  try {
    runs = await fetchRuns($('history-kind').value);
  } catch (err) {
    if (ticket !== historyTicket || isSessionEnd(err)) return;
    status.textContent = err.status === 404 && err.code === 'not_found' && /route/i.test(err.message)
      ? 'The run history is not available on this server yet.'
      : `Could not load the run history. ${err.message}`;
    $('history-table').hidden = true;
    return;
  }
  if (ticket !== historyTicket) return;
  const table = $('history-table');
  status.textContent = runs.length ? '' : 'No runs yet.';
  table.hidden = !runs.length;
  table.tBodies[0].replaceChildren(...runs.map((run) => {
    const promotion = promotionText(run);
    const cell = (label, ...content) => h('td', { 'data-label': label }, h('div', {}, ...content));
    return h('tr', {},
      cell('Started', formatTime(run.started_at), h('br'), h('code', { className: 'run-id', text: run.run_id })),
      cell('Kind', KIND_TEXT[run.kind] || run.kind),
      cell('Status', badge(run.status)),
      cell('Took', FINAL.has(run.status) ? formatDuration(run.started_at, run.finished_at) : `${formatDuration(run.started_at)} so far`),
      cell('Key figures', keyFigures(run)),
      cell('Promotion', ...(promotion
        ? [h('strong', { text: promotion.promoted ? 'Promoted' : 'Not promoted' }), promotion.reason ? h('br') : null,
          promotion.reason ? h('span', { className: 'reason', text: promotion.reason }) : null]
        : [run.kind === 'retrain' && !FINAL.has(run.status) ? 'Not decided yet' : '—'])));
  }));
}

// --- users ----------------------------------------------------------------------------

const USERNAME = /^[A-Za-z0-9._@-]{1,64}$/;

async function addUser(event) {
  event.preventDefault();
  const username = $('new-username').value.trim();
  const password = $('new-password').value;
  const role = $('new-role').value;
  if (!USERNAME.test(username)) {
    setResult('add-user-result', 'A user name needs 1 to 64 letters, digits or . _ @ - (no spaces).', false);
    $('new-username').focus();
    return;
  }
  if (password.length < 12) {
    setResult('add-user-result', 'The password needs at least 12 characters.', false);
    $('new-password').focus();
    return;
  }
  setResult('add-user-result', 'Adding the user…', true);
  try {
    const user = await api('/auth/users', { method: 'POST', json: { username, password, role } });
    const roles = Array.isArray(user?.roles) ? user.roles : [role];
    setResult('add-user-result', `Added “${user?.username || username}” (${roles.includes('admin') ? 'admin' : 'viewer'}).`, true);
    $('add-user-form').reset();
  } catch (err) {
    if (isSessionEnd(err)) return;
    const message = err.status === 409 ? `A user called “${username}” already exists.` : `Could not add the user. ${err.message}`;
    setResult('add-user-result', message, false);
  }
}

function askDelete(event) {
  event.preventDefault();
  const username = $('delete-username').value.trim();
  $('delete-confirm').hidden = true;
  if (!username) {
    setResult('delete-user-result', 'Type the user name to delete.', false);
    $('delete-username').focus();
    return;
  }
  if (username === hooks.currentUser()) {
    setResult('delete-user-result', 'You cannot delete the account you are logged in with.', false);
    return;
  }
  pendingDelete = username;
  $('delete-confirm-text').textContent = `Delete the user “${username}”? They will not be able to log in any more.`;
  $('delete-confirm').hidden = false;
  $('delete-user-result').textContent = '';
  $('delete-confirm-no').focus();
}

async function confirmDelete() {
  const username = pendingDelete;
  $('delete-confirm').hidden = true;
  pendingDelete = null;
  if (!username) return;
  setResult('delete-user-result', 'Deleting the user…', true);
  try {
    await api(`/auth/users/${encodeURIComponent(username)}`, { method: 'DELETE' });
    setResult('delete-user-result', `Deleted “${username}”.`, true);
    $('delete-username').value = '';
  } catch (err) {
    if (isSessionEnd(err)) return;
    const message = err.status === 404 ? `There is no user called “${username}”.` : `Could not delete the user. ${err.message}`;
    setResult('delete-user-result', message, false);
  }
  $('delete-username').focus();
}

// --- the page -------------------------------------------------------------------------

export function init(options) {
  hooks = { ...hooks, ...options };
  $('start-ingest').addEventListener('click', () => startRun('ingest'));
  $('start-retrain').addEventListener('click', () => startRun('retrain'));
  $('history-refresh').addEventListener('click', loadHistory);
  $('history-kind').addEventListener('change', loadHistory);
  $('add-user-form').addEventListener('submit', addUser);
  $('delete-user-form').addEventListener('submit', askDelete);
  $('delete-confirm-yes').addEventListener('click', confirmDelete);
  $('delete-confirm-no').addEventListener('click', () => {
    pendingDelete = null;
    $('delete-confirm').hidden = true;
    $('delete-user-button').focus();
  });
}

export function enter() {
  loadHistory();
}

/** Stop watching (logout or an expired session) and forget what the page showed. */
export function stop() {
  if (watch) clearTimeout(watch.timer);
  watch = null;
  historyTicket += 1;
  setButtons(false);
  $('run-watch').hidden = true;
  $('run-watch').replaceChildren();
  $('history-table').tBodies[0].replaceChildren();
  $('history-table').hidden = true;
  $('history-status').textContent = '';
  for (const id of ['add-user-result', 'delete-user-result']) $(id).textContent = '';
  $('add-user-form').reset();
  $('delete-user-form').reset();
  $('delete-confirm').hidden = true;
}
