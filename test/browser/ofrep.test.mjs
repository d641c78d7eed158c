// The unmodified OpenFeature web SDK and OFREP web provider on a page of
// another origin, in a real Chromium, against Flagpole's OFREP: CORS lets
// the allowed origin in (ETag readable: 304s), the event stream opens with
// a single-use ticket (no token in any URL), changes arrive; a refused
// origin gets nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, need, patchFlag, waitFor } from './lib.mjs';

const page1 = need('FLAGPOLE_OFREP_PAGE');
const deniedPage = need('FLAGPOLE_OFREP_DENIED_PAGE');
const baseUrl = need('FLAGPOLE_OFREP_BASE_URL');
const token = need('FLAGPOLE_APP_TOKEN');
const ns = need('FLAGPOLE_NAMESPACE');

let browser;
before(async () => { browser = await launch([`--ignore-certificate-errors-spki-list=${need('FLAGPOLE_SERVING_SPKI')}`]); });
after(async () => { await browser?.close(); });

// app opens the page and starts the provider in it; it records every
// request the page made and every answer.
async function app(url, options) {
  const page = await browser.newPage();
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  const answers = [];
  page.on('response', (r) => answers.push({ url: r.url(), status: r.status() }));
  page.on('pageerror', (e) => { throw e; });
  await page.goto(url);
  await page.waitForFunction(() => window.ready);
  await page.evaluate((o) => window.start(o), { baseUrl, token, ...options });
  return { page, requests, answers };
}

const value = (page, key, fallback) => page.evaluate(([k, f]) => window.client.getStringValue(k, f), [key, fallback]);

test('flags and their changes, over an event stream opened with a ticket', async () => {
  const { page, requests } = await app(page1, { changeDetection: 'sse', context: { targetingKey: 'web-user' } });
  assert.deepEqual(await page.evaluate(() => window.errors), []);
  assert.equal(await value(page, 'web-banner', 'x'), 'hello');
  assert.equal(await page.evaluate(() => window.client.getBooleanValue('web-checkout', true)), false);
  await waitFor('the event stream', () => requests.some((u) => u.includes('/ofrep/v1/events?ticket=')));
  const stream = requests.find((u) => u.includes('/ofrep/v1/events?ticket='));
  assert.ok(requests.every((u) => !u.includes(token)), 'the token is in no URL');

  await patchFlag(ns, 'web-banner', { spec: { defaultVariant: 'bye' } });
  await waitFor('the pushed change', async () => (await value(page, 'web-banner', 'x')) === 'bye');
  assert.ok(await page.evaluate(() => window.changes) > 0, 'ConfigurationChanged fired');

  // The ticket was used: the same URL opens nothing now.
  const again = await page.evaluate(async (u) => (await fetch(u)).status, stream);
  assert.equal(again, 401, 'a used ticket');
  await patchFlag(ns, 'web-banner', { spec: { defaultVariant: 'hi' } });
  await waitFor('the next change, on the stream still open', async () => (await value(page, 'web-banner', 'x')) === 'hello');
  await page.close();
});

test('polling: ETag readable across origins, so 304 while nothing changes', async () => {
  const { page, answers } = await app(page1, { changeDetection: 'polling', pollInterval: 300, context: { targetingKey: 'poller' } });
  assert.deepEqual(await page.evaluate(() => window.errors), []);
  const bulk = () => answers.filter((a) => a.url.endsWith('/ofrep/v1/evaluate/flags')).map((a) => a.status);
  await waitFor('two 304s', () => bulk().filter((s) => s === 304).length >= 2);
  assert.equal(bulk()[0], 200);
  await page.close();
});

test('an origin the policy does not allow gets nothing', async () => {
  const { page, answers } = await app(deniedPage, { changeDetection: 'none', context: { targetingKey: 'x' } });
  assert.ok((await page.evaluate(() => window.errors)).length > 0, 'the provider failed');
  assert.equal(await value(page, 'web-banner', 'the-code-default'), 'the-code-default');
  assert.ok(!answers.some((a) => a.url.endsWith('/ofrep/v1/evaluate/flags') && a.status === 200), 'no answer reached the page');
  await page.close();
});
