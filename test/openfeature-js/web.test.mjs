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

// Every bulk evaluation's HTTP status, observed (not changed) on its way back.
const bulkStatuses = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const res = await realFetch(input, init);
  if (new URL(String(input.url ?? input)).pathname.endsWith('/ofrep/v1/evaluate/flags')) bulkStatuses.push(res.status);
  return res;
};

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
  bulkStatuses.length = 0;
  await OpenFeature.setProviderAndWait('polling', new OFREPWebProvider({ baseUrl, headers: bearer(appToken), cacheMode: 'disabled', changeDetection: 'polling', pollInterval: 200 }),
    { targetingKey: 'user-1' });
  const client = OpenFeature.getClient('polling');
  assert.equal(client.getStringValue('string-flag', 'x'), 'hello');
  await waitFor('two 304 answers', () => bulkStatuses.filter((s) => s === 304).length >= 2);
  assert.equal(bulkStatuses[0], 200);

  let changed = false;
  client.addHandler(ProviderEvents.ConfigurationChanged, () => { changed = true; });
  await mergePatch(`${flagPath}/string-flag`, { spec: { defaultVariant: 'farewell' } });
  await waitFor('the configuration change', () => changed && client.getStringValue('string-flag', 'x') === 'bye');
  await mergePatch(`${flagPath}/string-flag`, { spec: { defaultVariant: 'greeting' } });
});

test('event stream: a change is pushed without polling', async () => {
  bulkStatuses.length = 0;
  await OpenFeature.setProviderAndWait('sse', new OFREPWebProvider({ baseUrl, headers: bearer(appToken), cacheMode: 'disabled', changeDetection: 'sse' }),
    { targetingKey: 'user-1' });
  const client = OpenFeature.getClient('sse');
  assert.equal(client.getNumberValue('number-flag', 0), 42.5);
  let changed = false;
  client.addHandler(ProviderEvents.ConfigurationChanged, () => { changed = true; });
  await waitFor('the provider to open the event stream', () => streamsOpened > 0);
  await mergePatch(`${flagPath}/number-flag`, { spec: { defaultVariant: 'small' } });
  await waitFor('the pushed change', () => changed && client.getNumberValue('number-flag', 0) === 1);
  assert.equal(bulkStatuses.length, 2, `one initial fetch and one refetch, no polling: ${bulkStatuses}`);
  await mergePatch(`${flagPath}/number-flag`, { spec: { defaultVariant: 'big' } });
});
