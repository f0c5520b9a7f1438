// The map of the 77 community areas: projection of the GeoJSON, colour classes and the SVG.

import { svg } from './chart.js';
import { fillTooltip, h, placeTooltip } from './dom.js';
import { formatCount, monthLabel } from './format.js';

/** ColorBrewer YlOrRd, 5 classes: sequential and safe for colour-blind readers. */
export const PALETTE = ['#ffffb2', '#fecc5c', '#fd8d3c', '#f03b20', '#bd0026'];

function rings(geometry) {
  if (!geometry) return [];
  if (geometry.type === 'Polygon') return geometry.coordinates;
  if (geometry.type === 'MultiPolygon') return geometry.coordinates.flat();
  return [];
}

/**
 * Project lon/lat to SVG units: equirectangular, x scaled by cos(mid latitude), fitted to
 * `width` with `pad` around. Points closer than `tolerance` units to the last kept one are
 * dropped (the city's outlines have ~50,000 points; a few thousand draw the same picture).
 */
export function projectAreas(geojson, { width = 560, pad = 6, tolerance = 0.6 } = {}) {
  const features = (geojson?.features || []).filter((f) => f?.geometry);
  let minLon = Infinity;
  let maxLon = -Infinity;
  let minLat = Infinity;
  let maxLat = -Infinity;
  for (const feature of features) {
    for (const ring of rings(feature.geometry)) {
      for (const [lon, lat] of ring) {
        if (lon < minLon) minLon = lon;
        if (lon > maxLon) maxLon = lon;
        if (lat < minLat) minLat = lat;
        if (lat > maxLat) maxLat = lat;
      }
    }
  }
  if (!features.length || !Number.isFinite(minLon)) return { width, height: width, areas: [] };
  const k = Math.cos((((minLat + maxLat) / 2) * Math.PI) / 180);
  const scale = (width - 2 * pad) / Math.max(1e-9, (maxLon - minLon) * k);
  const height = Math.ceil((maxLat - minLat) * scale + 2 * pad);
  const project = ([lon, lat]) => [pad + (lon - minLon) * k * scale, pad + (maxLat - lat) * scale];

  const areas = features.map((feature) => {
    const parts = [];
    for (const ring of rings(feature.geometry)) {
      const points = ring.map(project);
      const kept = [points[0]];
      for (let i = 1; i < points.length - 1; i += 1) {
        const [lx, ly] = kept[kept.length - 1];
        if (Math.abs(points[i][0] - lx) + Math.abs(points[i][1] - ly) >= tolerance) kept.push(points[i]);
      }
      if (kept.length < 3) continue; // a sliver too small to see
      parts.push(`M${kept.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join('L')}Z`);
    }
    const props = feature.properties || {};
    return { number: Number(props.area_number), name: String(props.name ?? `Area ${props.area_number}`), d: parts.join('') };
  }).filter((a) => Number.isInteger(a.number) && a.d);
  areas.sort((a, b) => a.number - b.number);
  return { width, height, areas };
}

/** A value's class: how many of the increasing `cuts` it reaches. */
function classBetween(cuts) {
  return (v) => {
    let c = 0;
    while (c < cuts.length && v >= cuts[c]) c += 1;
    return c;
  };
}

/**
 * Up to five classes of about equal size (quintiles). Returns [{min, max, colour}] in
 * increasing order and a function from a value to its class index.
 */
export function colourClasses(values) {
  const sorted = values.filter((v) => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b);
  if (!sorted.length) return { classes: [], classOf: () => -1 };
  const cuts = [];
  for (let i = 1; i < 5; i += 1) {
    const cut = sorted[Math.floor((i * sorted.length) / 5)];
    if (cut > sorted[0] && (!cuts.length || cut > cuts[cuts.length - 1])) cuts.push(cut);
  }
  const count = cuts.length + 1;
  const colours = count === 1 ? [PALETTE[2]]
    : Array.from({ length: count }, (_, i) => PALETTE[Math.round((i * (PALETTE.length - 1)) / (count - 1))]);
  const classOf = classBetween(cuts);
  const classes = colours.map((colour) => ({ colour, min: Infinity, max: -Infinity, n: 0 }));
  for (const v of sorted) {
    const cls = classes[classOf(v)];
    cls.min = Math.min(cls.min, v);
    cls.max = Math.max(cls.max, v);
    cls.n += 1;
  }
  return { classes, classOf };
}

/** ColorBrewer RdBu, 5 classes, reversed: blue fewer than last year, red more; the middle is "about the same". */
export const CHANGE_PALETTE = ['#0571b0', '#92c5de', '#f7f7f7', '#f4a582', '#ca0020'];
const CHANGE_CUTS = [-20, -5, 5, 20];

/** Fixed classes of % change from the same month last year, so two maps read alike. */
export function changeClasses(values) {
  const labels = ['20% or more fewer', '5 to 20% fewer', 'within 5%', '5 to 20% more', '20% or more more'];
  const classOf = classBetween(CHANGE_CUTS);
  const classes = CHANGE_PALETTE.map((colour, i) => ({ colour, label: labels[i], n: 0 }));
  for (const v of values) if (typeof v === 'number' && Number.isFinite(v)) classes[classOf(v)].n += 1;
  return { classes, classOf };
}

export function formatChange(pct) {
  if (typeof pct !== 'number' || !Number.isFinite(pct)) return 'no figure for last year';
  const rounded = Math.round(pct);
  return rounded === 0 ? 'same as last year' : `${rounded > 0 ? '+' : '−'}${Math.abs(rounded)}% on last year`;
}

export function describeArea(area, row, month, { mode = 'expected', reason } = {}) {
  if (!row) return `${area.name}: no forecast for this crime type${reason ? ` (${reason})` : ''}`;
  const text = `${area.name}: about ${formatCount(row.yhat)} reports expected in ${monthLabel(month)} ` +
    `(likely ${formatCount(row.yhat_lower)} to ${formatCount(row.yhat_upper)}), rank ${row.rank}`;
  return mode === 'change' ? `${text}; ${formatChange(row.change_pct)}` : text;
}

/**
 * Draw the areas into `container`. `rows` maps an area number to its /predict/map row.
 * `onSelect(area number)` is called on click, Enter or Space.
 */
export function drawMap(container, projected, { rows, month, selected, onSelect, label, mode = 'expected', reasons = new Map() }) {
  container.replaceChildren();
  const valueOf = mode === 'change' ? (r) => r.change_pct : (r) => r.yhat;
  const values = [...rows.values()].map(valueOf);
  const { classes, classOf } = mode === 'change' ? changeClasses(values) : colourClasses(values);
  const fillOf = (row) => {
    const v = valueOf(row);
    return typeof v === 'number' && Number.isFinite(v) ? classes[classOf(v)].colour : 'url(#no-data)';
  };
  const root = svg('svg', {
    viewBox: `0 0 ${projected.width} ${projected.height}`, class: 'map', role: 'group', 'aria-label': label,
  }, container);
  const defs = svg('defs', {}, root);
  const pattern = svg('pattern', { id: 'no-data', width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' }, defs);
  svg('rect', { width: 6, height: 6, fill: '#eef0f3' }, pattern);
  svg('line', { x1: 0, y1: 0, x2: 0, y2: 6, stroke: '#b8bec7', 'stroke-width': 2 }, pattern);

  const layer = svg('g', { class: 'map-areas' }, root);
  const tip = h('div', { className: 'map-tooltip', hidden: true, 'aria-hidden': 'true' });
  const hover = svg('path', { class: 'map-hover', visibility: 'hidden' });
  const chosen = svg('path', { class: 'map-selected', visibility: 'hidden' });

  const showTip = (area, row, path, event) => {
    const lines = row
      ? [`About ${formatCount(row.yhat)} reports expected`, `Likely ${formatCount(row.yhat_lower)}–${formatCount(row.yhat_upper)}`,
        mode === 'change' ? `${formatChange(row.change_pct)}` : `Rank ${row.rank} of ${rows.size}`]
      : ['No forecast for this crime type', ...(reasons.get(area.number) ? [`Why: ${reasons.get(area.number)}`] : [])];
    fillTooltip(tip, area.name, lines);
    const box = container.getBoundingClientRect();
    let left;
    let top;
    if (event && 'clientX' in event) {
      left = event.clientX - box.left;
      top = event.clientY - box.top;
    } else {
      const r = path.getBoundingClientRect();
      left = r.left + r.width / 2 - box.left;
      top = r.top + r.height / 2 - box.top;
    }
    placeTooltip(tip, left, top, box.width, { flipAt: 0.55, gap: 16, lift: 10, minTop: 0 });
    hover.setAttribute('d', area.d);
    hover.setAttribute('visibility', 'visible');
  };
  const hideTip = () => {
    tip.hidden = true;
    hover.setAttribute('visibility', 'hidden');
  };

  for (const area of projected.areas) {
    const row = rows.get(area.number);
    const description = describeArea(area, row, month, { mode, reason: reasons.get(area.number) });
    const path = svg('path', {
      d: area.d, class: 'map-area', 'data-area': area.number, tabindex: 0, role: 'button',
      fill: row ? fillOf(row) : 'url(#no-data)', 'aria-label': description,
    }, layer);
    if (!row) path.classList.add('map-area-none');
    svg('title', {}, path).textContent = description;
    path.addEventListener('pointermove', (event) => showTip(area, row, path, event));
    path.addEventListener('pointerleave', hideTip);
    path.addEventListener('focus', () => showTip(area, row, path));
    path.addEventListener('blur', hideTip);
    path.addEventListener('click', () => onSelect(area.number));
    path.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        onSelect(area.number);
      }
    });
    if (area.number === selected) {
      chosen.setAttribute('d', area.d);
      chosen.setAttribute('visibility', 'visible');
    }
  }
  root.appendChild(chosen);
  root.appendChild(hover);
  container.appendChild(tip);
  return classes;
}

/** The legend: one swatch per class, and one for areas without a forecast. */
export function drawLegend(container, classes, { missing }) {
  const swatch = (className, colour) => {
    const node = h('span', { className });
    if (colour) node.style.background = colour;
    return node;
  };
  container.replaceChildren(h('ul', { className: 'map-legend-list' },
    ...classes.map((cls) => h('li', {}, swatch('swatch', cls.colour),
      h('span', { text: cls.label ?? (cls.min === cls.max ? formatCount(cls.min) : `${formatCount(cls.min)}–${formatCount(cls.max)}`) }))),
    missing ? h('li', {}, swatch('swatch swatch-none'), 'No forecast') : null));
}
