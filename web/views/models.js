// The admin page's model versions: each one's backtest and live accuracy, and serving an
// earlier one again (a rollback: POST /models/{version}/promote with the reason).

import { api, isSessionEnd } from '../api.js';
import { forget, latest, settle } from '../data.js';
import { $, h, numCell, setResult } from '../dom.js';
import { formatCount, formatMetric, formatPercent, formatTime } from '../format.js';

const loads = latest();
let chosen = null; // the version the form would serve again

async function load() {
  const current = loads.next();
  $('models-status').textContent = 'Loading the model versions…';
  const data = await settle(api('/models'), current, (err) => {
    $('models-status').textContent = `Could not load the model versions. ${err.message}`;
    $('models-table').hidden = true;
  });
  if (data !== undefined && current()) renderVersions(data.versions || []);
}

/** The table of versions, each with its scores and, unless it serves or cannot, a "Serve again" button. */
function renderVersions(versions) {
  $('models-status').textContent = versions.length ? '' : 'No model has been trained yet.';
  $('models-table').hidden = !versions.length;
  $('models-table').tBodies[0].replaceChildren(...versions.map((v) => {
    const action = v.serving ? h('span', { text: 'Serving now' })
      : v.problem ? h('span', { text: `Cannot be served: ${v.problem}` })
        : h('button', { type: 'button', className: 'button button-secondary', 'data-version': v.version,
          'aria-label': `Serve again: ${v.version}`, text: 'Serve again', onclick: () => ask(v.version) });
    return h('tr', { className: v.serving ? 'is-serving' : '' },
      h('th', { scope: 'row' }, h('code', { text: v.version })),
      h('td', { text: v.serving ? 'Yes' : 'No' }),
      numCell(formatCount(v.series)),
      numCell(formatMetric(v.backtest?.median_mase, 2)),
      numCell(formatPercent(v.backtest?.coverage)),
      numCell(v.live ? `${formatMetric(v.live.median_live_mase, 2)} (${formatCount(v.live.series_evaluated)} series)` : 'not scored yet'),
      h('td', { text: v.promoted ? `${formatTime(v.promoted.promoted_at)} by ${v.promoted.by}` : 'never' }),
      h('td', {}, action));
  }));
}

function ask(version) {
  chosen = version;
  $('rollback-version').textContent = version;
  $('rollback-reason').value = '';
  $('rollback-form').hidden = false;
  setResult('rollback-result', '', true);
  $('rollback-reason').focus();
}

async function confirm(event) {
  event.preventDefault();
  const reason = $('rollback-reason').value.trim();
  if (!reason) {
    setResult('rollback-result', 'Say why this version should serve again: the reason is kept with the change.', false);
    $('rollback-reason').focus();
    return;
  }
  $('rollback-confirm').disabled = true;
  try {
    const run = await api(`/models/${encodeURIComponent(chosen)}/promote`, { method: 'POST', json: { reason } });
    $('rollback-form').hidden = true;
    setResult('rollback-result', `${run.detail?.version || chosen} is serving again (run ${run.run_id}).`, true);
    forget(); // another model: other forecasts
    await load();
  } catch (err) {
    if (!isSessionEnd(err)) setResult('rollback-result', `Could not serve ${chosen}. ${err.message}`, false);
  } finally {
    $('rollback-confirm').disabled = false;
  }
}

export function init() {
  $('models-refresh').addEventListener('click', load);
  $('rollback-form').addEventListener('submit', confirm);
  $('rollback-cancel').addEventListener('click', () => {
    $('rollback-form').hidden = true;
    document.querySelector(`#models-table button[data-version="${chosen}"]`)?.focus();
  });
}

export function enter() {
  $('rollback-form').hidden = true;
  load();
}
