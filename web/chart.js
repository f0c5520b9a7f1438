// What the page's SVG charts share: building SVG nodes, the chart's size, the count scale and
// its grid, the baseline, and drawing again when the chart's width changes.

import { formatCount } from './format.js';

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

/** A coordinate with one decimal at most, as the SVG's attributes carry it. */
export const fixed = (n) => (Math.round(n * 10) / 10).toString();

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

/**
 * The chart's size, drawn at the container's own width so its text keeps its size on a phone,
 * with `top` pixels above the plot.
 */
export function chartFrame(container, top) {
  const W = Math.round(Math.min(1000, Math.max(300, container.clientWidth || 760)));
  const H = Math.round(Math.min(380, Math.max(250, W * 0.48)));
  const margin = { top, right: 18, bottom: 46, left: W < 480 ? 46 : 58 };
  return { W, H, margin, plotW: W - margin.left - margin.right, plotH: H - margin.top - margin.bottom };
}

/** The month scale: `months` (sorted) spread evenly over the plot's width. */
export function monthScale(months, { margin, plotW }) {
  const index = new Map(months.map((month, i) => [month, i]));
  const step = months.length > 1 ? plotW / (months.length - 1) : plotW;
  const x = (month) => margin.left + (months.length > 1 ? index.get(month) * step : plotW / 2);
  return { index, step, x };
}

/** The count scale: round ticks from 0 to at least `maxValue`, and a count's height. */
export function countScale(maxValue, { margin, plotH }) {
  const ticks = niceTicks(maxValue, 5);
  const yTop = ticks[ticks.length - 1];
  return { ticks, y: (value) => margin.top + plotH - (Math.max(0, value) / yTop) * plotH };
}

/** The <svg> in `container`, named by `title` (its first child), with `extra` attributes after the common ones. */
export function chartRoot(container, { W, H }, title, idPrefix, extra = {}) {
  const titleId = `${idPrefix}-${Math.random().toString(36).slice(2, 8)}`;
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-labelledby': titleId, ...extra }, container);
  svg('title', { id: titleId }, root).textContent = title;
  return root;
}

/** Horizontal grid lines and the count axis' labels. */
export function drawCountAxis(root, { ticks, y }, { margin, W }) {
  const grid = svg('g', { class: 'chart-grid', 'aria-hidden': 'true' }, root);
  for (const tick of ticks) {
    svg('line', { x1: margin.left, x2: W - margin.right, y1: fixed(y(tick)), y2: fixed(y(tick)) }, grid);
    svg('text', { x: margin.left - 8, y: fixed(y(tick) + 4), class: 'chart-axis-label', 'text-anchor': 'end' }, grid).textContent = formatCount(tick);
  }
}

/** The month axis' group and its baseline; returns the group and the baseline's height. */
export function monthAxis(root, { margin, plotH, W }) {
  const axis = svg('g', { class: 'chart-axis', 'aria-hidden': 'true' }, root);
  const base = margin.top + plotH;
  svg('line', { x1: margin.left, x2: W - margin.right, y1: base, y2: base, class: 'chart-baseline' }, axis);
  return { axis, base };
}

/** A line through `points` ([x, y] pairs), as a path's `d` attribute. */
export function pathThrough(points) {
  return `M${points.map(([px, py]) => `${fixed(px)},${fixed(py)}`).join('L')}`;
}

const drawn = new WeakMap(); // container -> { width, draw, args } of what it shows

/** Draw `draw(container, args)` now, and again whenever the container's width changes by 24 px or more. */
export function drawFitted(container, draw, args) {
  if (!drawn.has(container)) {
    new ResizeObserver(() => {
      const shown = drawn.get(container);
      const width = container.clientWidth;
      if (!width || Math.abs(width - shown.width) < 24) return;
      shown.width = width;
      shown.draw(container, shown.args);
    }).observe(container);
  }
  drawn.set(container, { width: container.clientWidth, draw, args });
  draw(container, args);
}
