// What a run says: its detail in words (the known keys first, the rest under "More details"),
// its key figures and promotion decision, and the DOM of the run being watched and of the history.

import { h } from '../dom.js';
import { formatCount, formatDuration, formatSeconds, formatTime, isNumber, monthLabel } from '../format.js';

export const FINAL = new Set(['succeeded', 'failed']);
const STATUS_TEXT = { queued: 'Queued', running: 'Running', succeeded: 'Succeeded', failed: 'Failed' };
const KIND_TEXT = { ingest: 'Ingest', retrain: 'Retrain', evaluate: 'Evaluation', promote: 'Rollback' };

function badge(status) {
  const known = STATUS_TEXT[status] ? status : 'unknown';
  return h('span', { className: `badge badge-${known}`, text: STATUS_TEXT[status] || String(status || 'Unknown') });
}

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

/** Whether a retrain's model was promoted, and why; null when it has not been decided. */
function promotionText(run) {
  const p = run?.detail?.promotion;
  if (!p || typeof p !== 'object') return null;
  return { promoted: Boolean(p.promoted), reason: p.reason ? String(p.reason) : '' };
}

/** A run's few figures that matter, in one line. */
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

// --- the watched run and the history -------------------------------------------------

/** The run being watched, in `box`: its status, how long, its facts, the promotion and the failed series. */
export function renderWatch(box, run) {
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
  ].filter(Boolean));
}

/** One row of the run history. */
export function historyRow(run) {
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
}
