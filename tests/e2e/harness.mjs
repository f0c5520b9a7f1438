// Starts tests/e2e/fake_api.py on a free port and Debian's Chromium (no browser download).

import { spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
export const SCREENSHOTS = path.join(REPO, 'out', 'screenshots'); // written by every run of `make e2e`

export const ADMIN = { username: 'admin', password: 'correct-horse-battery' };
export const VIEWER = { username: 'viewer', password: 'viewer-password-1' };

function executable(file) {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** $PYTHON if set (relative to the repository), else the project's venv, else python3: the fake needs the stdlib and crimecast's pure modules only. */
export function pythonPath() {
  const candidates = [process.env.PYTHON, path.join(REPO, '.venv', 'bin', 'python')].filter(Boolean);
  for (const candidate of candidates) {
    const resolved = path.isAbsolute(candidate) || !candidate.includes('/') ? candidate : path.resolve(REPO, candidate);
    if (!resolved.includes('/') || executable(resolved)) return resolved;
  }
  return 'python3';
}

/** Start the fake API; resolves to { url, stop }. */
export function startFakeApi(env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(pythonPath(), [path.join(HERE, 'fake_api.py'), '--port', '0'], {
      env: { ...process.env, FAKE_RUN_SECONDS: '3', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let errors = '';
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`fake_api.py did not start in 30 s\n${errors}`));
    }, 30000);
    child.stderr.on('data', (chunk) => { errors += chunk; });
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const match = /listening on (http:\/\/\S+?)\/?\s/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({
          url: match[1],
          stop: () => new Promise((done) => {
            if (child.exitCode !== null) return done();
            child.once('exit', done);
            child.kill('SIGTERM');
          }),
          errors: () => errors,
        });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`fake_api.py exited with ${code}\n${errors}`));
    });
  });
}

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** Chromium with a fresh profile; every test opens its own page (so its own sessionStorage). */
export async function launchBrowser() {
  const profile = mkdtempSync(path.join(tmpdir(), 'crimecast-e2e-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1360, height: 1000 },
    locale: 'en-US',
    timezoneId: 'America/Chicago',
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** A new page that fails the test on any uncaught page error or console error, a CSP violation included
 * (each is also kept in window.cspViolations). */
export async function newPage(context, problems) {
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  await page.addInitScript(() => {
    window.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (event) => {
      const violation = `${event.effectiveDirective} blocked ${event.blockedURI || 'inline'}: ${event.sample}`;
      window.cspViolations.push(violation);
      console.error(`CSP violation: ${violation}`);
    });
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // A 4xx the page asked for on purpose (wrong password, expired token) is logged by Chromium as a console error.
    if (message.type() === 'error' && !/status of 4\d\d/.test(message.text())) problems.push(`console: ${message.text()}`);
  });
  return page;
}

export async function login(page, url, user) {
  await page.goto(`${url}/`);
  const form = page.locator('#view-login');
  await form.getByLabel('User name').fill(user.username);
  await form.getByLabel('Password').fill(user.password);
  await form.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#view-forecast').waitFor({ state: 'visible' });
}

/** Wait until the forecast view shows a finished forecast whose heading contains `text`. */
export async function waitForForecast(page, text) {
  await page.waitForFunction((wanted) => {
    const heading = document.querySelector('#forecast-heading')?.textContent || '';
    const result = document.querySelector('#forecast-result');
    return heading.includes(wanted) && result && !result.hidden && !result.hasAttribute('aria-busy')
      && document.querySelector('#chart .chart-band');
  }, text);
}

export function screenshotPath(name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return path.join(SCREENSHOTS, name);
}

/** axe-core on the page as shown: the serious and critical violations, as "rule: target" lines. */
export async function seriousViolations(page) {
  const { default: AxeBuilder } = await import('@axe-core/playwright');
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']).analyze();
  return results.violations.filter((v) => ['serious', 'critical'].includes(v.impact))
    .flatMap((v) => v.nodes.map((n) => `${v.id} (${v.impact}): ${n.target.join(' ')}: ${n.failureSummary?.split('\n')[1] || ''}`));
}
