// A real browser for the end-to-end tests: Debian's Chromium (/usr/bin/chromium, installed by
// scripts/bootstrap.sh) driven by playwright-core, which never downloads a browser of its own.
//
//   const browser = await launchChromium();
//   const page = await openPage(browser);            // 1280×800, records console and CSP reports
//   await checkAccessibility(page, 'sign-in');       // axe-core: throws on serious/critical
//   await saveScreenshot(page, 'console', '01-sign-in');
//   assert.deepEqual(page.custos.cspViolations, []);
//   await browser.close();
//
// CHROMIUM overrides the browser's path. The browser makes no connection of its own (no
// background networking, updates, sync, QUIC): this machine's network is closed, and a test
// must not depend on anything but the server under test. Each launch gets a new, empty profile
// (playwright-core makes a temporary user-data dir and removes it on close).

import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { repoRoot } from './server.mjs';

const require = createRequire(import.meta.url);

export const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

// Where the screenshots of each step go (gitignored; CI keeps them as artifacts).
export const artifactsDir = path.join(repoRoot, 'tests/e2e/artifacts');

export const CHROMIUM_ARGS = Object.freeze([
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]);

export async function launchChromium() {
  if (!existsSync(chromiumPath)) {
    throw new Error(`no browser at ${chromiumPath} (run: scripts/bootstrap.sh, which installs chromium)`);
  }
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [...CHROMIUM_ARGS],
    timeout: 60_000,
  });
}

// A page in a fresh context (its own sessionStorage and localStorage) at 1280×800, or
// `viewport`. page.custos collects what the page printed to its console, the Content Security
// Policy violations among it, and uncaught page errors.
export async function openPage(browser, { viewport = { width: 1280, height: 800 } } = {}) {
  const context = await browser.newContext({ viewport, locale: 'en-GB', timezoneId: 'UTC' });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const custos = { console: [], cspViolations: [], pageErrors: [] };
  page.custos = custos;
  page.on('console', (msg) => {
    const line = `${msg.type()}: ${msg.text()}`;
    custos.console.push(line);
    // Chromium reports a blocked resource or inline script/style as a console error naming
    // the Content Security Policy directive.
    if (/Content Security Policy|Content-Security-Policy/i.test(msg.text())) custos.cspViolations.push(line);
  });
  page.on('pageerror', (err) => custos.pageErrors.push(String(err?.stack || err)));
  return page;
}

let axeSource;

// Runs axe-core in `page` (injected by evaluation over the DevTools protocol, which the page's
// CSP does not govern; no CSP bypass) and throws listing every violation of impact serious or
// critical. Returns all violations (any impact) for the caller to print or ignore.
export async function checkAccessibility(page, label) {
  axeSource ??= await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target.join(' '), summary: n.failureSummary })),
    }));
  });
  const severe = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (severe.length) {
    const text = severe.map((v) => `  [${v.impact}] ${v.id}: ${v.help}\n` +
      v.nodes.slice(0, 5).map((n) => `      ${n.target}\n        ${(n.summary || '').replace(/\n/g, '\n        ')}`).join('\n'))
      .join('\n');
    throw new Error(`axe-core: ${severe.length} serious or critical violation(s) on ${label} ` +
      `(${page.url()}):\n${text}`);
  }
  return violations;
}

// Saves a full-page PNG as artifacts/<dir>/<name>.png; returns its path.
export async function saveScreenshot(page, dir, name) {
  const out = path.join(artifactsDir, dir);
  await mkdir(out, { recursive: true });
  const file = path.join(out, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
