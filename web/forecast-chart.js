// The forecast chart: observed monthly counts, the forecast line and its 80% band, as SVG.
// drawForecastChart puts together its parts: the scales, the labels (forecast shading and the
// two axes), the band, the lines, and the markers (points, gaps, unusual months), then the hover.

import {
  HISTORY_SHOWN, chartFrame, chartRoot, countScale, drawCountAxis, fixed, monthAxis, monthScale, pathThrough, svg,
} from './chart.js';
import { fillTooltip, h, placeTooltip } from './dom.js';
import { consecutiveRuns, formatCount, monthLabel, nextMonth, previousMonth, shortMonth } from './format.js';

/**
 * Draw the chart into `container` (replacing what was there). `history` and `forecast` are
 * the API's lists; the last HISTORY_SHOWN observed months are drawn.
 */
export function drawForecastChart(container, { history, forecast, title, unusual = [] }) {
  container.replaceChildren();
  const observed = (history || []).slice(-HISTORY_SHOWN);
  const ahead = forecast || [];
  const s = forecastScales(container, observed, ahead);
  if (!s) {
    container.append(h('p', { className: 'empty', text: 'There is nothing to draw for this forecast.' }));
    return;
  }
  const root = chartRoot(container, s, title, 'chart-title', { preserveAspectRatio: 'xMidYMid meet' });
  drawForecastShade(root, s, ahead);
  drawCountAxis(root, s, s);
  drawMonthLabels(root, s);
  drawBand(root, s, ahead);
  drawForecastLine(root, s, observed, ahead);
  const runs = consecutiveRuns(observed.filter((row) => !row.partial));
  drawObservedLines(root, s, runs);
  drawGapMarks(root, s, runs);
  drawPoints(root, s, observed);
  drawUnusualRings(root, s, unusual || []);
  addHover(container, root, s, observed, ahead);
}

// --- scales ------------------------------------------------------------------------------

/** Every month shown (observed and forecast, in order) on x, the counts and the band's top on y; null when there is none. */
function forecastScales(container, observed, ahead) {
  const months = [...new Set([...observed.map((row) => row.month), ...ahead.map((f) => f.month)])].sort();
  if (!months.length) return null;
  const frame = chartFrame(container, 30);
  const maxValue = Math.max(1, ...observed.map((row) => row.count), ...ahead.map((f) => f.yhat_upper ?? f.yhat));
  return { ...frame, months, ...monthScale(months, frame), ...countScale(maxValue, frame) };
}

// --- labels ------------------------------------------------------------------------------

/** The forecast part of the timeline, shaded, with its label. */
function drawForecastShade(root, { x, step, months, margin, plotH, W }, ahead) {
  if (!ahead.length) return;
  const start = x(ahead[0].month) - (months.length > 1 ? step / 2 : 0);
  svg('rect', { class: 'chart-future', x: fixed(start), y: margin.top - 22, width: fixed(W - margin.right - start),
    height: plotH + 22 }, root);
  svg('text', { class: 'chart-future-label', x: fixed(start + 6), y: margin.top - 8 }, root).textContent = 'Forecast';
}

/**
 * The month axis: a tick each month, the year under each January, the month every quarter
 * (every half year, or none, when the months are too close together to read).
 */
function drawMonthLabels(root, s) {
  const { months, x, step } = s;
  const { axis, base } = monthAxis(root, s);
  const labelEvery = [3, 6].find((n) => step * n >= 34) ?? 0;
  let lastLabelX = -Infinity; // months either side of a gap in the data sit side by side: one label, not two overlapping
  for (const month of months) {
    const m = Number(month.slice(5, 7));
    const major = m === 1;
    svg('line', { x1: fixed(x(month)), x2: fixed(x(month)), y1: base, y2: base + (major ? 8 : 4) }, axis);
    if (labelEvery && (m - 1) % labelEvery === 0 && x(month) - lastLabelX >= 30) {
      lastLabelX = x(month);
      svg('text', { x: fixed(x(month)), y: base + 20, class: 'chart-axis-label', 'text-anchor': 'middle' }, axis)
        .textContent = shortMonth(month);
    }
    if (major || month === months[0]) {
      svg('text', { x: fixed(x(month)), y: base + 37, class: 'chart-axis-year', 'text-anchor': 'middle' }, axis)
        .textContent = month.slice(0, 4);
    }
  }
}

// --- band and lines ----------------------------------------------------------------------

/** The 80% band around the forecast. */
function drawBand(root, { x, y }, ahead) {
  if (!ahead.length) return;
  const upper = ahead.map((f) => [x(f.month), y(f.yhat_upper ?? f.yhat)]);
  const lower = ahead.map((f) => [x(f.month), y(f.yhat_lower ?? f.yhat)]).reverse();
  const band = svg('path', { class: 'chart-band', d: `${pathThrough([...upper, ...lower])}Z` }, root);
  svg('title', {}, band).textContent = 'Likely range (80%)';
}

/** The forecast line, joined to the last complete observed month before it. */
function drawForecastLine(root, { x, y, index }, observed, ahead) {
  if (!ahead.length) return;
  const lastComplete = [...observed].reverse().find((row) => !row.partial && index.get(row.month) < index.get(ahead[0].month));
  const points = ahead.map((f) => [x(f.month), y(f.yhat)]);
  if (lastComplete) points.unshift([x(lastComplete.month), y(lastComplete.count)]);
  svg('path', { class: 'chart-forecast', d: pathThrough(points) }, root);
}

/** A line through each run of complete months: none crosses months with no data. */
function drawObservedLines(root, { x, y }, runs) {
  for (const run of runs) {
    if (run.length > 1) svg('path', { class: 'chart-observed', d: pathThrough(run.map((row) => [x(row.month), y(row.count)])) }, root);
  }
}

// --- markers -----------------------------------------------------------------------------

/** Between two runs of months, a dashed mark that says which months have no data. */
function drawGapMarks(root, { x, margin, plotH }, runs) {
  for (let i = 1; i < runs.length; i += 1) {
    const before = runs[i - 1][runs[i - 1].length - 1].month;
    const after = runs[i][0].month;
    const from = nextMonth(before);
    const to = previousMonth(after);
    const mid = (x(before) + x(after)) / 2;
    const mark = svg('g', { class: 'chart-gap', 'data-from': from, 'data-to': to }, root);
    svg('line', { x1: fixed(mid), x2: fixed(mid), y1: margin.top, y2: margin.top + plotH }, mark);
    svg('text', { class: 'chart-gap-label', x: fixed(mid), y: margin.top + 12, 'text-anchor': 'middle' }, mark).textContent = 'no data';
    svg('title', {}, mark).textContent = `No data ${from} to ${to}: the line does not cross these months`;
  }
}

/** A point for each observed month, hollow and larger for a partial one. */
function drawPoints(root, { x, y }, observed) {
  const dots = svg('g', { class: 'chart-points' }, root);
  for (const row of observed) {
    const dot = svg('circle', {
      class: row.partial ? 'chart-point chart-point-partial' : 'chart-point',
      cx: fixed(x(row.month)), cy: fixed(y(row.count)), r: row.partial ? 5 : 2.6, 'data-month': row.month,
    }, dots);
    svg('title', {}, dot).textContent = `${monthLabel(row.month)}: ${formatCount(row.count)} reports` +
      (row.partial ? ' (partial month, not used for training)' : '');
  }
}

/** Months outside the range forecast for them beforehand: a ring, up or down marked in its title. */
function drawUnusualRings(root, { x, y, index }, unusual) {
  const marks = svg('g', { class: 'chart-unusual-marks' }, root);
  for (const u of unusual) {
    if (!index.has(u.month)) continue;
    const ring = svg('circle', { class: `chart-unusual chart-unusual-${u.direction}`, cx: fixed(x(u.month)), cy: fixed(y(u.count)), r: 7,
      'data-month': u.month }, marks);
    svg('title', {}, ring).textContent = `${monthLabel(u.month)}: ${formatCount(u.count)} reports, ${u.direction} the likely range ` +
      `${formatCount(u.yhat_lower)}–${formatCount(u.yhat_upper)} forecast before it`;
  }
}

// --- hover -------------------------------------------------------------------------------

/** A guide line and a tooltip that follow the pointer, or the arrow keys when the chart has focus. */
function addHover(container, root, { months, x, y, margin, plotH, W, H }, observed, ahead) {
  const byMonth = new Map(months.map((m) => [m, {}]));
  for (const row of observed) byMonth.get(row.month).observed = row;
  for (const f of ahead) byMonth.get(f.month).forecast = f;

  const guide = svg('line', { class: 'chart-guide', y1: margin.top, y2: margin.top + plotH, visibility: 'hidden' }, root);
  const marker = svg('circle', { class: 'chart-marker', r: 5, visibility: 'hidden' }, root);
  const tip = h('div', { className: 'chart-tooltip', hidden: true });
  container.appendChild(tip);
  root.setAttribute('tabindex', '0');
  root.setAttribute('aria-describedby', 'chart-keys');

  let current = -1;
  const show = (i) => {
    current = Math.max(0, Math.min(months.length - 1, i));
    const month = months[current];
    const { observed: o, forecast: f } = byMonth.get(month);
    const px = x(month);
    const value = f ? f.yhat : o.count;
    for (const [name, v] of [['x1', px], ['x2', px], ['visibility', 'visible']]) guide.setAttribute(name, v);
    for (const [name, v] of [['cx', px], ['cy', y(value)], ['visibility', 'visible']]) marker.setAttribute(name, v);
    const lines = [];
    if (o) lines.push(`Reported: ${formatCount(o.count)}${o.partial ? ' (partial month)' : ''}`);
    if (f) lines.push(`Forecast: ${formatCount(f.yhat)}`, `Likely range: ${formatCount(f.yhat_lower)}–${formatCount(f.yhat_upper)}`);
    fillTooltip(tip, monthLabel(month), lines);
    const box = root.getBoundingClientRect();
    placeTooltip(tip, (px / W) * box.width, (y(value) / H) * box.height, box.width, { flipAt: 0.62, gap: 14, lift: 24, minTop: 4 });
  };
  const hide = () => {
    guide.setAttribute('visibility', 'hidden');
    marker.setAttribute('visibility', 'hidden');
    tip.hidden = true;
  };
  root.addEventListener('pointermove', (event) => {
    const box = root.getBoundingClientRect();
    const px = ((event.clientX - box.left) / box.width) * W;
    let nearest = 0;
    for (let i = 1; i < months.length; i += 1) {
      if (Math.abs(x(months[i]) - px) < Math.abs(x(months[nearest]) - px)) nearest = i;
    }
    show(nearest);
  });
  root.addEventListener('pointerleave', hide);
  root.addEventListener('blur', hide);
  root.addEventListener('keydown', (event) => {
    const moves = { ArrowLeft: -1, ArrowRight: 1, Home: -Infinity, End: Infinity };
    if (!(event.key in moves)) {
      if (event.key === 'Escape') hide();
      return;
    }
    event.preventDefault();
    const start = current < 0 ? months.length - ahead.length - 1 : current;
    const move = moves[event.key];
    show(move === -Infinity ? 0 : move === Infinity ? months.length - 1 : start + move);
  });
}
