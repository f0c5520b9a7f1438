// The compare view: up to three series from the URL, loaded side by side, then drawn on one
// chart with a table of their months and of their last 12 months against the 12 before.

import * as API from '../api.js';
import { areaName, resolveArea } from '../areas.js';
import { drawFitted } from '../chart.js';
import { COMPARE_STYLES, drawCompareChart, shownHistory } from '../compare-chart.js';
import { latest, loadCatalog, loadForecast, settle } from '../data.js';
import { $, fillSelect, h, numCell, showProblem } from '../dom.js';
import { changeText, formatCount, monthLabel, placeName, seriesTitle, typeLabel } from '../format.js';
import { compareHash, defaultComparison, go, keepHash, reroute } from '../router.js';
import * as store from '../store.js';

const MAX_COMPARED = 3;
const loads = latest();

/** The series the URL names (at most three), else the current one next to the city's. */
function parseCompare(params) {
  const list = [];
  for (const part of (params.get('series') || '').split(',').filter(Boolean).slice(0, MAX_COMPARED)) {
    const [areaText, typeText] = decodeURIComponent(part).split(':');
    const area = areaText === 'city' ? null : resolveArea(areaText);
    if (area === undefined) continue;
    list.push({ area, type: (typeText || 'ALL').trim().toUpperCase() });
  }
  return list.length ? list : defaultComparison();
}

export async function enter(params) {
  store.set({ compare: parseCompare(params) });
  keepHash(compareHash());
  const current = loads.next();
  const chosen = store.get().compare;
  $('compare-problem').hidden = true;
  $('compare-status').textContent = 'Loading the series…';
  const catalog = await settle(loadCatalog(), current, (err) => {
    $('compare-status').textContent = '';
    showProblem('compare-problem', `Could not load the list of crime types. ${err.message}`, reroute);
  });
  if (catalog === undefined || !current()) return;
  for (let i = 0; i < MAX_COMPARED; i += 1) {
    $(`compare-area-${i}`).value = chosen[i] ? areaName(chosen[i].area) : '';
    fillSelect($(`compare-type-${i}`), catalog.types, typeLabel, chosen[i] && catalog.types.includes(chosen[i].type) ? chosen[i].type : 'ALL');
  }
  const results = await Promise.all(chosen.map((s) => loadForecast({ ...s, months: 12 })
    .then((data) => ({ ...s, data }), (error) => ({ ...s, error }))));
  if (!current()) return;
  $('compare-status').textContent = '';
  if (results.some((r) => r.error && API.isSessionEnd(r.error))) return;
  const failed = results.filter((r) => r.error);
  if (failed.length) {
    showProblem('compare-problem', failed.map((r) => `${seriesTitle(r.type, areaName(r.area), r.area == null)}: ${r.error.message}`).join(' '));
  }
  const shown = results.filter((r) => r.data);
  $('compare-result').hidden = !shown.length;
  if (shown.length) renderCompare(shown);
}

/** The chart, its legend and the two tables, for the series that loaded ([{ area, data }]). */
function renderCompare(shown) {
  const series = shown.map((r) => ({
    label: seriesTitle(r.data.crime_type, placeName(r.area, r.data.area_name), r.area == null),
    history: r.data.history || [], forecast: r.data.forecast || [], data: r.data,
  }));
  $('compare-heading').textContent = `Compare: ${series.map((s) => s.label).join(', ')}`;
  const levels = series.map((s) => Math.max(1, ...s.history.map((r) => r.count)));
  $('compare-caption').textContent = 'Reports per month over the last three years, and the forecast (thinner line)' +
    (Math.max(...levels) > 5 * Math.min(...levels) ? '. One series is far larger than another, so the smaller ones sit low on the ' +
      'same scale: read them in the numbers below.' : '');
  drawFitted($('compare-chart'), drawCompareChart, { series, title: `Reports per month and the forecast: ${series.map((s) => s.label).join('; ')}` });
  $('compare-legend').replaceChildren(...series.map((s, i) => {
    const key = h('span', { className: 'key key-line', 'aria-hidden': 'true' });
    key.style.borderTopColor = COMPARE_STYLES[i].colour;
    key.style.borderTopStyle = COMPARE_STYLES[i].dash ? (i === 1 ? 'dashed' : 'dotted') : 'solid';
    return h('li', {}, key, `${s.label} (${COMPARE_STYLES[i].name})`);
  }));
  renderMonths(series);
  renderYears(series);
}

/** Every month shown, newest first: each series' count, or its forecast. */
function renderMonths(series) {
  const months = [...new Set(series.flatMap((s) => [...shownHistory(s).map((r) => r.month), ...s.forecast.map((f) => f.month)]))].sort().reverse();
  const table = $('compare-table');
  table.tHead.replaceChildren(h('tr', {}, h('th', { scope: 'col', text: 'Month' }),
    ...series.map((s) => h('th', { scope: 'col', className: 'num', text: s.label }))));
  table.tBodies[0].replaceChildren(...months.map((month) => h('tr', {}, h('th', { scope: 'row', text: monthLabel(month) }),
    ...series.map((s) => {
      const o = s.history.find((r) => r.month === month && !r.partial);
      const f = s.forecast.find((r) => r.month === month);
      return numCell(o ? formatCount(o.count) : f ? `${formatCount(f.yhat)} (forecast)` : '');
    }))));
}

/** Each series' last 12 months against the 12 before, and where its data stop. */
function renderYears(series) {
  $('compare-year-table').tBodies[0].replaceChildren(...series.map((s) => {
    const c = s.data.comparison?.last_12;
    return h('tr', {}, h('th', { scope: 'row', text: s.label }), numCell(formatCount(c?.now)),
      numCell(formatCount(c?.before)), numCell(changeText(c)),
      h('td', { text: `${monthLabel(s.data.data_through)}${(s.data.data_gaps || []).map((g) => `; no data ${g.from} to ${g.to}`).join('')}` }));
  }));
}

function onCompare(event) {
  event.preventDefault();
  const list = [];
  for (let i = 0; i < MAX_COMPARED; i += 1) {
    const text = $(`compare-area-${i}`).value.trim();
    if (!text) continue;
    const area = resolveArea(text);
    if (area === undefined) {
      showProblem('compare-problem', `No community area is called “${text}”. Pick a name from the list, or type Citywide.`);
      $(`compare-area-${i}`).focus();
      return;
    }
    list.push({ area, type: $(`compare-type-${i}`).value });
  }
  if (!list.length) {
    showProblem('compare-problem', 'Choose at least one area, or Citywide.');
    return;
  }
  go(compareHash(list));
}

export function init() {
  $('compare-form').addEventListener('submit', onCompare);
}
