// Node-only tests of the page's pure helpers (no browser): wording, rounding, areas, map classes,
// the state store, the addresses and the guard against late answers.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { areaName, resolveArea, suggestAreas } from '../../web/areas.js';
import { niceTicks } from '../../web/chart.js';
import {
  METRIC_ROWS, accuracySentences, bestMethods, consecutiveRuns, dataThroughText, monthLabel, nextMonth, previousMonth, roughCount, typeLabel,
} from '../../web/format.js';
import { PALETTE, colourClasses, projectAreas } from '../../web/choropleth.js';
import { ApiError, EXPIRED_MESSAGE } from '../../web/api.js';
import { latest, settle } from '../../web/data.js';
import { compareHash, defaultComparison, forecastHash, mapHash } from '../../web/router.js';
import * as store from '../../web/store.js';

test('accuracy in words follows the example wording', () => {
  const [first, ...rest] = accuracySentences({
    model: { mae: 9.4, coverage: 0.79 }, seasonal_naive: { mae: 12.2 },
  }, 95);
  assert.equal(first, "Typically off by about 9 reports a month (MAE 9.4); better than 'same month last year' (MAE 12.2).");
  assert.equal(rest[0], 'A typical month here has about 95 reports, so that is a small miss (10%).');
  assert.match(rest.join(' '), /held it 8 in 10 \(coverage 79%\)/);
});

test('accuracy in words copes with missing and worse scores', () => {
  assert.deepEqual(accuracySentences(null, null), ['There are no accuracy figures for this forecast yet. Treat it with extra care.']);
  assert.deepEqual(accuracySentences({ model: { mae: null, rmse: 3 } }), ['There are no accuracy figures for this forecast yet. Treat it with extra care.']);
  const [worse] = accuracySentences({ model: { mae: 146.7 }, seasonal_naive: { mae: 120 } });
  assert.equal(worse, "Typically off by about 150 reports a month (MAE 147); 'same month last year' did better here (MAE 120).");
  const [even] = accuracySentences({ model: { mae: 0.3 }, seasonal_naive: { mae: 0.3 } });
  assert.equal(even, "Typically off by less than 1 report a month (MAE 0.3); about as good as 'same month last year' (MAE 0.3).");
  const [alone] = accuracySentences({ model: { mae: 1 }, seasonal_naive: { mae: null } });
  assert.equal(alone, 'Typically off by about 1 report a month (MAE 1.0).');
});

test('the best method per measure skips missing values', () => {
  const metrics = { model: { mae: 9, r2: 0.4, mase: null, coverage: 0.78 }, seasonal_naive: { mae: 12, r2: 0.5, mase: 0.9, coverage: null } };
  const row = (key) => METRIC_ROWS.find((r) => r.key === key);
  assert.deepEqual([...bestMethods(metrics, row('mae'))], ['model']);
  assert.deepEqual([...bestMethods(metrics, row('r2'))], ['seasonal_naive']);
  assert.deepEqual([...bestMethods(metrics, row('mase'))], [], 'one value is no comparison');
  assert.deepEqual([...bestMethods(metrics, row('coverage'))], [], 'the naive has no band');
  assert.deepEqual([...bestMethods(metrics, row('rmse'))], []);
});

test('numbers, months and types read naturally', () => {
  assert.deepEqual([9.4, 99.6, 146.7, 1560, 23676].map(roughCount), ['9', '100', '150', '1,600', '24,000']);
  assert.equal(monthLabel('2026-05'), 'May 2026');
  assert.equal(typeLabel('CRIMINAL DAMAGE'), 'Criminal damage');
  assert.equal(typeLabel('ALL'), 'All crimes');
  assert.deepEqual(niceTicks(114), [0, 25, 50, 75, 100, 125]);
  assert.deepEqual(niceTicks(0), [0, 1]);
});

test('area names, numbers and spellings resolve', () => {
  assert.equal(resolveArea('Austin'), 25);
  assert.equal(resolveArea('  lake view '), 6);
  assert.equal(resolveArea('Lakeview'), 6);
  assert.equal(resolveArea('OHARE'), 76);
  assert.equal(resolveArea('Montclaire'), 18, 'the portal misspellings the service accepts (AREA_ALIASES)');
  assert.equal(resolveArea('32'), 32);
  assert.equal(resolveArea('Citywide'), null);
  assert.equal(resolveArea('78'), undefined);
  assert.equal(resolveArea('Lincoln'), undefined, 'two names start with it');
  assert.equal(resolveArea('Hyde'), 41, 'only one name starts with it');
  assert.equal(areaName(null), 'Citywide');
  assert.ok(suggestAreas('Lincon').includes('Lincoln Park'));
});

test('map classes are quintiles in the colour-blind safe palette', () => {
  const values = Array.from({ length: 77 }, (_, i) => i + 1);
  const { classes, classOf } = colourClasses(values);
  assert.deepEqual(classes.map((c) => c.colour), PALETTE);
  assert.ok(classes.every((c) => c.n === 15 || c.n === 16), 'five classes of about equal size');
  assert.equal(classes.reduce((sum, c) => sum + c.n, 0), 77);
  assert.equal(classOf(1), 0);
  assert.equal(classOf(77), 4);
  const flat = colourClasses([0, 0, 0, 0, 5]);
  assert.equal(flat.classes.length, 2, 'no empty classes when values repeat');
  assert.equal(colourClasses([]).classes.length, 0);
});

test('the projection fits the areas to the width and keeps their shape', () => {
  const square = (n, lon, lat) => ({ type: 'Feature', properties: { area_number: n, name: `A${n}` },
    geometry: { type: 'Polygon', coordinates: [[[lon, lat], [lon + 0.1, lat], [lon + 0.1, lat - 0.1], [lon, lat - 0.1], [lon, lat]]] } });
  const out = projectAreas({ type: 'FeatureCollection', features: [square(2, -87.7, 42.0), square(1, -87.6, 42.0)] }, { width: 212, pad: 6 });
  assert.deepEqual(out.areas.map((a) => a.number), [1, 2]);
  assert.equal(out.width, 212);
  // 0.2 degrees of longitude at 42 N are cos(41.95°) = 0.744 as wide as 0.1 degrees of latitude are tall, times two.
  assert.ok(Math.abs(out.height - (6 * 2 + (200 * 0.1) / (0.2 * Math.cos((41.95 * Math.PI) / 180)))) < 1.5, `height ${out.height}`);
  assert.match(out.areas[0].d, /^M[\d.]+,[\d.]+(L[\d.]+,[\d.]+)+Z$/);
});

test('where the data stop and where they have none, in words; runs of months split at a gap', () => {
  assert.equal(dataThroughText('2024-12', [{ from: '2018-11', to: '2023-12' }]), 'Data through December 2024; no data 2018-11 to 2023-12.');
  assert.equal(dataThroughText('2026-04', []), 'Data through April 2026.');
  assert.equal(dataThroughText('2026-04'), 'Data through April 2026.');
  assert.equal(dataThroughText(null, []), '');
  assert.equal(dataThroughText('2024-12', [{ from: '2020-04', to: '2020-04' }]), 'Data through December 2024; no data 2020-04.');
  assert.deepEqual([nextMonth('2018-12'), nextMonth('2018-10'), previousMonth('2024-01'), previousMonth('2024-11')],
    ['2019-01', '2018-11', '2023-12', '2024-10']);
  const rows = ['2018-09', '2018-10', '2024-01', '2024-02', '2024-03'].map((month) => ({ month }));
  assert.deepEqual(consecutiveRuns(rows).map((run) => run.map((r) => r.month)), [['2018-09', '2018-10'], ['2024-01', '2024-02', '2024-03']]);
  assert.deepEqual(consecutiveRuns([]), []);
  assert.equal(consecutiveRuns(rows.slice(2)).length, 1);
});

test('the store merges each change and tells its subscribers until they stop listening', () => {
  const seen = [];
  const stop = store.subscribe((state) => seen.push(`${state.area}:${state.type}`));
  store.set({ area: 25, type: 'THEFT' });
  store.set({ type: 'ASSAULT' });
  stop();
  store.set({ area: 8 });
  assert.deepEqual(seen, ['25:THEFT', '25:ASSAULT']);
  assert.equal(store.get().area, 8);
  assert.equal(store.get().type, 'ASSAULT', 'a change keeps what it does not name');
});

test('each view has an address built from the state', () => {
  assert.equal(forecastHash({ area: 25, type: 'CRIMINAL DAMAGE', months: 24 }), '#/forecast?area=25&type=CRIMINAL%20DAMAGE&months=24');
  assert.equal(forecastHash({ area: null, type: 'ALL', months: 12 }), '#/forecast?area=city&type=ALL&months=12');
  assert.equal(mapHash({ type: 'THEFT', mapMode: 'change' }), '#/map?type=THEFT&show=change');
  assert.equal(mapHash({ type: 'THEFT', mapMode: 'expected' }), '#/map?type=THEFT');
  assert.equal(compareHash(defaultComparison({ area: 8, type: 'THEFT' })), '#/compare?series=8:THEFT,city:THEFT');
});

test('a load answered after a newer one started is dropped, and so is its error', async () => {
  const loads = latest();
  const first = loads.next();
  assert.equal(first(), true);
  const second = loads.next();
  assert.equal(first(), false);
  assert.equal(second(), true);
  loads.cancel();
  assert.equal(second(), false, 'cancel drops every load under way');

  const errors = [];
  const now = loads.next();
  assert.equal(await settle(Promise.resolve(7), now, (err) => errors.push(err.message)), 7);
  assert.equal(await settle(Promise.reject(new Error('down')), now, (err) => errors.push(err.message)), undefined);
  const ended = new ApiError(401, 'session_expired', EXPIRED_MESSAGE);
  assert.equal(await settle(Promise.reject(ended), now, (err) => errors.push(err.message)), undefined);
  assert.equal(await settle(Promise.reject(new Error('late')), first, (err) => errors.push(err.message)), undefined);
  assert.deepEqual(errors, ['down'], 'neither the ended session (the login form shows) nor a late load says anything');
});
