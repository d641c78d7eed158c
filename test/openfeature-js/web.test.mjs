// The OpenFeature web SDK with the OFREP web provider, both unmodified from
// npm, against a real Flagpole (static context: one bulk evaluation, cached,
// refreshed through the event stream or by polling).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource as PolyfillEventSource } from 'eventsource';
import { OpenFeature, ProviderEvents } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';
import { baseUrl, appToken, expectedSplits, bearer, mergePatch, waitFor } from './env.mjs';

// Node has no EventSource; a browser's cannot send an Authorization header
// either (docs/openfeature.md). The polyfill stands in for a runtime that can.
let streamsOpened = 0;
globalThis.EventSource = class extends PolyfillEventSource {
  constructor(url, init) {
    super(url, {
      ...init,
      fetch: (input, opts) => fetch(input, { ...opts, headers: { ...opts.headers, Authorization: `Bearer ${appToken}` } }),
    });
    this.addEventListener('open', () => { streamsOpened++; });
  }
};

// Every bulk evaluation's HTTP status, observed (not changed) on its way
// back, per targeting key: each test's provider uses its own key, so the
// providers of earlier tests (still polling) do not count.
const bulkStatusesByKey = {};
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const isBulk = new URL(String(input.url ?? input)).pathname.endsWith('/ofrep/v1/evaluate/flags');
  const body = isBulk ? (init?.body ?? (input instanceof Request ? await input.clone().text() : '{}')) : '';
  const res = await realFetch(input, init);
  if (isBulk) {
    const key = JSON.parse(String(body || '{}')).context?.targetingKey ?? '';
    (bulkStatusesByKey[key] ??= []).push(res.status);
  }
  return res;
};
const bulkStatuses = (key) => (bulkStatusesByKey[key] ??= []);

const flagPath = `/apis/flagpole.dev/v1beta1${new URL(baseUrl).pathname}/flags`;

after(async () => { await OpenFeature.close(); });

test('bulk evaluation answers every flag type from the cache', async () => {
  const key = Object.keys(expectedSplits)[0];
  await OpenFeature.setProviderAndWait('cached', new OFREPWebProvider({ baseUrl, headers: bearer(appToken), cacheMode: 'disabled', changeDetection: 'none' }),
    { targetingKey: key, plan: 'vip' });
  const client = OpenFeature.getClient('cached');
  assert.equal(client.getBooleanValue('bool-flag', false), true);
  assert.equal(client.getStringValue('string-flag', 'x'), 'hello');
  assert.equal(client.getNumberValue('number-flag', 0), 42.5);
  assert.deepEqual(client.getObjectValue('object-flag', {}), { color: 'red', sizes: [1, 2] });
  assert.equal(client.getStringDetails('disabled-flag', 'x').reason, 'DISABLED');
  const split = client.getBooleanDetails('rollout-flag', false);
  assert.deepEqual([split.reason, split.variant], ['SPLIT', expectedSplits[key]]);
  assert.equal(client.getBooleanValue('no-such-flag', true), true);
});

test('polling: 304 while nothing changes, then the change', async () => {
  const statuses = bulkStatuses('polling-user');
  await OpenFeature.setProviderAndWait('polling', new OFREPWebProvider({ baseUrl, headers: bearer(appToken), cacheMode: 'disabled', changeDetection: 'polling', pollInterval: 200 }),
    { targetingKey: 'polling-user' });
  const client = OpenFeature.getClient('polling');
  assert.equal(client.getStringValue('string-flag', 'x'), 'hello');
  await waitFor('two 304 answers', () => statuses.filter((s) => s === 304).length >= 2);
  assert.equal(statuses[0], 200);

  let changed = false;
  client.addHandler(ProviderEvents.ConfigurationChanged, () => { changed = true; });
  await mergePatch(`${flagPath}/string-flag`, { spec: { defaultVariant: 'farewell' } });
  await waitFor('the configuration change', () => changed && client.getStringValue('string-flag', 'x') === 'bye');
  await mergePatch(`${flagPath}/string-flag`, { spec: { defaultVariant: 'greeting' } });
});

test('event stream: a change is pushed without polling', async () => {
  const statuses = bulkStatuses('sse-user');
  // No pollInterval: polling is off, so a re-fetch can only come from the stream.
  await OpenFeature.setProviderAndWait('sse', new OFREPWebProvider({ baseUrl, headers: bearer(appToken), cacheMode: 'disabled', changeDetection: 'sse' }),
    { targetingKey: 'sse-user' });
  const client = OpenFeature.getClient('sse');
  assert.equal(client.getNumberValue('number-flag', 0), 42.5);
  await waitFor('the provider to open the event stream', () => streamsOpened > 0);
  // Earlier tests' writes (and the status controller's after them) may still
  // be announced; wait for a quiet second, in which nothing is fetched.
  await waitFor('a quiet second', async () => {
    const seen = statuses.length;
    await new Promise((r) => setTimeout(r, 1000));
    return statuses.length === seen;
  });
  const before = statuses.length;
  let changed = false;
  client.addHandler(ProviderEvents.ConfigurationChanged, () => { changed = true; });
  await mergePatch(`${flagPath}/number-flag`, { spec: { defaultVariant: 'small' } });
  await waitFor('the pushed change', () => changed && client.getNumberValue('number-flag', 0) === 1);
  assert.ok(statuses.length > before, 'the change was fetched after an event');
  await mergePatch(`${flagPath}/number-flag`, { spec: { defaultVariant: 'big' } });
});
