// Traffic from the unmodified OpenFeature server SDK and OFREP provider, for
// the e2e test of usage counting (test/e2e/lifecycle_usage_test.go): it
// evaluates one flag a given number of times for a context that gets
// variant "on" and as many for one that gets "off", and checks the answers.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this through the Go test that starts Flagpole`);
  return v;
}

const baseUrl = need('FLAGPOLE_OFREP_BASE_URL');
const token = need('FLAGPOLE_APP_TOKEN');
const flag = need('FLAGPOLE_USAGE_FLAG');
const count = Number(need('FLAGPOLE_USAGE_EVALUATIONS'));

let client;
before(async () => {
  await OpenFeature.setProviderAndWait('usage', new OFREPProvider({ baseUrl, headers: [['Authorization', `Bearer ${token}`]] }));
  client = OpenFeature.getClient('usage');
});

test(`evaluate ${flag}: on and off, ${count} times each`, async () => {
  for (let i = 0; i < count; i++) {
    const on = await client.getBooleanDetails(flag, false, { targetingKey: `js-${i}`, plan: 'vip' });
    assert.equal(on.variant, 'on');
    const off = await client.getBooleanDetails(flag, true, { targetingKey: `js-${i}` });
    assert.equal(off.variant, 'off');
  }
});
