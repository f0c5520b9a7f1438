// The forecast view's rendering: from one /predict answer, the headline, the chart, the table
// of numbers, the comparison with last year and the accuracy. Each function takes data and
// fills its part of the view.

import { HISTORY_SHOWN, drawFitted } from '../chart.js';
import { $, h, numCell } from '../dom.js';
import { drawForecastChart } from '../forecast-chart.js';
import {
  METRIC_ROWS, accuracySentences, bestMethods, changeText, dataThroughText, formatCount, formatDate, formatMetricValue, isNumber,
  METHODS, monthLabel, placeName, plural, roughCount, seriesTitle, typeLabel,
} from '../format.js';

export function renderForecast(data) {
  const isCity = data.community_area == null;
  const place = placeName(data.community_area, data.area_name);
  const title = seriesTitle(data.crime_type, place, isCity);
  $('forecast-heading').textContent = title;
  $('forecast-result').hidden = false; // shown first, so the chart is drawn at its real width
  const history = Array.isArray(data.history) ? data.history : [];
  const forecast = Array.isArray(data.forecast) ? data.forecast : [];
  const unusual = data.unusual || [];
  renderHeadline(history, forecast);
  renderDataThrough($('forecast-data-through'), data.data_through, data.data_gaps);
  const first = forecast[0];
  drawFitted($('chart'), drawForecastChart,
    { history, forecast, unusual, title: `${title}: reports per month${first ? ` and the forecast from ${monthLabel(first.month)}` : ''}` });
  $('chart-caption').textContent = `${typeLabel(data.crime_type)}, ${isCity ? 'all of Chicago' : place}: ` +
    (data.data_gaps?.length ? `reports per month in the last ${HISTORY_SHOWN} months with data, and the forecast`
      : 'reports per month over the last three years, and the forecast');
  renderNumbers(history.slice(-HISTORY_SHOWN), forecast, unusual, data.data_gaps || []);
  renderUnusualNote(unusual);
  renderComparison(data.comparison);
  renderAccuracy(data, history);
  $('forecast-result').hidden = false;
}

/** The first forecast month in words, and the total over the horizon. */
function renderHeadline(history, forecast) {
  const headline = $('forecast-headline');
  const first = forecast[0];
  if (!first) {
    headline.textContent = 'This forecast has no months in it.';
    return;
  }
  const rest = [`likely between ${formatCount(first.yhat_lower)} and ${formatCount(first.yhat_upper)}.`];
  const partial = history.find((row) => row.partial && row.month === first.month);
  if (partial) rest.push(`${formatCount(partial.count)} reported so far; that month's figures are not complete yet.`);
  if (forecast.length > 1) {
    const total = forecast.reduce((sum, f) => sum + (isNumber(f.yhat) ? f.yhat : 0), 0);
    rest.push(`Over the ${forecast.length} months to ${monthLabel(forecast[forecast.length - 1].month)}: about ${roughCount(total)} in total.`);
  }
  headline.replaceChildren(
    h('strong', { text: `${monthLabel(first.month)}: ${first.yhat < 0.5 ? 'fewer than 1 report'
      : `about ${roughCount(first.yhat)} ${plural(first.yhat, 'report')}`} expected` }),
    `, ${rest.join(' ')}`);
}

/** Says the month a series' data end and the months inside it with no data, and plainly when
 * the end is long past: a stale series is not current. */
function renderDataThrough(element, month, gaps = []) {
  if (!month) {
    element.textContent = '';
    element.classList.remove('stale');
    return;
  }
  const now = new Date();
  const monthsOld = (now.getUTCFullYear() * 12 + now.getUTCMonth()) - (Number(month.slice(0, 4)) * 12 + Number(month.slice(5, 7)) - 1);
  const stale = monthsOld > 3;
  element.textContent = dataThroughText(month, gaps) + (stale
    ? ' These reports are not up to date: the forecast starts from the last month with data, not from today.' : '');
  element.classList.toggle('stale', stale);
}

function span(from, to) {
  return from && to ? `${monthLabel(from)} – ${monthLabel(to)}` : '';
}

/** Last 12 months, year to date and the coming 12 months, each against a year before. */
function renderComparison(c) {
  const body = $('comparison-table').tBodies[0];
  if (!c || !c.last_12) {
    body.replaceChildren(h('tr', {}, h('td', { colspan: 4, text: 'Not enough complete months to compare with last year.' })));
    $('comparison-note').textContent = '';
    return;
  }
  const row = (label, part, when) => h('tr', {},
    h('th', { scope: 'row' }, label, h('br'), h('span', { className: 'fine-print', text: when })),
    numCell(formatCount(part?.now)), numCell(formatCount(part?.before)), numCell(changeText(part)));
  const ytd = c.year_to_date;
  body.replaceChildren(
    row('Last 12 months', c.last_12, `${span(c.last_12.from, c.last_12.to)}, against ${span(c.last_12.before_from, c.last_12.before_to)}`),
    row('Year to date', ytd, `${span(ytd.from, ytd.to)}, against ${span(ytd.before_from, ytd.before_to)}`),
    row('Next 12 months (forecast)', c.next_12, `${span(c.next_12.from, c.next_12.to)}, against the last 12 months`));
  $('comparison-note').textContent = `Complete months only, through ${monthLabel(c.data_through)}; recent months may still be revised.`;
}

function renderUnusualNote(unusual) {
  $('unusual-note').textContent = unusual.length
    ? `${unusual.length} of the months shown ${unusual.length === 1 ? 'was' : 'were'} unusual (ringed): further outside the range ` +
      'forecast for them beforehand than chance explains across the city\'s series. By chance alone about 1 month in 5 falls outside its range.'
    : 'No month shown was unusual. Each month is judged when its data arrive, against the range forecast for it beforehand; ' +
      'by chance alone about 1 month in 5 falls outside its range.';
}

/** The chart as a table, newest first; a run of months with no data is one row that says so. */
function renderNumbers(history, forecast, unusual = [], gaps = []) {
  const outside = new Map(unusual.map((u) => [u.month, u]));
  const rows = new Map();
  for (const row of history) rows.set(row.month, { observed: row });
  for (const f of forecast) rows.set(f.month, { ...(rows.get(f.month) || {}), forecast: f });
  const shown = [...rows.keys()].sort();
  for (const g of gaps) {
    if (shown.length && g.from > shown[0] && g.to < shown[shown.length - 1]) rows.set(g.from, { gap: g });
  }
  $('numbers-table').tBodies[0].replaceChildren(...[...rows.keys()].sort().reverse().map((month) => {
    const { observed, forecast: f, gap } = rows.get(month);
    if (gap) {
      return h('tr', { className: 'no-data' },
        h('th', { scope: 'row', text: span(gap.from, gap.to) }),
        h('td', { colspan: 4, text: 'No data for these months' }));
    }
    const u = outside.get(month);
    return h('tr', {},
      h('th', { scope: 'row', text: monthLabel(month) }),
      numCell(observed ? `${formatCount(observed.count)}${observed.partial ? ' (partial)' : ''}` : ''),
      numCell(f ? formatCount(f.yhat) : ''),
      numCell(f ? `${formatCount(f.yhat_lower)}–${formatCount(f.yhat_upper)}` : ''),
      h('td', { text: u ? `${u.direction === 'above' ? 'Higher' : 'Lower'} than the range ` +
        `${formatCount(u.yhat_lower)}–${formatCount(u.yhat_upper)} forecast before it` : '' }));
  }));
}

/** The accuracy in words, the bars of typical misses, the table of test scores and its notes. */
function renderAccuracy(data, history) {
  const metrics = data.metrics || {};
  const complete = history.filter((row) => !row.partial).slice(-12);
  const typical = complete.length ? complete.reduce((s, r) => s + r.count, 0) / complete.length : null;
  $('accuracy-text').replaceChildren(...accuracySentences(metrics, typical).map((text) => h('p', { text })));
  renderMaeBars(metrics);
  renderScores(metrics);
  const origins = metrics.origins ?? (metrics.backtest_origin ? [metrics.backtest_origin] : []);
  $('scores-note').textContent = origins.length
    ? `Each way forecast the 12 months after ${origins.map(monthLabel).join(' and after ')} from the data up to then, ` +
      `and was compared with what was reported${origins.length > 1 ? ' (the figures are means over those tests)' : ''}. ` +
      `'Same month last year' repeats last year's count. The best score in each row is in bold; — means no score.`
    : 'No test has been run for this series yet; — means no score.';
  $('metrics-note').textContent = `Model version ${data.model_version || 'unknown'}` +
    `${data.trained_at ? `, trained ${formatDate(data.trained_at)}` : ''}.`;
}

/** Each method's score on each measure, the best marked. */
function renderScores(metrics) {
  const table = $('metrics-table');
  $('metrics-caption').textContent = "How the model and 'same month last year' did in this series' tests";
  table.tHead.replaceChildren(h('tr', {}, h('th', { scope: 'col', text: 'Measure' }),
    ...METHODS.map((m) => h('th', { scope: 'col', className: 'num', text: m.label }))));
  table.tBodies[0].replaceChildren(...METRIC_ROWS.map((row) => {
    const best = bestMethods(metrics, row);
    return h('tr', {},
      h('th', { scope: 'row' }, row.label, ' ', h('abbr', { title: row.help, text: `(${row.abbr})` })),
      ...METHODS.map((m) => {
        const value = metrics[m.key]?.[row.key];
        const cell = h('td', { className: best.has(m.key) ? 'num best' : 'num' });
        if (isNumber(value)) {
          cell.textContent = formatMetricValue(row, value);
          if (best.has(m.key)) cell.append(h('span', { className: 'visually-hidden', text: ' (best)' }));
        } else {
          cell.append(h('span', { 'aria-hidden': 'true', text: '—' }), h('span', { className: 'visually-hidden', text: 'not available' }));
        }
        return cell;
      }));
  }));
}

/** One bar per method: the typical miss (MAE) of each method, the model's highlighted. */
function renderMaeBars(metrics) {
  const values = METHODS.map((m) => metrics[m.key]?.mae);
  const top = Math.max(...values.filter(isNumber), 0);
  $('mae-bars').hidden = !(top > 0);
  $('mae-bars-rows').replaceChildren(...METHODS.map((m, i) => {
    const value = values[i];
    const bar = h('span', { className: `bar${m.key === 'model' ? ' bar-model' : ''}` });
    bar.style.width = isNumber(value) && top > 0 ? `${Math.max(1, (value / top) * 100)}%` : '0';
    return h('div', { className: 'bar-row' },
      h('span', { className: 'bar-label', text: m.label }),
      h('span', { className: 'bar-track', 'aria-hidden': 'true' }, bar),
      h('span', { className: 'bar-value', text: isNumber(value) ? formatMetricValue(METRIC_ROWS[0], value) : 'no score' }));
  }));
}
