// Every view (login, forecast, compare, map, admin) at 1366 and 360 px: axe-core finds no serious or
// critical violation, nothing is wider than the screen, and a screenshot of each is written to
// out/screenshots/. Then the new parts: last year, unusual months, downloads, rollback, keyboard.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, afterEach, before, beforeEach, test } from 'node:test';
import {
  ADMIN, launchBrowser, login, newPage, screenshotPath, seriousViolations, startFakeApi, waitForForecast,
} from './harness.mjs';

let api;
let browser;
let page;
let problems;

before(async () => {
  api = await startFakeApi();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await api?.stop();
});
beforeEach(async () => {
  problems = [];
  page = await newPage(browser.context, problems);
  await page.request.post(`${api.url}/__reset`);
});
afterEach(async () => {
  await page?.close();
  assert.deepEqual(problems, [], 'the page logged errors');
});

const VIEWS = [
  ['forecast', '#/forecast?area=25&type=THEFT&months=12', () => waitForForecast(page, 'Theft in Austin')],
  ['compare', '#/compare?series=25:THEFT,8:THEFT,city:THEFT', () => page.waitForSelector('#compare-chart path.compare-line')],
  ['map', '#/map?type=THEFT', () => page.waitForFunction(() => document.querySelectorAll('#map path.map-area').length >= 77
    && !document.querySelector('#alerts-card').hidden)],
  ['admin', '#/admin', () => page.waitForSelector('#models-table:not([hidden]) tbody tr')],
];

async function check(name, width) {
  const violations = await seriousViolations(page);
  assert.deepEqual(violations, [], `axe on ${name} at ${width} px`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `${name} at ${width} px is ${overflow} px wider than the screen`);
  await page.screenshot({ path: screenshotPath(`${name}-${width}.png`), fullPage: true });
}

for (const width of [1366, 360]) {
  test(`every view at ${width} px: axe finds nothing serious, nothing overflows, screenshots`, async () => {
    await page.setViewportSize({ width, height: 900 });
    await page.goto(`${api.url}/`);
    await page.locator('#view-login').waitFor();
    await check('login', width);
    await login(page, api.url, ADMIN);
    for (const [name, hash, ready] of VIEWS) {
      await page.goto(`${api.url}/${hash}`);
      await ready();
      await check(name, width);
    }
    await page.emulateMedia({ media: 'print' });
    await page.goto(`${api.url}/#/forecast?area=25&type=THEFT&months=12`);
    await waitForForecast(page, 'Theft in Austin');
    assert.equal(await page.locator('#forecast-controls').isVisible(), false, 'print hides the controls');
    assert.ok(await page.locator('#view-forecast .caveats').isVisible(), 'print keeps the caveats');
    await page.screenshot({ path: screenshotPath(`print-forecast-${width}.png`), fullPage: true });
    await page.emulateMedia({ media: 'screen' });
  });
}

test('the forecast compares with last year, rings unusual months, and says what the data are', async () => {
  await login(page, api.url, ADMIN);
  await page.goto(`${api.url}/#/forecast?area=25&type=THEFT&months=12`);
  await waitForForecast(page, 'Theft in Austin');
  const answer = await page.evaluate(async () => {
    const { token } = JSON.parse(sessionStorage.getItem('crimecast.session'));
    const r = await fetch('/predict?community_area=25&crime_type=THEFT&months=12', { headers: { Authorization: `Bearer ${token}` } });
    return r.json();
  });
  const cells = await page.locator('#comparison-table tbody tr').first().locator('td').allInnerTexts();
  const fmt = (n) => Math.round(n).toLocaleString('en-US');
  assert.deepEqual(cells.slice(0, 2), [fmt(answer.comparison.last_12.now), fmt(answer.comparison.last_12.before)]);
  assert.equal(await page.locator('#chart circle.chart-unusual').count(), answer.unusual.length);
  assert.match(await page.locator('#unusual-note').innerText(), /1 month in 5/);
  const caveats = page.locator('#view-forecast .caveats');
  assert.match(await caveats.innerText(), /not all crime/);
  assert.equal(await caveats.locator('a').getAttribute('href'), 'https://data.cityofchicago.org/Public-Safety/Crimes-2001-to-Present/ijzp-q8t2');
});

test('the CSV download saves the rows the API gives to format=csv', async () => {
  await login(page, api.url, ADMIN);
  await page.goto(`${api.url}/#/forecast?area=25&type=THEFT&months=12`);
  await waitForForecast(page, 'Theft in Austin');
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#forecast-download').click()]);
  const saved = readFileSync(await download.path(), 'utf8');
  const fromApi = await page.evaluate(async () => {
    const { token } = JSON.parse(sessionStorage.getItem('crimecast.session'));
    return (await fetch('/predict?community_area=25&crime_type=THEFT&months=12', {
      headers: { Authorization: `Bearer ${token}`, Accept: 'text/csv' } })).text();
  });
  assert.equal(saved, fromApi);
  assert.match(saved.split('\r\n')[0], /^month,reported,partial,forecast,lower,upper,model_version,data_through,no_data$/);
  assert.match(download.suggestedFilename(), /\.csv$/);
});

test('the map switches to the change from last year, lists unusual months, and says why an area has no forecast', async () => {
  await login(page, api.url, ADMIN);
  await page.goto(`${api.url}/#/map?type=STALKING`);
  await page.waitForFunction(() => document.querySelectorAll('#map path.map-area').length >= 77);
  const none = page.locator('#map path.map-area-none').first();
  if (await none.count()) {
    await none.focus();
    assert.match(await none.getAttribute('aria-label'), /no forecast for this crime type \(.+\)/);
    assert.match(await page.locator('.map-tooltip').innerText(), /Why:/);
  }
  await page.goto(`${api.url}/#/map?type=THEFT`);
  // The card is still shown from STALKING: wait for THEFT's own alerts, not just a visible card.
  await page.waitForFunction(() => !document.querySelector('#alerts-card').hidden
    && /^Theft/.test(document.querySelector('#alerts-summary').textContent));
  await page.getByLabel('Change from last year').check();
  await page.waitForFunction(() => location.hash.includes('show=change'));
  await page.waitForFunction(() => document.querySelector('#map-legend').dataset.mode === 'change');
  assert.match(await page.locator('#map path.map-area').first().getAttribute('aria-label'), /last year/);
  const alerts = await page.evaluate(async () => {
    const { token } = JSON.parse(sessionStorage.getItem('crimecast.session'));
    return (await fetch('/alerts?crime_type=THEFT', { headers: { Authorization: `Bearer ${token}` } })).json();
  });
  assert.equal(await page.locator('#alerts-list li').count(), Math.min(10, alerts.alerts.length));
  assert.match(await page.locator('#alerts-note').innerText(), /1 month in 5/);
});

test('an admin serves an earlier model version again, by keyboard, with a reason', async () => {
  await login(page, api.url, ADMIN);
  await page.goto(`${api.url}/#/admin`);
  const button = page.getByRole('button', { name: 'Serve again: v20260502T030000Z' });
  await button.focus();
  await page.keyboard.press('Enter');
  await page.keyboard.press('Enter'); // in the reason box: a newline, not a submit
  await page.locator('#rollback-reason').fill('');
  await page.keyboard.type('the June version over-forecasts the North Side');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  await page.getByText(/v20260502T030000Z is serving again/).waitFor();
  await page.waitForFunction(() => document.querySelector('#models-table tr.is-serving code')?.textContent === 'v20260502T030000Z');
  assert.match(await page.locator('#models-table').innerText(), /Cannot be served: it is incomplete/);
});

test('the map is usable by keyboard alone: tab to an area, Enter opens its forecast', async () => {
  await login(page, api.url, ADMIN);
  await page.goto(`${api.url}/#/map?type=THEFT`);
  await page.waitForFunction(() => document.querySelectorAll('#map path.map-area').length >= 77);
  await page.locator('#map path.map-area').first().focus();
  await page.keyboard.press('Tab');
  const label = await page.evaluate(() => document.activeElement.getAttribute('aria-label'));
  assert.ok(label, 'an area has focus');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => location.hash.startsWith('#/forecast'));
});

test('a series with a gap says where its data stop and draws no line across the months with no data', async () => {
  // The fake's Burglary in Austin is shaped as `make demo`'s area x type series: to 2018-10, then all of 2024.
  await login(page, api.url, ADMIN);
  await page.goto(`${api.url}/#/forecast?area=25&type=BURGLARY&months=12`);
  await waitForForecast(page, 'Burglary in Austin');
  assert.match(await page.locator('#forecast-data-through').innerText(),
    /^Data through December 2024; no data 2018-11 to 2023-12\. These reports are not up to date/);
  assert.match(await page.locator('#forecast-headline').innerText(), /^January 2025:/);
  // Two runs of observed months, each its own line; one mark where the data stop, none of its months drawn.
  assert.equal(await page.locator('#chart path.chart-observed').count(), 2);
  const gap = page.locator('#chart g.chart-gap');
  assert.equal(await gap.count(), 1);
  assert.deepEqual([await gap.getAttribute('data-from'), await gap.getAttribute('data-to')], ['2018-11', '2023-12']);
  assert.match(await gap.locator('title').textContent(), /^No data 2018-11 to 2023-12/);
  const months = await page.locator('#chart circle.chart-point').evaluateAll((dots) => dots.map((d) => d.dataset.month));
  assert.equal(months.length, 36);
  assert.ok(months.every((m) => m <= '2018-10' || m >= '2024-01'), `no point inside the gap: ${months}`);
  const [before, after] = await page.locator('#chart path.chart-observed').evaluateAll((paths) => paths.map((p) => p.getAttribute('d')));
  const lastX = Number(/([\d.]+),[\d.]+$/.exec(before)[1]);
  const firstX = Number(/^M([\d.]+),/.exec(after)[1]);
  assert.ok(firstX > lastX, 'the second run starts to the right of the first; no segment joins them');
  // The table of numbers says so in its place; the download carries it on every row.
  await page.locator('details.numbers summary').first().click();
  const gapRow = page.locator('#numbers-table tbody tr.no-data');
  assert.equal(await gapRow.count(), 1);
  assert.match(await gapRow.innerText(), /November 2018\s+–\s+December 2023\s+No data for these months/);
  const csv = await page.evaluate(async () => {
    const { token } = JSON.parse(sessionStorage.getItem('crimecast.session'));
    return (await fetch('/predict?community_area=25&crime_type=BURGLARY&format=csv', { headers: { Authorization: `Bearer ${token}` } })).text();
  });
  assert.match(csv.split('\r\n')[1], /,2024-12,2018-11 to 2023-12$/);
  await page.screenshot({ path: screenshotPath('forecast-gap.png'), fullPage: true });

  // The map ranks forecasts made from data to the same month: Austin's is listed with why, not ranked.
  await page.goto(`${api.url}/#/map?type=BURGLARY`);
  await page.waitForFunction(() => document.querySelectorAll('#map path.map-area').length >= 77);
  const map = await page.evaluate(async () => {
    const { token } = JSON.parse(sessionStorage.getItem('crimecast.session'));
    return (await fetch('/predict/map?crime_type=BURGLARY', { headers: { Authorization: `Bearer ${token}` } })).json();
  });
  assert.ok(!map.areas.some((a) => a.community_area === 25));
  assert.match(map.missing.find((m) => m.community_area === 25).reason, /^its data end in 2024-12, the other areas' in \d{4}-\d{2}/);
  const austin = page.locator('#map path.map-area[data-area="25"]');
  if (await austin.count()) assert.match(await austin.getAttribute('aria-label'), /no forecast for this crime type/);

  // Compared with a series without a gap: its line breaks too, and the year table says where it has no data.
  await page.goto(`${api.url}/#/compare?series=25:BURGLARY,8:BURGLARY`);
  await page.waitForSelector('#compare-chart path.compare-line');
  assert.equal(await page.locator('#compare-chart path.compare-line:not(.compare-forecast)[data-series*="Austin"]').count(), 2);
  assert.match(await page.locator('#compare-year-table tbody').innerText(), /December 2024; no data 2018-11 to 2023-12/);
});
