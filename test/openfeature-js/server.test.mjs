// The OpenFeature server SDK with the OFREP provider, both unmodified from
// npm, against a real Flagpole (dynamic context: one request per evaluation).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { OpenFeature, ErrorCode, createEvaluationEvent } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';
import { baseUrl, appToken, deniedToken, expectedSplits, bearer, noTokenStatus } from './env.mjs';

let client;
before(async () => {
  await OpenFeature.setProviderAndWait('app', new OFREPProvider({ baseUrl, headers: bearer(appToken) }));
  client = OpenFeature.getClient('app');
});

test('boolean flag: targeting match from a context attribute', async () => {
  const d = await client.getBooleanDetails('bool-flag', false, { targetingKey: 'user-1', plan: 'vip' });
  assert.equal(d.value, true);
  assert.equal(d.reason, 'TARGETING_MATCH');
  assert.equal(d.variant, 'on');
  assert.equal(d.errorCode, undefined);
});

test('boolean flag: a context without the attribute falls through to the default variant', async () => {
  const d = await client.getBooleanDetails('bool-flag', true, { targetingKey: 'user-1' });
  assert.equal(d.value, false);
  assert.equal(d.reason, 'DEFAULT');
  assert.equal(d.variant, 'off');
});

test('string, number and object flags', async () => {
  const s = await client.getStringDetails('string-flag', 'fallback', {});
  assert.deepEqual([s.value, s.reason, s.variant], ['hello', 'STATIC', 'greeting']);
  const n = await client.getNumberDetails('number-flag', 0, {});
  assert.deepEqual([n.value, n.reason], [42.5, 'STATIC']);
  const o = await client.getObjectDetails('object-flag', {}, {});
  assert.deepEqual(o.value, { color: 'red', sizes: [1, 2] });
  assert.equal(o.reason, 'STATIC');
});

test('a missing flag yields the code default with FLAG_NOT_FOUND', async () => {
  const d = await client.getBooleanDetails('no-such-flag', true, { targetingKey: 'user-1' });
  assert.equal(d.value, true);
  assert.equal(d.errorCode, ErrorCode.FLAG_NOT_FOUND);
});

test('a disabled flag answers DISABLED', async () => {
  const d = await client.getStringDetails('disabled-flag', 'code-default', {});
  assert.equal(d.reason, 'DISABLED');
  assert.equal(d.value, 'off-value');
});

test('a wrongly typed request is a type mismatch', async () => {
  const d = await client.getNumberDetails('bool-flag', 7, {});
  assert.equal(d.value, 7);
  assert.equal(d.errorCode, ErrorCode.TYPE_MISMATCH);
});

test('rollout answers equal the Go engine\'s', async () => {
  const keys = Object.keys(expectedSplits);
  assert.ok(keys.length >= 50, 'the Go test passes the expected answers');
  for (const key of keys) {
    const d = await client.getBooleanDetails('rollout-flag', false, { targetingKey: key });
    assert.equal(d.reason, 'SPLIT', key);
    assert.equal(d.variant, expectedSplits[key], key);
  }
});

test('without a token: refused (401 standalone, 403 as system:anonymous when delegated), and the code default', async () => {
  const res = await fetch(`${baseUrl}/ofrep/v1/evaluate/flags/bool-flag`, { method: 'POST', body: '{}' });
  assert.equal(res.status, noTokenStatus);
  await OpenFeature.setProviderAndWait('anonymous', new OFREPProvider({ baseUrl }));
  const d = await OpenFeature.getClient('anonymous').getBooleanDetails('bool-flag', true, { targetingKey: 'user-1', plan: 'vip' });
  assert.equal(d.value, true);
  assert.ok(d.errorCode, 'an error code is set');
});

test('a token without the Role: 403, and the code default', async () => {
  const res = await fetch(`${baseUrl}/ofrep/v1/evaluate/flags/bool-flag`, {
    method: 'POST', body: '{}', headers: { Authorization: `Bearer ${deniedToken}` },
  });
  assert.equal(res.status, 403);
  await OpenFeature.setProviderAndWait('denied', new OFREPProvider({ baseUrl, headers: bearer(deniedToken) }));
  const d = await OpenFeature.getClient('denied').getBooleanDetails('bool-flag', true, { targetingKey: 'user-1', plan: 'vip' });
  assert.equal(d.value, true);
  assert.ok(d.errorCode, 'an error code is set');
});

test('the SDK\'s own telemetry fills feature_flag.set.id and feature_flag.version from OFREP metadata', async () => {
  const events = [];
  // The stock telemetry of the SDK (what its OpenTelemetry hooks record),
  // with no Flagpole-specific code: flagSetId and version come from the
  // answer's metadata.
  const hook = { finally: (hookContext, details) => { events.push(createEvaluationEvent(hookContext, details)); } };
  await client.getBooleanDetails('bool-flag', false, { targetingKey: 'user-1', plan: 'vip' }, { hooks: [hook] });
  assert.equal(events.length, 1);
  const attrs = events[0].attributes;
  const namespace = new URL(baseUrl).pathname.split('/').filter(Boolean)[1];
  assert.equal(attrs['feature_flag.key'], 'bool-flag');
  assert.equal(attrs['feature_flag.set.id'], namespace);
  assert.match(attrs['feature_flag.version'], /^[0-9]+$/);
  assert.equal(attrs['feature_flag.result.variant'], 'on');
  assert.equal(attrs['feature_flag.result.reason'], 'targeting_match');
});
