// The forecast chart: observed monthly counts, the forecast line and its 80% band, as SVG.

import { consecutiveRuns, formatCount, monthLabel, nextMonth, previousMonth, shortMonth } from './format.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
export const HISTORY_SHOWN = 36;

export function svg(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(key, String(value));
  }
  if (parent) parent.appendChild(node);
  return node;
}

function niceStep(range, count) {
  const raw = range / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const fraction = raw / power;
  const nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 2.5 ? 2.5 : fraction <= 5 ? 5 : 10;
  return nice * power;
}

/** 0 and round steps up to at least `max`, about `count` of them. */
export function niceTicks(max, count = 5) {
  const top = Math.max(max, 1);
  let step = niceStep(top, count);
  if (step < 1) step = 1;
  const ticks = [];
  for (let v = 0; v < top + step * 0.999; v += step) ticks.push(Math.round(v * 1e6) / 1e6);
  if (ticks[ticks.length - 1] < top) ticks.push(ticks[ticks.length - 1] + step);
  return ticks;
}

const fixed = (n) => (Math.round(n * 10) / 10).toString();

/**
 * Draw the chart into `container` (replacing what was there). `history` and `forecast` are
 * the API's lists; the last HISTORY_SHOWN observed months are drawn.
 */
export function drawForecastChart(container, { history, forecast, title, unusual = [] }) {
  container.replaceChildren();
  const observed = (history || []).slice(-HISTORY_SHOWN);
  const ahead = forecast || [];
  const months = [];
  const index = new Map();
  for (const month of [...observed.map((h) => h.month), ...ahead.map((f) => f.month)].sort()) {
    if (!index.has(month)) {
      index.set(month, months.length);
      months.push(month);
    }
  }
  if (!months.length) {
    const p = document.createElement('p');
    p.className = 'empty';
    p.textContent = 'There is nothing to draw for this forecast.';
    container.appendChild(p);
    return;
  }

  // Drawn at the container's own width, so its text keeps its size on a phone.
  const W = Math.round(Math.min(1000, Math.max(300, container.clientWidth || 760)));
  const H = Math.round(Math.min(380, Math.max(250, W * 0.48)));
  const margin = { top: 30, right: 18, bottom: 46, left: W < 480 ? 46 : 58 };
  const plotW = W - margin.left - margin.right;
  const plotH = H - margin.top - margin.bottom;
  const step = months.length > 1 ? plotW / (months.length - 1) : plotW;
  const x = (month) => margin.left + (months.length > 1 ? index.get(month) * step : plotW / 2);
  const maxValue = Math.max(1, ...observed.map((h) => h.count), ...ahead.map((f) => f.yhat_upper ?? f.yhat));
  const ticks = niceTicks(maxValue, 5);
  const yTop = ticks[ticks.length - 1];
  const y = (value) => margin.top + plotH - (Math.max(0, value) / yTop) * plotH;

  const titleId = `chart-title-${Math.random().toString(36).slice(2, 8)}`;
  const root = svg('svg', {
    viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-labelledby': titleId,
    preserveAspectRatio: 'xMidYMid meet',
  }, container);
  const titleNode = svg('title', { id: titleId }, root);
  titleNode.textContent = title;

  // The forecast part of the timeline, shaded, with its label.
  if (ahead.length) {
    const start = x(ahead[0].month) - (months.length > 1 ? step / 2 : 0);
    svg('rect', { class: 'chart-future', x: fixed(start), y: margin.top - 22, width: fixed(W - margin.right - start),
      height: plotH + 22 }, root);
    const label = svg('text', { class: 'chart-future-label', x: fixed(start + 6), y: margin.top - 8 }, root);
    label.textContent = 'Forecast';
  }

  // Horizontal grid and the count axis.
  const grid = svg('g', { class: 'chart-grid', 'aria-hidden': 'true' }, root);
  for (const tick of ticks) {
    svg('line', { x1: margin.left, x2: W - margin.right, y1: fixed(y(tick)), y2: fixed(y(tick)) }, grid);
    const text = svg('text', { x: margin.left - 8, y: fixed(y(tick) + 4), class: 'chart-axis-label', 'text-anchor': 'end' }, grid);
    text.textContent = formatCount(tick);
  }

  // Month axis: a tick each month, the year under each January, the month every quarter
  // (every half year, or none, when the months are too close together to read).
  const labelEvery = [3, 6].find((n) => step * n >= 34) ?? 0;
  const axis = svg('g', { class: 'chart-axis', 'aria-hidden': 'true' }, root);
  const base = margin.top + plotH;
  svg('line', { x1: margin.left, x2: W - margin.right, y1: base, y2: base, class: 'chart-baseline' }, axis);
  let lastLabelX = -Infinity; // months either side of a gap in the data sit side by side: one label, not two overlapping
  for (const month of months) {
    const m = Number(month.slice(5, 7));
    const major = m === 1;
    svg('line', { x1: fixed(x(month)), x2: fixed(x(month)), y1: base, y2: base + (major ? 8 : 4) }, axis);
    if (labelEvery && (m - 1) % labelEvery === 0 && x(month) - lastLabelX >= 30) {
      lastLabelX = x(month);
      const label = svg('text', { x: fixed(x(month)), y: base + 20, class: 'chart-axis-label', 'text-anchor': 'middle' }, axis);
      label.textContent = shortMonth(month);
    }
    if (major || month === months[0]) {
      const year = svg('text', { x: fixed(x(month)), y: base + 37, class: 'chart-axis-year', 'text-anchor': 'middle' }, axis);
      year.textContent = month.slice(0, 4);
    }
  }

  // The 80% band and the forecast line, joined to the last complete observed month.
  if (ahead.length) {
    const upper = ahead.map((f) => `${fixed(x(f.month))},${fixed(y(f.yhat_upper ?? f.yhat))}`);
    const lower = ahead.map((f) => `${fixed(x(f.month))},${fixed(y(f.yhat_lower ?? f.yhat))}`).reverse();
    const band = svg('path', { class: 'chart-band', d: `M${upper.join('L')}L${lower.join('L')}Z` }, root);
    svg('title', {}, band).textContent = 'Likely range (80%)';
    const lastComplete = [...observed].reverse().find((h) => !h.partial && index.get(h.month) < index.get(ahead[0].month));
    const points = ahead.map((f) => `${fixed(x(f.month))},${fixed(y(f.yhat))}`);
    if (lastComplete) points.unshift(`${fixed(x(lastComplete.month))},${fixed(y(lastComplete.count))}`);
    svg('path', { class: 'chart-forecast', d: `M${points.join('L')}` }, root);
  }

  // Observed counts: a line through each run of complete months, a hollow point for a partial
  // one. Months with no data (a gap between two sources) are not in the history: no line crosses
  // them, and a dashed mark between the runs says which months they are.
  const complete = observed.filter((h) => !h.partial);
  const runs = consecutiveRuns(complete);
  for (const run of runs) {
    if (run.length > 1) {
      svg('path', { class: 'chart-observed', d: `M${run.map((h) => `${fixed(x(h.month))},${fixed(y(h.count))}`).join('L')}` }, root);
    }
  }
  for (let i = 1; i < runs.length; i += 1) {
    const before = runs[i - 1][runs[i - 1].length - 1].month;
    const after = runs[i][0].month;
    const from = nextMonth(before);
    const to = previousMonth(after);
    const mid = (x(before) + x(after)) / 2;
    const mark = svg('g', { class: 'chart-gap', 'data-from': from, 'data-to': to }, root);
    svg('line', { x1: fixed(mid), x2: fixed(mid), y1: margin.top, y2: margin.top + plotH }, mark);
    const label = svg('text', { class: 'chart-gap-label', x: fixed(mid), y: margin.top + 12, 'text-anchor': 'middle' }, mark);
    label.textContent = 'no data';
    svg('title', {}, mark).textContent = `No data ${from} to ${to}: the line does not cross these months`;
  }
  const dots = svg('g', { class: 'chart-points' }, root);
  for (const h of observed) {
    const dot = svg('circle', {
      class: h.partial ? 'chart-point chart-point-partial' : 'chart-point',
      cx: fixed(x(h.month)), cy: fixed(y(h.count)), r: h.partial ? 5 : 2.6, 'data-month': h.month,
    }, dots);
    svg('title', {}, dot).textContent = `${monthLabel(h.month)}: ${formatCount(h.count)} reports` +
      (h.partial ? ' (partial month, not used for training)' : '');
  }

  // Months outside the range forecast for them beforehand: a ring, up or down marked in its title.
  const marks = svg('g', { class: 'chart-unusual-marks' }, root);
  for (const u of unusual || []) {
    if (!index.has(u.month)) continue;
    const ring = svg('circle', { class: `chart-unusual chart-unusual-${u.direction}`, cx: fixed(x(u.month)), cy: fixed(y(u.count)), r: 7,
      'data-month': u.month }, marks);
    svg('title', {}, ring).textContent = `${monthLabel(u.month)}: ${formatCount(u.count)} reports, ${u.direction} the likely range ` +
      `${formatCount(u.yhat_lower)}–${formatCount(u.yhat_upper)} forecast before it`;
  }

  addHover(container, root, { months, x, y, observed, ahead, margin, plotH, W, H });
}

/** Colours and dashes of the compared series: told apart by line style as well as colour. */
export const COMPARE_STYLES = [
  { colour: '#1f5fa8', dash: null, name: 'solid line' },
  { colour: '#b45309', dash: '8 4', name: 'dashed line' },
  { colour: '#15803d', dash: '2 3', name: 'dotted line' },
];

/**
 * Up to three series on one chart: each one's last HISTORY_SHOWN observed months (complete ones)
 * and its forecast, thinner. `series`: [{ label, history, forecast }].
 */
export function drawCompareChart(container, { series, title }) {
  container.replaceChildren();
  const months = [...new Set(series.flatMap((s) => [
    ...(s.history || []).filter((r) => !r.partial).slice(-HISTORY_SHOWN).map((r) => r.month),
    ...(s.forecast || []).map((f) => f.month)]))].sort();
  if (!months.length) return;
  const W = Math.round(Math.min(1000, Math.max(300, container.clientWidth || 760)));
  const H = Math.round(Math.min(380, Math.max(250, W * 0.48)));
  const margin = { top: 16, right: 18, bottom: 46, left: W < 480 ? 46 : 58 };
  const plotW = W - margin.left - margin.right;
  const plotH = H - margin.top - margin.bottom;
  const at = new Map(months.map((m, i) => [m, i]));
  const x = (m) => margin.left + (months.length > 1 ? (at.get(m) * plotW) / (months.length - 1) : plotW / 2);
  const maxValue = Math.max(1, ...series.flatMap((s) => [...(s.history || []).map((r) => r.count), ...(s.forecast || []).map((f) => f.yhat)]));
  const ticks = niceTicks(maxValue, 5);
  const y = (v) => margin.top + plotH - (Math.max(0, v) / ticks[ticks.length - 1]) * plotH;
  const titleId = `compare-title-${Math.random().toString(36).slice(2, 8)}`;
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-labelledby': titleId }, container);
  svg('title', { id: titleId }, root).textContent = title;
  const grid = svg('g', { class: 'chart-grid', 'aria-hidden': 'true' }, root);
  for (const tick of ticks) {
    svg('line', { x1: margin.left, x2: W - margin.right, y1: fixed(y(tick)), y2: fixed(y(tick)) }, grid);
    svg('text', { x: margin.left - 8, y: fixed(y(tick) + 4), class: 'chart-axis-label', 'text-anchor': 'end' }, grid).textContent = formatCount(tick);
  }
  const axis = svg('g', { class: 'chart-axis', 'aria-hidden': 'true' }, root);
  const base = margin.top + plotH;
  svg('line', { x1: margin.left, x2: W - margin.right, y1: base, y2: base, class: 'chart-baseline' }, axis);
  for (const month of months) {
    if (month.endsWith('-01') || month === months[0]) {
      svg('line', { x1: fixed(x(month)), x2: fixed(x(month)), y1: base, y2: base + 8 }, axis);
      svg('text', { x: fixed(x(month)), y: base + 24, class: 'chart-axis-year', 'text-anchor': 'middle' }, axis).textContent = month.slice(0, 4);
    }
  }
  series.forEach((s, i) => {
    const style = COMPARE_STYLES[i % COMPARE_STYLES.length];
    const observed = (s.history || []).filter((r) => !r.partial).slice(-HISTORY_SHOWN);
    const line = (rows, value) => `M${rows.map((r) => `${fixed(x(r.month))},${fixed(y(value(r)))}`).join('L')}`;
    for (const run of consecutiveRuns(observed)) { // no line across months with no data
      if (run.length < 2) continue;
      svg('path', { class: 'compare-line', d: line(run, (r) => r.count), stroke: style.colour, 'stroke-dasharray': style.dash,
        'data-series': s.label }, root);
    }
    const ahead = s.forecast || [];
    if (ahead.length) {
      const joined = observed.length ? [{ month: observed[observed.length - 1].month, yhat: observed[observed.length - 1].count }, ...ahead] : ahead;
      svg('path', { class: 'compare-line compare-forecast', d: line(joined, (f) => f.yhat), stroke: style.colour,
        'stroke-dasharray': style.dash, 'data-series': s.label }, root);
    }
  });
}

/** A guide line and a tooltip that follow the pointer, or the arrow keys when the chart has focus. */
function addHover(container, root, { months, x, y, observed, ahead, margin, plotH, W, H }) {
  const byMonth = new Map(months.map((m) => [m, {}]));
  for (const h of observed) byMonth.get(h.month).observed = h;
  for (const f of ahead) byMonth.get(f.month).forecast = f;

  const guide = svg('line', { class: 'chart-guide', y1: margin.top, y2: margin.top + plotH, visibility: 'hidden' }, root);
  const marker = svg('circle', { class: 'chart-marker', r: 5, visibility: 'hidden' }, root);
  const tip = document.createElement('div');
  tip.className = 'chart-tooltip';
  tip.hidden = true;
  container.appendChild(tip);
  root.setAttribute('tabindex', '0');
  root.setAttribute('aria-describedby', 'chart-keys');

  let current = -1;
  const show = (i) => {
    current = Math.max(0, Math.min(months.length - 1, i));
    const month = months[current];
    const { observed: o, forecast: f } = byMonth.get(month);
    const px = x(month);
    guide.setAttribute('x1', px);
    guide.setAttribute('x2', px);
    guide.setAttribute('visibility', 'visible');
    const value = f ? f.yhat : o.count;
    marker.setAttribute('cx', px);
    marker.setAttribute('cy', y(value));
    marker.setAttribute('visibility', 'visible');
    const lines = [];
    if (o) lines.push(`Reported: ${formatCount(o.count)}${o.partial ? ' (partial month)' : ''}`);
    if (f) {
      lines.push(`Forecast: ${formatCount(f.yhat)}`);
      lines.push(`Likely range: ${formatCount(f.yhat_lower)}–${formatCount(f.yhat_upper)}`);
    }
    const heading = document.createElement('strong');
    heading.textContent = monthLabel(month);
    tip.replaceChildren(heading, ...lines.flatMap((line) => [document.createElement('br'), line]));
    tip.hidden = false;
    const box = root.getBoundingClientRect();
    const left = (px / W) * box.width;
    const top = (y(value) / H) * box.height;
    const flip = left > box.width * 0.62;
    tip.style.left = `${flip ? left - 14 : left + 14}px`;
    tip.style.top = `${Math.max(4, top - 24)}px`;
    tip.style.transform = flip ? 'translateX(-100%)' : 'none';
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
