// Up to three series on one chart, told apart by line style as well as colour.

import { HISTORY_SHOWN, chartFrame, chartRoot, countScale, drawCountAxis, fixed, monthAxis, monthScale, pathThrough, svg } from './chart.js';
import { consecutiveRuns } from './format.js';

/** Colours and dashes of the compared series: told apart by line style as well as colour. */
export const COMPARE_STYLES = [
  { colour: '#1f5fa8', dash: null, name: 'solid line' },
  { colour: '#b45309', dash: '8 4', name: 'dashed line' },
  { colour: '#15803d', dash: '2 3', name: 'dotted line' },
];

/** A series' complete observed months that are shown: the last HISTORY_SHOWN. */
export function shownHistory(series) {
  return (series.history || []).filter((r) => !r.partial).slice(-HISTORY_SHOWN);
}

/**
 * Up to three series on one chart: each one's last HISTORY_SHOWN observed months (complete ones)
 * and its forecast, thinner. `series`: [{ label, history, forecast }].
 */
export function drawCompareChart(container, { series, title }) {
  container.replaceChildren();
  const months = [...new Set(series.flatMap((s) => [...shownHistory(s).map((r) => r.month), ...(s.forecast || []).map((f) => f.month)]))].sort();
  if (!months.length) return;
  const frame = chartFrame(container, 16);
  const maxValue = Math.max(1, ...series.flatMap((s) => [...(s.history || []).map((r) => r.count), ...(s.forecast || []).map((f) => f.yhat)]));
  const scales = { ...frame, months, ...monthScale(months, frame), ...countScale(maxValue, frame) };
  const root = chartRoot(container, frame, title, 'compare-title');
  drawCountAxis(root, scales, frame);
  drawYears(root, scales);
  series.forEach((s, i) => drawSeries(root, scales, s, COMPARE_STYLES[i % COMPARE_STYLES.length]));
}

/** The month axis: a tick and the year at each January and at the first month. */
function drawYears(root, s) {
  const { axis, base } = monthAxis(root, s);
  for (const month of s.months) {
    if (month.endsWith('-01') || month === s.months[0]) {
      svg('line', { x1: fixed(s.x(month)), x2: fixed(s.x(month)), y1: base, y2: base + 8 }, axis);
      svg('text', { x: fixed(s.x(month)), y: base + 24, class: 'chart-axis-year', 'text-anchor': 'middle' }, axis).textContent = month.slice(0, 4);
    }
  }
}

/** One series: a line through each run of observed months (none across months with no data), then its forecast. */
function drawSeries(root, { x, y }, s, style) {
  const observed = shownHistory(s);
  const line = (rows, value) => pathThrough(rows.map((r) => [x(r.month), y(value(r))]));
  const attrs = { stroke: style.colour, 'stroke-dasharray': style.dash, 'data-series': s.label };
  for (const run of consecutiveRuns(observed)) {
    if (run.length >= 2) svg('path', { class: 'compare-line', d: line(run, (r) => r.count), ...attrs }, root);
  }
  const ahead = s.forecast || [];
  if (ahead.length) {
    const last = observed[observed.length - 1];
    const joined = last ? [{ month: last.month, yhat: last.count }, ...ahead] : ahead;
    svg('path', { class: 'compare-line compare-forecast', d: line(joined, (f) => f.yhat), ...attrs }, root);
  }
}
