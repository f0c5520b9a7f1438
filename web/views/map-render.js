// The map view's rendering: the map and its legend, the ranking of the areas, and the card of
// unusual months. Each function takes the data (and the state it is shown for) and fills its part.

import { areaName } from '../areas.js';
import { drawLegend, drawMap, formatChange } from '../choropleth.js';
import { $, h, numCell } from '../dom.js';
import { dataThroughText, formatCount, monthLabel, placeName, plural, roughCount, typeLabel } from '../format.js';
import { forecastHash } from '../router.js';

/** What the map shows: the next month's expected reports, or their change from the same month a year before. */
function mapCaption(data, change) {
  const lastYear = data.month ? monthLabel(`${Number(data.month.slice(0, 4)) - 1}${data.month.slice(4)}`) : 'last year';
  const what = change ? `Change from ${lastYear} to the forecast for ${monthLabel(data.month)}`
    : data.month ? `Reports expected in ${monthLabel(data.month)}, by community area` : 'Reports expected next month, by community area';
  return what + (data.data_through ? ` (${dataThroughText(data.data_through, data.data_gaps).replace(/^Data/, 'data').replace(/\.$/, '')})` : '');
}

/** The map (or why it cannot be drawn) and the ranking, from the outlines and one /predict/map answer. */
export function renderMap(projected, data, state, onSelect) {
  const rows = new Map((data.areas || []).map((row) => [Number(row.community_area), row]));
  const reasons = new Map((data.missing || []).map((m) => [Number(m.community_area), m.reason]));
  const type = typeLabel(data.crime_type || state.type);
  const change = state.mapMode === 'change';
  $('map-heading').textContent = change ? `${type}: expected against the same month last year` : `${type}: where the most reports are expected`;
  $('map-caption').textContent = mapCaption(data, change);
  const legend = $('map-legend');
  if (projected.error) {
    $('map').replaceChildren(h('p', { className: 'problem', text: `The map cannot be drawn: ${projected.error.message} ` +
      'The ranking of the areas is still shown.' }));
    legend.replaceChildren();
    legend.hidden = true;
  } else {
    const classes = drawMap($('map'), projected, {
      rows, month: data.month, selected: state.area, mode: state.mapMode, reasons, onSelect,
      label: `Map of the 77 community areas: ${type.toLowerCase()} ${change ? 'change from last year' : 'expected'} in ${monthLabel(data.month)}`,
    });
    legend.hidden = false;
    legend.dataset.mode = state.mapMode;
    legend.setAttribute('aria-label', change ? 'Legend: change from the same month last year' : 'Legend: reports expected');
    drawLegend(legend, classes, { missing: projected.areas.some((a) => !rows.has(a.number)) });
  }
  renderRanking([...rows.values()].sort((a, b) => a.rank - b.rank), data.missing || [], state, onSelect);
  $('map-result').hidden = false;
}

/** The ten areas with the most reports expected, and every area (those without a forecast last). */
function renderRanking(ranked, missing, state, onSelect) {
  const line = (row) => h('tr', {},
    h('td', { text: String(row.rank) }),
    h('td', {}, h('a', { href: forecastHash({ area: row.community_area, type: state.type, months: state.months }),
      text: row.name || areaName(row.community_area),
      onclick: (event) => { event.preventDefault(); onSelect(Number(row.community_area)); } })),
    numCell(formatCount(row.yhat)),
    numCell(`${formatCount(row.yhat_lower)}–${formatCount(row.yhat_upper)}`));
  $('top-table').tBodies[0].replaceChildren(...(ranked.length ? ranked.slice(0, 10).map(line)
    : [h('tr', {}, h('td', { colspan: 4, text: 'No area has a forecast for this crime type.' }))]));
  const none = missing.map((m) => h('tr', { className: 'row-none' },
    h('td', { text: '—' }), h('td', { text: m.name || areaName(m.community_area) }),
    h('td', { colspan: 3, text: `No forecast: ${m.reason}` })));
  $('all-table').tBodies[0].replaceChildren(...ranked.map((row) => {
    const tr = line(row);
    tr.append(numCell(formatChange(row.change_pct)));
    return tr;
  }), ...none);
}

/** One sentence on the unusual months of `type`, and how many series were checked. */
function alertsSummary(type, data) {
  const alerts = data.alerts || [];
  const areas = alerts.filter((a) => a.community_area != null);
  const above = areas.filter((a) => a.direction === 'above').length;
  const below = areas.filter((a) => a.direction === 'below').length;
  const month = data.months?.length === 1 ? ` in ${monthLabel(data.months[0])}` : '';
  const parts = [];
  if (above) parts.push(`higher than expected in ${above} ${plural(above, 'area')}`);
  if (below) parts.push(`lower than expected in ${below} ${plural(below, 'area')}`);
  const city = alerts.find((a) => a.community_area == null);
  if (city) parts.push(`${city.direction === 'above' ? 'higher' : 'lower'} than expected citywide`);
  const summary = parts.length ? `${typeLabel(type)}${month}: ${parts.join('; ')}.`
    : data.series_checked ? `${typeLabel(type)}${month}: no area was unusual.`
      : `${typeLabel(type)}: no month can be judged yet, because no forecast was issued before the latest month with data.`;
  if (!data.series_checked) return summary;
  return `${summary} ${formatCount(data.series_checked)} series checked: ${formatCount(data.outside_band ?? 0)} fell outside their likely range, ` +
    `about ${roughCount(data.expected_by_chance)} would by chance; only those further out than chance explains are listed.`;
}

/** The unusual months card from one /alerts answer: the series whose latest complete month fell outside its range. */
export function renderAlerts(type, data, state) {
  $('alerts-card').hidden = false;
  $('alerts-summary').textContent = alertsSummary(type, data);
  $('alerts-list').replaceChildren(...(data.alerts || []).slice(0, 10).map((a) => h('li', {},
    h('a', { href: forecastHash({ area: a.community_area, type: a.crime_type, months: state.months }),
      text: placeName(a.community_area, a.area_name) }),
    `: ${formatCount(a.count)} reported in ${monthLabel(a.month)}, ${a.direction === 'above' ? 'above' : 'below'} the likely range ` +
    `${formatCount(a.yhat_lower)}–${formatCount(a.yhat_upper)}`)));
  $('alerts-note').textContent = data.note || 'By chance alone about 1 month in 5 falls outside an 80% range.';
}

/** The unusual months card when they could not be checked. */
export function renderAlertsProblem(message) {
  $('alerts-card').hidden = false;
  $('alerts-summary').textContent = `Could not check for unusual months. ${message}`;
  $('alerts-list').replaceChildren();
}
