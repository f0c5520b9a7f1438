// Browser tests of the crimecast web page, against the fake API (tests/e2e/fake_api.py).
// Run: cd tests/e2e && npm ci && node --test   (or `make e2e` from the repository root)

import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, test } from 'node:test';
import {
  ADMIN, VIEWER, launchBrowser, login, newPage, screenshotPath, startFakeApi, waitForForecast,
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
});

afterEach(async () => {
  await page?.close();
  assert.deepEqual(problems, [], 'the page logged errors');
});

const visibleText = (selector) => page.locator(selector).innerText();

test('a wrong password shows a clear message and stays on the login page', async () => {
  await page.goto(`${api.url}/`);
  const form = page.locator('#view-login');
  await form.getByLabel('User name').fill('admin');
  await form.getByLabel('Password').fill('not-the-password');
  await form.getByRole('button', { name: 'Log in' }).click();
  const error = page.locator('#login-error');
  await error.waitFor({ state: 'visible' });
  assert.match(await error.innerText(), /user name and password do not match/i);
  assert.equal(await page.locator('#view-forecast').isVisible(), false);
  assert.equal(await page.locator('#main-nav').isVisible(), false);

  // Empty fields are caught before asking the API.
  await form.getByLabel('Password').fill('');
  await form.getByRole('button', { name: 'Log in' }).click();
  assert.match(await error.innerText(), /enter your user name and your password/i);
});

test('logging in shows the citywide forecast and who is logged in', async () => {
  await login(page, api.url, ADMIN);
  await waitForForecast(page, 'All crimes across Chicago');
  assert.equal(await visibleText('#user-name'), 'admin');
  assert.ok(await page.locator('#nav-admin').isVisible(), 'an admin sees the Admin link');
  assert.match(page.url(), /#\/forecast\?area=city&type=ALL&months=12$/);
  const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('crimecast.session')).token);
  assert.ok(token.length > 10, 'the token is kept in sessionStorage');
});

test('the forecast chart draws history, forecast, band and the partial month', async () => {
  await login(page, api.url, ADMIN);
  await page.goto(`${api.url}/#/forecast?area=25&type=ASSAULT&months=12`);
  await waitForForecast(page, 'Assault in Austin');
  const chart = page.locator('#chart svg.chart');
  assert.equal(await chart.getAttribute('role'), 'img');
  const band = await page.locator('#chart path.chart-band').getAttribute('d');
  assert.match(band, /^M[\d.]+,[\d.]+(L[\d.]+,[\d.]+)+Z$/, 'the band is a closed path');
  assert.equal(await page.locator('#chart path.chart-forecast').count(), 1);
  assert.equal(await page.locator('#chart path.chart-observed').count(), 1);
  assert.equal(await page.locator('#chart circle.chart-point').count(), 36, 'the last 36 observed months');
  const partial = page.locator('#chart circle.chart-point-partial');
  assert.equal(await partial.count(), 1, 'the partial month has a hollow marker');
  assert.match(await partial.locator('title').textContent(), /partial month, not used for training/);
  assert.match(await visibleText('#view-forecast .chart-legend'), /Partial month, not used for training/);
  assert.match(await visibleText('#forecast-headline'), /about [\d,]+ reports expected, likely between [\d,]+ and [\d,]+/);

  // Hovering the chart reads out a month.
  await chart.scrollIntoViewIfNeeded(); // below the comparison with last year
  const box = await chart.boundingBox();
  await page.mouse.move(box.x + box.width * 0.9, box.y + box.height * 0.5);
  assert.match(await visibleText('.chart-tooltip'), /Forecast: [\d,]+\s+Likely range/);

  await page.mouse.move(0, 0);
  await page.screenshot({ path: screenshotPath('forecast.png'), fullPage: true });

  // The numbers table has every month of the chart: 36 observed, 12 forecast, one in both.
  await page.locator('details.numbers summary').first().click();
  assert.equal(await page.locator('#numbers-table tbody tr').count(), 36 + 12 - 1);
});

test('the accuracy is said in plain words, with a table of both methods', async () => {
  await login(page, api.url, ADMIN);
  await waitForForecast(page, 'All crimes across Chicago');
  const words = await visibleText('#accuracy-text');
  assert.match(words, /^Typically off by (about [\d,]+ reports?|less than 1 report) a month \(MAE [\d,.]+\); (better than|about as good as|'same month last year' did better)/);
  assert.match(words, /'same month last year'.*\(MAE [\d,.]+\)/);
  assert.match(words, /held it \d+ in 10 \(coverage \d+%\)/);
  const headers = await page.locator('#metrics-table thead th').allInnerTexts();
  assert.deepEqual(headers.slice(1), ['crimecast model', 'Same month last year']);
  const rows = await page.locator('#metrics-table tbody th').allInnerTexts();
  assert.deepEqual(rows.map((r) => /\((\S+)\)$/.exec(r)[1]), ['MAE', 'RMSE', 'R²', 'MASE', 'coverage']);
  assert.match(await visibleText('#scores-note'), /the 12 months after \w+ \d{4}/);

  // Null metrics: the fake has no MASE for Edison Park; it shows as a dash, as the naive's coverage always does.
  await page.locator('#area-input').fill('Edison Park');
  await page.locator('#area-input').press('Enter');
  await waitForForecast(page, 'All crimes in Edison Park');
  const cells = async (n) => page.locator(`#metrics-table tbody tr td:nth-of-type(${n})`).allTextContents();
  const [model, naive] = [await cells(1), await cells(2)];
  const dash = '—not available';  // a dash, and words for screen readers
  assert.deepEqual([model[3], naive[3], naive[4]], [dash, dash, dash], 'MASE for both, coverage for the naive');
  assert.ok([0, 1, 2, 4].every((i) => /^[\d,.%-]+( \(best\))?$/.test(model[i])), `the model's other scores are there: ${model}`);
});

test('choosing another area or crime type updates the forecast', async () => {
  await login(page, api.url, VIEWER);
  await waitForForecast(page, 'All crimes across Chicago');
  const input = page.locator('#area-input');
  await input.fill('hyde park');
  await input.press('Enter');
  await waitForForecast(page, 'All crimes in Hyde Park');
  assert.match(page.url(), /area=41&type=ALL/);

  await page.locator('#type-select').selectOption({ label: 'Assault' });
  await waitForForecast(page, 'Assault in Hyde Park');
  assert.match(page.url(), /area=41&type=ASSAULT/);

  // A name that is no area says so and suggests names.
  await input.fill('Lincon');
  await input.press('Enter');
  const error = page.locator('#area-error');
  await error.waitFor({ state: 'visible' });
  assert.match(await error.innerText(), /No community area is called “Lincon”/);
  assert.match(await visibleText('#forecast-heading'), /Assault in Hyde Park/);

  // Citywide, and the browser's Back button.
  await input.fill('Citywide');
  await input.press('Enter');
  await waitForForecast(page, 'Assault across Chicago');
  await page.goBack();
  await waitForForecast(page, 'Assault in Hyde Park');
});

test('a series without a forecast says so, on the forecast and on the map', async () => {
  await login(page, api.url, VIEWER);
  await waitForForecast(page, 'All crimes across Chicago');
  // Find, in the catalogue, an area that has no forecast for some crime type.
  const missing = await page.evaluate(async () => {
    const { api } = await import('./api.js');
    const catalog = await api('/catalog');
    const series = new Set(catalog.series);
    for (const type of catalog.types) {
      for (let area = 1; area <= 77; area += 1) if (!series.has(`${area}:${type}`)) return { area, type };
    }
    return null;
  });
  assert.ok(missing, 'the fake catalogue leaves out some series');
  await page.goto(`${api.url}/#/forecast?area=${missing.area}&type=${encodeURIComponent(missing.type)}&months=12`);
  const problem = page.locator('#forecast-problem');
  await problem.waitFor({ state: 'visible' });
  assert.match(await problem.innerText(), /There is no forecast of .+ for .+: there were too few reports/);
  assert.equal(await page.locator('#forecast-result').isVisible(), false);

  await page.goto(`${api.url}/#/map?type=${encodeURIComponent(missing.type)}`);
  await page.locator('#map path.map-area').first().waitFor();
  assert.equal(await page.locator(`#map path.map-area[data-area="${missing.area}"]`).getAttribute('fill'), 'url(#no-data)');
  assert.match(await visibleText('#map-legend'), /No forecast/);
});

test('the map draws the 77 areas, and clicking one opens its forecast', async () => {
  await login(page, api.url, VIEWER);
  await waitForForecast(page, 'All crimes across Chicago');
  await page.locator('#main-nav').getByRole('link', { name: 'Map' }).click();
  await page.locator('#map svg.map').waitFor();
  assert.equal(await page.locator('#map path.map-area').count(), 77);
  assert.equal(await page.locator('#top-table tbody tr').count(), 10);
  const firstRank = await page.locator('#top-table tbody tr').first().locator('td').allInnerTexts();
  assert.equal(firstRank[0], '1');
  assert.equal(await page.locator('#map-legend .swatch:not(.swatch-none)').count(), 5);
  const title = await page.locator('#map path.map-area[data-area="25"] title').textContent();
  assert.match(title, /^Austin: about [\d,]+ reports expected in \w+ \d{4}/);
  const fills = new Set(await page.locator('#map path.map-area').evaluateAll((paths) => paths.map((p) => p.getAttribute('fill'))));
  assert.ok(fills.size >= 5, 'the areas are coloured by class');

  await page.locator('#map-type-select').selectOption({ label: 'Theft' });
  await page.waitForFunction(() => document.querySelector('#map-heading').textContent.startsWith('Theft'));
  await page.locator('#map path.map-area').first().waitFor();
  await page.mouse.move(0, 0);
  await page.screenshot({ path: screenshotPath('map.png'), fullPage: true });

  await page.locator('#map path.map-area[data-area="25"]').click();
  await waitForForecast(page, 'Theft in Austin');
  assert.match(page.url(), /area=25&type=THEFT/);
  assert.equal(await page.locator('#area-input').inputValue(), 'Austin');

  // The keyboard works too: focus an area and press Enter.
  await page.goBack();
  await page.locator('#map path.map-area[data-area="41"]').waitFor();
  await page.locator('#map path.map-area[data-area="41"]').focus();
  await page.keyboard.press('Enter');
  await waitForForecast(page, 'Theft in Hyde Park');

  // A ranked area's link opens its forecast as well.
  await page.locator('#main-nav').getByRole('link', { name: 'Map' }).click();
  const top = page.locator('#top-table tbody tr').first().getByRole('link');
  const name = await top.innerText();
  await top.click();
  await waitForForecast(page, `Theft in ${name}`);
});

test('without the outlines the map page still ranks the areas', async () => {
  await page.route('**/boundaries', (route) => route.fulfill({
    status: 404, contentType: 'application/json',
    body: JSON.stringify({ error: { code: 'not_found', message: 'community area boundaries have not been ingested yet' } }),
  }));
  await login(page, api.url, VIEWER);
  await page.goto(`${api.url}/#/map?type=ALL`);
  await page.locator('#map .problem').waitFor();
  assert.match(await visibleText('#map'), /The map cannot be drawn: Community area boundaries have not been ingested yet\./);
  assert.equal(await page.locator('#top-table tbody tr').count(), 10);
});

test('an admin starts a retrain and watches it succeed', async () => {
  await login(page, api.url, ADMIN);
  await page.locator('#main-nav').getByRole('link', { name: 'Admin' }).click();
  await page.locator('#history-table tbody tr').first().waitFor();
  const before = await page.locator('#history-table tbody tr').count();
  await page.getByRole('button', { name: 'Start a retrain' }).click();
  const watch = page.locator('#run-watch');
  await watch.locator('.badge').waitFor();
  assert.match(await watch.locator('.badge').innerText(), /Queued|Running/);
  assert.ok(await page.getByRole('button', { name: 'Start a retrain' }).isDisabled(), 'no second run while one is watched');
  await page.waitForFunction(() => /Succeeded/.test(document.querySelector('#run-watch .badge')?.textContent || ''), null, { timeout: 20000 });
  assert.match(await watch.innerText(), /The new model is now served/);
  assert.match(await watch.innerText(), /Series trained\s+[\d,]+/);
  assert.ok(await page.getByRole('button', { name: 'Start a retrain' }).isEnabled());

  await page.waitForFunction((n) => document.querySelectorAll('#history-table tbody tr').length === n + 1
    && /Succeeded/.test(document.querySelector('#history-table tbody tr').textContent), before);
  const first = await page.locator('#history-table tbody tr').first().innerText();
  assert.match(first, /Retrain/);
  assert.match(first, /Promoted/);
  assert.match(first, /series trained/);
  assert.match(await visibleText('#history-table'), /Not promoted/);

  await page.locator('#history-kind').selectOption('ingest');
  await page.waitForFunction(() => [...document.querySelectorAll('#history-table tbody tr')].every((r) => r.textContent.includes('Ingest')));

  // The drift alarm's decision, in its own words.
  await page.locator('#history-kind').selectOption('evaluate');
  await page.waitForFunction(() => [...document.querySelectorAll('#history-table tbody tr')].every((r) => r.textContent.includes('Evaluation')));
  assert.match(await visibleText('#history-table'), /drift alarm: THEFT in 41 of 77 areas rose above their bands for 2 months running/);
});

test('an admin starts an ingest and sees what it fetched', async () => {
  await login(page, api.url, ADMIN);
  await page.goto(`${api.url}/#/admin`);
  await page.getByLabel('What to fetch').selectOption('incremental');
  await page.getByRole('button', { name: 'Start an ingest' }).click();
  const watch = page.locator('#run-watch');
  await page.waitForFunction(() => /Queries done/.test(document.querySelector('#run-watch')?.textContent || ''));
  await page.waitForFunction(() => /Succeeded/.test(document.querySelector('#run-watch .badge')?.textContent || ''), null, { timeout: 20000 });
  const text = await watch.innerText();
  assert.match(text, /Ingest run/);
  assert.match(text, /Recent months only/);
  assert.match(text, /Counts stored\s+January 2001 to \w+ \d{4}, [\d,]+ rows/);
  assert.match(text, /Months replaced\s+13 \(/);
  assert.doesNotMatch(text, /\[|\{/, 'no raw JSON');
  await page.mouse.move(0, 0);
  await page.screenshot({ path: screenshotPath('admin.png'), fullPage: true });

  // The history lists ingests and retrains together, newest first.
  await page.waitForFunction(() => /Ingest/.test(document.querySelector('#history-table tbody tr')?.textContent || '')
    && /Succeeded/.test(document.querySelector('#history-table tbody tr')?.textContent || ''));
  const kinds = await page.locator('#history-table tbody tr td:nth-child(2)').allInnerTexts();
  assert.ok(kinds.includes('Retrain') && kinds.includes('Ingest'), `both kinds listed: ${kinds}`);
});

test('an admin adds and deletes a user', async () => {
  await login(page, api.url, ADMIN);
  await page.goto(`${api.url}/#/admin`);
  const add = page.locator('#add-user-form');
  await add.getByLabel('User name').fill('e2e.analyst');
  await add.getByLabel('Password').fill('short');
  await add.getByRole('button', { name: 'Add user' }).click();
  assert.match(await visibleText('#add-user-result'), /at least 12 characters/);
  await add.getByLabel('Password').fill('password1234');  // long enough, but one of the most common: the service says so
  await add.getByRole('button', { name: 'Add user' }).click();
  await page.waitForFunction(() => /most common passwords/.test(document.querySelector('#add-user-result').textContent));
  await add.getByLabel('Password').fill('a-long-enough-password');
  await add.getByRole('button', { name: 'Add user' }).click();
  await page.waitForFunction(() => /Added/.test(document.querySelector('#add-user-result').textContent));
  assert.match(await visibleText('#add-user-result'), /Added “e2e\.analyst” \(viewer\)/);

  await add.getByLabel('User name').fill('e2e.analyst');
  await add.getByLabel('Password').fill('a-long-enough-password');
  await add.getByRole('button', { name: 'Add user' }).click();
  await page.waitForFunction(() => /already exists/.test(document.querySelector('#add-user-result').textContent));

  const remove = page.locator('#delete-user-form');
  await remove.getByLabel('User name').fill('e2e.analyst');
  await remove.getByRole('button', { name: 'Delete user' }).click();
  assert.match(await visibleText('#delete-confirm'), /Delete the user “e2e\.analyst”\?/);
  await page.getByRole('button', { name: 'Yes, delete' }).click();
  await page.waitForFunction(() => /Deleted/.test(document.querySelector('#delete-user-result').textContent));

  await remove.getByLabel('User name').fill('e2e.analyst');
  await remove.getByRole('button', { name: 'Delete user' }).click();
  await page.getByRole('button', { name: 'Yes, delete' }).click();
  await page.waitForFunction(() => /no user called/.test(document.querySelector('#delete-user-result').textContent));
});

test('a viewer does not see the admin page', async () => {
  await login(page, api.url, VIEWER);
  await waitForForecast(page, 'All crimes across Chicago');
  assert.equal(await page.locator('#nav-admin').isVisible(), false);
  assert.equal(await page.locator('#main-nav').getByRole('link', { name: 'Admin' }).count(), 0);
  await page.goto(`${api.url}/#/admin`);
  await page.locator('#admin-forbidden').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#admin-content').isVisible(), false);
  assert.equal(await page.getByRole('button', { name: 'Start a retrain' }).count(), 0);
});

test('an expired token brings the user back to the login page with a message', async () => {
  await login(page, api.url, VIEWER);
  await waitForForecast(page, 'All crimes across Chicago');
  await page.evaluate((url) => fetch(`${url}/__expire?username=viewer`, { method: 'POST' }), api.url);
  await page.locator('#area-input').fill('Loop');
  await page.locator('#area-input').press('Enter');
  const notice = page.locator('#login-notice');
  await notice.waitFor({ state: 'visible' });
  assert.equal(await notice.innerText(), 'Your session expired, please log in again.');
  assert.equal(await page.locator('#main-nav').isVisible(), false);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('crimecast.session')), null);

  // Logging in again goes back to what was asked for.
  const form = page.locator('#view-login');
  await form.getByLabel('User name').fill(VIEWER.username);
  await form.getByLabel('Password').fill(VIEWER.password);
  await form.getByRole('button', { name: 'Log in' }).click();
  await waitForForecast(page, 'All crimes in Loop');

  // A token past its expiry time is not even sent: the page returns to the login at once.
  await page.evaluate(() => {
    const session = JSON.parse(sessionStorage.getItem('crimecast.session'));
    sessionStorage.setItem('crimecast.session', JSON.stringify({ ...session, expiresAt: Date.now() - 1000 }));
  });
  await page.reload();
  await notice.waitFor({ state: 'visible' });
  assert.equal(await notice.innerText(), 'Your session expired, please log in again.');
});

test('logging out ends the session, on the service too', async () => {
  await login(page, api.url, ADMIN);
  await waitForForecast(page, 'All crimes across Chicago');
  const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('crimecast.session')).token);
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.locator('#view-login').waitFor({ state: 'visible' });
  // POST /auth/logout revoked the token: a copy of it kept elsewhere no longer works.
  await page.waitForFunction(async ([url, bearer]) => {
    const answer = await fetch(`${url}/auth/me`, { headers: { Authorization: `Bearer ${bearer}` } });
    return answer.status === 401;
  }, [api.url, token]);
  assert.equal(await visibleText('#login-notice'), 'You have logged out.');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('crimecast.session')), null);
  await page.goto(`${api.url}/#/map`);
  await page.locator('#view-login').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#view-map').isVisible(), false);
});

test('the API base comes from the page\'s meta tag', async () => {
  await page.goto(`${api.url}/`);
  await page.locator('#view-login').waitFor({ state: 'visible' });
  const urls = await page.evaluate(async () => {
    const { apiUrl } = await import('./api.js');
    const meta = document.querySelector('meta[name="crimecast-api-base"]');
    const same = apiUrl('/predict', { community_area: 25, crime_type: 'ALL', months: 12, month: undefined });
    meta.setAttribute('content', 'https://api.example.test/Prod/');
    const other = apiUrl('/auth/token');
    meta.setAttribute('content', '');
    return [same, other];
  });
  assert.deepEqual(urls, ['/predict?community_area=25&crime_type=ALL&months=12', 'https://api.example.test/Prod/auth/token']);
});

test('the page runs under the strict CSP: every view, and nothing is reported', async () => {
  const response = await page.goto(`${api.url}/`);
  const policy = response.headers()['content-security-policy'];
  assert.match(policy, /(^|; )script-src 'self'(;|$)/);
  assert.match(policy, /(^|; )style-src 'self'(;|$)/);
  assert.match(policy, /(^|; )frame-ancestors 'none'(;|$)/);
  assert.equal(response.headers()['x-content-type-options'], 'nosniff');
  await login(page, api.url, ADMIN);
  await waitForForecast(page, 'All crimes across Chicago');
  await page.locator('#chart svg').hover();  // the tooltip is placed through element.style (CSSOM: allowed)
  await page.goto(`${api.url}/#/map`);
  await page.locator('#map-result').waitFor({ state: 'visible' });
  await page.goto(`${api.url}/#/admin`);
  await page.locator('#history-table').waitFor({ state: 'visible' });
  assert.deepEqual(await page.evaluate(() => window.cspViolations), []);

  // The policy is enforced here, and a violation would be caught: an inline style attribute is refused.
  const refused = await page.evaluate(() => new Promise((resolve) => {
    document.addEventListener('securitypolicyviolation', (event) => resolve(event.effectiveDirective), { once: true });
    document.body.insertAdjacentHTML('beforeend', '<p id="csp-probe" style="color: red">probe</p>');
  }));
  assert.equal(refused, 'style-src-attr');
  assert.notEqual(await page.locator('#csp-probe').evaluate((p) => getComputedStyle(p).color), 'rgb(255, 0, 0)');
  problems.splice(0, problems.length, ...problems.filter((p) => !/csp-probe|style-src-attr|inline style/.test(p)));
});
