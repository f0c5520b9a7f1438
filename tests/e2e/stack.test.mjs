// The web page against the real one-machine stack (python -m local.stack): the same
// handlers, authorizer and stores as `make demo`, on a small synthetic snapshot plus the
// area outlines: the real ones from CRIMECAST_DATA_DIR (read in place, never copied) when
// that folder is there, else the simplified ones committed in tests/fixtures.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  REPO, launchBrowser, login, newPage, pythonPath, screenshotPath, seriousViolations, waitForForecast,
} from './harness.mjs';

const ADMIN = { username: 'admin', password: 'stack-e2e-admin-password' };
const DATA_DIR = process.env.CRIMECAST_DATA_DIR || path.resolve(REPO, '..', 'shared', 'data');
let stack;
let browser;
let snapshot;

function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Three years of monthly counts for a few areas and the city, with a summer peak. */
function writeSnapshot(dir) {
  const rows = ['month,community_area,primary_type,count'];
  const cityRows = ['month,community_area,primary_type,count'];
  for (let i = 0; i < 60; i += 1) {
    const month = `${2021 + Math.floor(i / 12)}-${String((i % 12) + 1).padStart(2, '0')}`;
    const season = 1 + 0.25 * Math.sin((2 * Math.PI * ((i % 12) - 3)) / 12);
    let total = 0;
    for (const [area, level] of [[25, 120], [8, 200], [32, 90]]) {
      for (const [type, share] of [['THEFT', 0.6], ['ASSAULT', 0.4]]) {
        const count = Math.round(level * share * season + ((i * area) % 7));
        rows.push(`${month},${area},${type},${count}`);
        total += count;
      }
    }
    cityRows.push(`${month},,ALL,${total + 500}`);
  }
  writeFileSync(path.join(dir, 'area_monthly_all_types_2001_2026.csv'), `${rows.join('\n')}\n`);
  writeFileSync(path.join(dir, 'citywide_monthly_by_type_2001_2026.csv'), `${cityRows.join('\n')}\n`);
  const real = path.join(DATA_DIR, 'community_areas.geojson');
  const outlines = existsSync(real) ? real : path.join(REPO, 'tests', 'fixtures', 'community_areas.geojson');
  symlinkSync(outlines, path.join(dir, 'community_areas.geojson'));
}

function startStack(port) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, CRIMECAST_PORT: String(port), CRIMECAST_SNAPSHOT: snapshot,
      CRIMECAST_ADMIN_PASSWORD: ADMIN.password,
      // This checkout's package first: the venv's editable install may point at another worktree.
      PYTHONPATH: [path.join(REPO, 'shared'), REPO, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter) };
    delete env.AWS_ENDPOINT_URL;
    const child = spawn(pythonPath(), ['-m', 'local.stack'], { cwd: REPO, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let errors = '';
    child.stderr.on('data', (chunk) => {
      errors += chunk;
      if (errors.includes('ready: http://')) resolve({ url: `http://127.0.0.1:${port}`, child });
    });
    child.once('exit', (code) => reject(new Error(`the stack exited with ${code}\n${errors}`)));
    setTimeout(() => reject(new Error(`the stack was not ready in 240 s\n${errors}`)), 240000).unref();
  });
}

before(async () => {
  snapshot = mkdtempSync(path.join(tmpdir(), 'crimecast-snapshot-'));
  writeSnapshot(snapshot);
  stack = await startStack(await freePort());
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (stack) {
    const stopped = new Promise((done) => stack.child.once('exit', done));
    stack.child.kill('SIGINT');
    await stopped;
  }
  rmSync(snapshot, { recursive: true, force: true });
});

test('on the real stack: log in, read a forecast and its accuracy, open the map', async () => {
  const problems = [];
  const page = await newPage(browser.context, problems);
  await login(page, stack.url, ADMIN);
  await page.goto(`${stack.url}/#/forecast?area=25&type=THEFT`);
  await waitForForecast(page, 'Austin');
  assert.match(await page.locator('#forecast-heading').textContent(), /Theft in Austin/i);
  assert.ok(await page.locator('#chart .chart-band').count() > 0);
  assert.match(await page.locator('body').textContent(), /Typically off by about/);
  await page.screenshot({ path: screenshotPath('stack-forecast.png'), fullPage: true });
  await page.getByRole('link', { name: 'Map', exact: true }).click();
  await page.waitForFunction(() => document.querySelectorAll('#map svg path').length >= 77);
  await page.screenshot({ path: screenshotPath('stack-map.png'), fullPage: true });
  assert.deepEqual(problems, []);
});

test('on the real stack: a wrong password is refused', async () => {
  const problems = [];
  const page = await newPage(browser.context, problems);
  await page.goto(`${stack.url}/`);
  const form = page.locator('#view-login');
  await form.getByLabel('User name').fill('admin');
  await form.getByLabel('Password').fill('not-the-password');
  await form.getByRole('button', { name: 'Log in' }).click();
  await page.getByText(/do not match/i).waitFor();
});

test('on the real stack: a developer signs in on /docs with the password flow and tries /predict', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${stack.url}/docs`);
  await page.click('button.authorize');
  await page.fill('#oauth_username', ADMIN.username);
  await page.fill('#oauth_password', ADMIN.password);
  const token = page.waitForResponse((r) => r.url().endsWith('/auth/token'));
  await page.click('.auth-btn-wrapper button.authorize');
  assert.equal((await token).status(), 200);
  await page.click('.auth-btn-wrapper button.btn-done');
  await page.click('#operations-default-predict_predict_get .opblock-summary');
  await page.click('#operations-default-predict_predict_get button.try-out__btn');
  await page.fill('#operations-default-predict_predict_get tr[data-param-name="community_area"] input', '25');
  await page.fill('#operations-default-predict_predict_get tr[data-param-name="crime_type"] input', 'THEFT');
  const answer = page.waitForResponse((r) => r.url().includes('/predict?'));
  await page.click('#operations-default-predict_predict_get button.execute');
  const response = await answer;
  assert.equal(response.status(), 200);
  assert.equal((await response.json()).area_name, 'Austin');
  await page.screenshot({ path: screenshotPath('stack-docs.png'), fullPage: true });
  await page.close();
});

// --- the page's comparisons, unusual months, map, downloads, rollback and axe, on the real stack ---

async function apiGet(page, pathAndQuery, accept = 'application/json') {
  return page.evaluate(async ([target, wanted]) => {
    const { token } = JSON.parse(sessionStorage.getItem('crimecast.session'));
    const r = await fetch(target, { headers: { Authorization: `Bearer ${token}`, Accept: wanted } });
    return wanted === 'text/csv' ? r.text() : r.json();
  }, [pathAndQuery, accept]);
}

/** The snapshot's own count of one area x type in one month (writeSnapshot's formula). */
function knownCount(area, type, month) {
  const i = (Number(month.slice(0, 4)) - 2021) * 12 + Number(month.slice(5, 7)) - 1;
  const level = { 25: 120, 8: 200, 32: 90 }[area];
  const share = { THEFT: 0.6, ASSAULT: 0.4 }[type];
  const season = 1 + 0.25 * Math.sin((2 * Math.PI * ((i % 12) - 3)) / 12);
  return Math.round(level * share * season + ((i * area) % 7));
}

function monthsBack(last, n) {
  const out = [];
  let [y, m] = last.split('-').map(Number);
  for (let k = 0; k < n; k += 1) {
    out.push(`${y}-${String(m).padStart(2, '0')}`);
    m -= 1;
    if (!m) { m = 12; y -= 1; }
  }
  return out;
}

test('on the real stack: the year-ago comparison, the THEFT map, unusual months, the CSV, axe', async () => {
  const problems = [];
  const page = await newPage(browser.context, problems);
  await login(page, stack.url, ADMIN);
  await page.goto(`${stack.url}/#/forecast?area=25&type=THEFT`);
  await waitForForecast(page, 'Austin');
  const answer = await apiGet(page, '/predict?community_area=25&crime_type=THEFT&months=12');
  const last12 = monthsBack(answer.data_through, 12);
  const before12 = monthsBack(monthsBack(answer.data_through, 13)[12], 12);
  const sum = (months) => months.reduce((t, m) => t + knownCount(25, 'THEFT', m), 0);
  assert.equal(answer.comparison.last_12.now, sum(last12));
  assert.equal(answer.comparison.last_12.before, sum(before12));
  const cells = await page.locator('#comparison-table tbody tr').first().locator('td').allInnerTexts();
  assert.deepEqual(cells.slice(0, 2), [sum(last12).toLocaleString('en-US'), sum(before12).toLocaleString('en-US')]);
  assert.deepEqual(await seriousViolations(page), []);

  // The CSV the page saves is the API's.
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#forecast-download').click()]);
  assert.equal(readFileSync(await download.path(), 'utf8'), await apiGet(page, '/predict?community_area=25&crime_type=THEFT&months=12', 'text/csv'));

  // THEFT map: every area with a THEFT forecast in this snapshot (8, 25 and 32; the real-data demo has all 77) is coloured.
  await page.goto(`${stack.url}/#/map?type=THEFT`);
  await page.waitForFunction(() => document.querySelectorAll('#map path.map-area').length >= 77 && !document.querySelector('#alerts-card').hidden);
  const map = await apiGet(page, '/predict/map?crime_type=THEFT');
  const coloured = await page.$$eval('#map path.map-area', (paths) => paths.filter((p) => !p.getAttribute('fill').startsWith('url(')).map((p) => Number(p.dataset.area)));
  assert.deepEqual(coloured.sort((a, b) => a - b), map.areas.map((r) => r.community_area).sort((a, b) => a - b));
  assert.deepEqual(coloured.sort((a, b) => a - b), [8, 25, 32]);
  const alerts = await apiGet(page, '/alerts?crime_type=THEFT');
  assert.equal(await page.locator('#alerts-list li').count(), Math.min(10, alerts.alerts.length));
  if (!alerts.series_checked) assert.match(await page.locator('#alerts-summary').innerText(), /no forecast was issued before/);
  assert.deepEqual(await seriousViolations(page), []);
  await page.goto(`${stack.url}/#/compare?series=25:THEFT,8:THEFT,city:ALL`);
  await page.waitForSelector('#compare-chart path.compare-line');
  assert.deepEqual(await seriousViolations(page), []);
  assert.deepEqual(problems, []);
  await page.close();
});

test('on the real stack: rolling back makes the previous version serve', async () => {
  const problems = [];
  const page = await newPage(browser.context, problems);
  await login(page, stack.url, ADMIN);
  const first = (await apiGet(page, '/catalog')).model_version;
  // A second version: retrain, and wait for its run to end.
  const run = await page.evaluate(async () => {
    const { token } = JSON.parse(sessionStorage.getItem('crimecast.session'));
    return (await fetch('/retrain', { method: 'POST', headers: { Authorization: `Bearer ${token}` } })).json();
  });
  let ended;
  for (let i = 0; i < 600 && !ended; i += 1) {
    const found = await apiGet(page, `/runs/${run.run_id}`);
    if (found.status === 'succeeded' || found.status === 'failed') ended = found;
    else await new Promise((done) => setTimeout(done, 1000));
  }
  assert.equal(ended?.status, 'succeeded', JSON.stringify(ended?.detail ?? 'the retrain did not end in 600 s'));
  assert.equal(ended.detail.promotion.promoted, true, ended.detail.promotion.reason);
  // The read routes keep the champion pointer 30 s per warm container (as on AWS): wait for it.
  let second = first;
  for (let i = 0; i < 45 && second === first; i += 1) {
    await new Promise((done) => setTimeout(done, 1000));
    second = (await apiGet(page, '/catalog')).model_version;
  }
  assert.notEqual(second, first, 'the retrain served a new version');
  await page.goto(`${stack.url}/#/admin`);
  await page.getByRole('button', { name: `Serve again: ${first}` }).click();
  await page.locator('#rollback-reason').fill('the stack test rolls back');
  await page.locator('#rollback-confirm').click();
  await page.getByText(`${first} is serving again`).waitFor();
  assert.deepEqual(await seriousViolations(page), []);
  assert.equal((await apiGet(page, '/predict?community_area=25&crime_type=THEFT&months=12')).model_version, first);
  const rollbacks = (await apiGet(page, '/runs?kind=promote')).runs;
  assert.equal(rollbacks[0].detail.by, ADMIN.username);
  assert.equal(rollbacks[0].detail.reason, 'the stack test rolls back');
  assert.deepEqual(problems, []);
  await page.close();
});
