// Formatting for people: numbers, months, crime types, and the model's accuracy in words.

import { areaName } from './areas.js';

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September',
  'October', 'November', 'December'];
const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function isNumber(value) {
  return typeof value === 'number' && Number.isFinite(value);
}

/** 1234.5 -> "1,235". */
export function formatCount(value) {
  return isNumber(value) ? integer.format(Math.round(value)) : '—';
}

/** A count rounded the way a person would say it: 9.4 -> "9", 146.7 -> "150", 1560 -> "1,600". */
export function roughCount(value) {
  if (!isNumber(value)) return '—';
  if (value < 100) return integer.format(Math.round(value));
  const digits = Math.floor(Math.log10(value)) - 1; // keep two significant figures
  const unit = 10 ** digits;
  return integer.format(Math.round(value / unit) * unit);
}

/** "9.4", "146.7", "1,560": one decimal below 100, none above. */
export function formatMetric(value, decimals) {
  if (!isNumber(value)) return '—';
  const places = decimals ?? (Math.abs(value) >= 100 ? 0 : 1);
  return new Intl.NumberFormat('en-US', { minimumFractionDigits: places, maximumFractionDigits: places }).format(value);
}

export function formatPercent(fraction) {
  return isNumber(fraction) ? `${Math.round(fraction * 100)}%` : '—';
}

export function plural(n, one, many = `${one}s`) {
  return Math.round(n) === 1 ? one : many;
}

/** "2026-05" -> "May 2026". */
export function monthLabel(month) {
  const match = /^(\d{4})-(\d{2})$/.exec(String(month || ''));
  if (!match) return String(month ?? '');
  return `${MONTHS[Number(match[2]) - 1]} ${match[1]}`;
}

/** "2018-10" -> "2018-11": the month after. */
export function nextMonth(month) {
  const [year, m] = String(month).split('-').map(Number);
  return m === 12 ? `${year + 1}-01` : `${year}-${String(m + 1).padStart(2, '0')}`;
}

/** "2024-01" -> "2023-12": the month before. */
export function previousMonth(month) {
  const [year, m] = String(month).split('-').map(Number);
  return m === 1 ? `${year - 1}-12` : `${year}-${String(m - 1).padStart(2, '0')}`;
}

/**
 * How far a series' data run and which months inside it have none, as the service says it:
 * "Data through December 2024; no data 2018-11 to 2023-12." (`gaps`: the API's data_gaps).
 */
export function dataThroughText(month, gaps = []) {
  if (!month) return '';
  const none = (gaps || []).map((g) => (g.from === g.to ? `no data ${g.from}` : `no data ${g.from} to ${g.to}`));
  return `Data through ${monthLabel(month)}${none.map((n) => `; ${n}`).join('')}.`;
}

/** Observed rows split where a month is missing (a gap in the data): a line is drawn through each run, never across. */
export function consecutiveRuns(rows) {
  const runs = [];
  for (const row of rows) {
    const last = runs[runs.length - 1];
    if (last && nextMonth(last[last.length - 1].month) === row.month) last.push(row);
    else runs.push([row]);
  }
  return runs;
}

/** "2026-05" -> "May". */
export function shortMonth(month) {
  const m = Number(String(month).slice(5, 7));
  return MONTHS[m - 1]?.slice(0, 3) ?? '';
}

/** An ISO time in words by `say(date)`; "—" for none, the text itself when it is not a time. */
function readTime(iso, say) {
  if (!iso) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : say(date);
}

/** An ISO time -> "Jun 2, 2026, 3:41 AM" in the reader's time zone. */
export function formatTime(iso) {
  return readTime(iso, (date) => date.toLocaleString('en-US', { dateStyle: 'medium', timeStyle: 'short' }));
}

/** An ISO time -> "June 2, 2026". */
export function formatDate(iso) {
  return readTime(iso, (date) => date.toLocaleDateString('en-US', { dateStyle: 'long' }));
}

/** 252 -> "4 min 12 s". */
export function formatSeconds(total) {
  if (!isNumber(total)) return '—';
  const seconds = Math.max(0, Math.round(total));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** The time between two ISO times (or until now), as "4 min 12 s". */
export function formatDuration(startIso, endIso) {
  const start = Date.parse(startIso);
  const end = endIso ? Date.parse(endIso) : Date.now();
  if (Number.isNaN(start) || Number.isNaN(end)) return '—';
  return formatSeconds((end - start) / 1000);
}

/** A change against a year before ({ change, pct }) -> "+120 (+8%)", "−3 (−1%)". */
export function changeText(part) {
  if (!part || !isNumber(part.change)) return '—';
  const sign = part.change > 0 ? '+' : part.change < 0 ? '−' : '';
  const pct = isNumber(part.pct) ? ` (${sign}${Math.abs(Math.round(part.pct))}%)` : '';
  return `${sign}${formatCount(Math.abs(part.change))}${pct}`;
}

/** "CRIMINAL DAMAGE" -> "Criminal damage"; "ALL" -> "All crimes". */
export function typeLabel(type) {
  if (!type || type === 'ALL') return 'All crimes';
  const lower = String(type).toLowerCase();
  return lower[0].toUpperCase() + lower.slice(1);
}

/** An area's name as the API gave it (`name`), else the page's own; "Citywide" for null. */
export function placeName(area, name) {
  return area == null ? 'Citywide' : (name || areaName(area));
}

/** "Assault in Austin", "All crimes across Chicago". */
export function seriesTitle(type, areaLabel, isCity) {
  return isCity ? `${typeLabel(type)} across Chicago` : `${typeLabel(type)} in ${areaLabel}`;
}

// --- accuracy in words ----------------------------------------------------------------

const NAIVE = "'same month last year'";

/** The plain-words accuracy of a forecast, from its backtest metrics. Returns sentences. */
export function accuracySentences(metrics, typicalMonth) {
  const model = metrics?.model ?? {};
  const naive = metrics?.seasonal_naive ?? {};
  if (!isNumber(model.mae)) {
    return ['There are no accuracy figures for this forecast yet. Treat it with extra care.'];
  }
  const sentences = [];
  const off = model.mae < 0.5 ? 'less than 1 report' : `about ${roughCount(model.mae)} ${plural(model.mae, 'report')}`;
  let first = `Typically off by ${off} a month (MAE ${formatMetric(model.mae)})`;
  if (isNumber(naive.mae) && naive.mae > 0) {
    const ratio = model.mae / naive.mae;
    if (ratio <= 0.95) first += `; better than ${NAIVE} (MAE ${formatMetric(naive.mae)}).`;
    else if (ratio < 1.05) first += `; about as good as ${NAIVE} (MAE ${formatMetric(naive.mae)}).`;
    else first += `; ${NAIVE} did better here (MAE ${formatMetric(naive.mae)}).`;
  } else {
    first += '.';
  }
  sentences.push(first);
  const tests = metrics?.origins?.length;
  if (tests && isNumber(metrics.beats_seasonal_naive)) {
    sentences.push(`Better than ${NAIVE} on ${metrics.beats_seasonal_naive} of ${tests} ` +
      `${tests === 1 ? 'backtest' : 'backtests'}.`);
  }
  if (isNumber(typicalMonth) && typicalMonth >= 1) {
    const share = model.mae / typicalMonth;
    const size = share < 0.1 ? 'a small miss' : share < 0.25 ? 'a moderate miss' : 'a large miss';
    sentences.push(`A typical month here has about ${roughCount(typicalMonth)} ${plural(typicalMonth, 'report')}, ` +
      `so that is ${size} (${formatPercent(share)}).`);
  }
  if (isNumber(model.coverage)) {
    const inTen = Math.round(model.coverage * 10);
    sentences.push(`The shaded range is meant to hold the real count 8 months in 10; in the test it held it ` +
      `${inTen} in 10 (coverage ${formatPercent(model.coverage)}).`);
  }
  return sentences;
}

/** Lower is better for errors, higher for R², nearest 80% for coverage. */
export const METRIC_ROWS = [
  { key: 'mae', label: 'Typical error', abbr: 'MAE', help: 'Mean absolute error: the average miss, in reports a month. Lower is better.', better: 'low' },
  { key: 'rmse', label: 'Error, big misses weigh more', abbr: 'RMSE', help: 'Root mean squared error: like MAE, but large misses weigh more. Lower is better.', better: 'low' },
  { key: 'r2', label: 'Ups and downs explained', abbr: 'R²', help: 'Share of the month-to-month variation the forecast explains: 1 is perfect, 0 or below is no better than the average. Higher is better.', better: 'high', decimals: 2 },
  { key: 'mase', label: 'Error against a simple rule', abbr: 'MASE', help: "The error divided by the usual error of 'same month last year' in the past. Below 1 beats that rule. Lower is better.", better: 'low', decimals: 2 },
  { key: 'coverage', label: 'Months inside the range', abbr: 'coverage', help: 'Share of test months whose real count fell inside the 80% range. Closest to 80% is best.', better: 'target', target: 0.8, percent: true },
];

export const METHODS = [
  { key: 'model', label: 'crimecast model' },
  { key: 'seasonal_naive', label: 'Same month last year' },
];

/** The method keys that did best on a metric row (none when fewer than two have a value). */
export function bestMethods(metrics, row) {
  const values = METHODS.map((m) => [m.key, metrics?.[m.key]?.[row.key]]).filter(([, v]) => isNumber(v));
  if (values.length < 2) return new Set();
  const score = ([, v]) => (row.better === 'low' ? v : row.better === 'high' ? -v : Math.abs(v - row.target));
  const best = Math.min(...values.map(score));
  return new Set(values.filter((entry) => Math.abs(score(entry) - best) < 1e-9).map(([k]) => k));
}

export function formatMetricValue(row, value) {
  if (row.percent) return formatPercent(value);
  return formatMetric(value, row.decimals);
}
