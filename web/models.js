// The admin page's model versions: each one's backtest and live accuracy, and serving an
// earlier one again (a rollback: POST /models/{version}/promote with the reason).

import { api, isSessionEnd } from './api.js';
import { h } from './dom.js';
import { formatCount, formatMetric, formatPercent, formatTime } from './format.js';

const $ = (id) => document.getElementById(id);
let hooks = { onModelChanged: () => {} };
let ticket = 0;
let chosen = null;

function setResult(message, ok) {
  const node = $('rollback-result');
  node.textContent = message;
  node.className = `form-result ${ok ? 'is-ok' : 'is-error'}`;
}

async function load() {
  const mine = ++ticket;
  $('models-status').textContent = 'Loading the model versions…';
  let data;
  try {
    data = await api('/models');
  } catch (err) {
    if (mine !== ticket || isSessionEnd(err)) return;
    $('models-status').textContent = `Could not load the model versions. ${err.message}`;
    $('models-table').hidden = true;
    return;
  }
  if (mine !== ticket) return;
  const versions = data.versions || [];
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
      h('td', { className: 'num', text: formatCount(v.series) }),
      h('td', { className: 'num', text: formatMetric(v.backtest?.median_mase, 2) }),
      h('td', { className: 'num', text: formatPercent(v.backtest?.coverage) }),
      h('td', { className: 'num', text: v.live ? `${formatMetric(v.live.median_live_mase, 2)} (${formatCount(v.live.series_evaluated)} series)` : 'not scored yet' }),
      h('td', { text: v.promoted ? `${formatTime(v.promoted.promoted_at)} by ${v.promoted.by}` : 'never' }),
      h('td', {}, action));
  }));
}

function ask(version) {
  chosen = version;
  $('rollback-version').textContent = version;
  $('rollback-reason').value = '';
  $('rollback-form').hidden = false;
  setResult('', true);
  $('rollback-reason').focus();
}

async function confirm(event) {
  event.preventDefault();
  const reason = $('rollback-reason').value.trim();
  if (!reason) {
    setResult('Say why this version should serve again: the reason is kept with the change.', false);
    $('rollback-reason').focus();
    return;
  }
  $('rollback-confirm').disabled = true;
  try {
    const run = await api(`/models/${encodeURIComponent(chosen)}/promote`, { method: 'POST', json: { reason } });
    $('rollback-form').hidden = true;
    setResult(`${run.detail?.version || chosen} is serving again (run ${run.run_id}).`, true);
    hooks.onModelChanged();
    await load();
  } catch (err) {
    if (!isSessionEnd(err)) setResult(`Could not serve ${chosen}. ${err.message}`, false);
  } finally {
    $('rollback-confirm').disabled = false;
  }
}

export function init(options) {
  hooks = { ...hooks, ...options };
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
