// The console (kubectl flagpole console) in a real Chromium: the flags
// list, the kill switch reaching the API, another client's change arriving
// live, the evaluation tester with explain, a rollout saved and a
// concurrent change reported, history and a rollback, a read-only user's disabled controls and 403,
// and a page of another origin refused.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { launch, need, getFlag, patchFlag, createFlag, waitFor, screenshot } from './lib.mjs';

const consoleURL = need('FLAGPOLE_CONSOLE_URL');
const readerURL = process.env.FLAGPOLE_READER_CONSOLE_URL;
const foreignPage = need('FLAGPOLE_FOREIGN_PAGE');
const ns = need('FLAGPOLE_NAMESPACE');
const base = new URL(consoleURL).origin;

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });
// A test that fails leaves no page behind: its watches would hold
// connections the next test's page needs.
let pages = [];
afterEach(async () => {
  await Promise.all(pages.map((p) => p.close().catch(() => {})));
  pages = [];
});

// open opens the console with its secret, then goes to a page of it.
async function open(url, hash) {
  const page = await browser.newPage();
  pages.push(page);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('dialog', (d) => d.accept());
  // Generous: the e2e runs beside the real node and the race tests, and
  // the API may throttle (429) for a while.
  page.setDefaultTimeout(30_000);
  await page.goto(url);
  await page.waitForSelector('header h1');
  if (hash) await page.evaluate((h) => { location.hash = h; }, hash);
  page.errors = errors;
  return page;
}

const row = (page, flag) => page.locator(`table.flags tr[data-flag="${flag}"]`);

test('the flags of the namespace, and the secret out of the address bar', async () => {
  const page = await open(consoleURL);
  await page.waitForSelector('table.flags');
  assert.match(page.url(), new RegExp(`#/ns/${ns}/flags$`), 'the secret is gone from the URL');
  assert.equal(await row(page, 'checkout').locator('td').nth(2).textContent(), 'Boolean');
  assert.match(await row(page, 'checkout').locator('td').nth(3).textContent(), /off/);
  assert.equal(await row(page, 'checkout').locator('.bars .bar').count(), 2, 'the rollout drawn');
  assert.equal(await row(page, 'banner-color').getAttribute('data-state'), 'Enabled');
  await screenshot(page, 'console-flags.png');
  // The secret stays in the tab: a reload works.
  await page.reload();
  await page.waitForSelector('table.flags');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('the kill switch changes the flag in the API', async () => {
  const page = await open(consoleURL);
  const sw = row(page, 'checkout').getByRole('switch');
  await sw.click(); // confirm() is accepted
  await waitFor('the API to say Disabled', async () => (await getFlag(ns, 'checkout')).spec.state === 'Disabled');
  await waitFor('the switch to show it', async () => (await sw.textContent()) === 'Disabled');
  await sw.click();
  await waitFor('the API to say Enabled', async () => (await getFlag(ns, 'checkout')).spec.state === 'Enabled');
  await page.close();
});

test("another client's change arrives live", async () => {
  const page = await open(consoleURL);
  await page.waitForSelector('table.flags');
  await patchFlag(ns, 'banner-color', { spec: { state: 'Disabled', defaultVariant: 'blue' } });
  await waitFor('the list to show the change', async () => (await row(page, 'banner-color').getAttribute('data-state')) === 'Disabled');
  assert.match(await row(page, 'banner-color').locator('td').nth(3).textContent(), /blue/);
  await patchFlag(ns, 'banner-color', { spec: { state: 'Enabled' } });
  await waitFor('the change back', async () => (await row(page, 'banner-color').getAttribute('data-state')) === 'Enabled');
  await page.close();
});

test('the evaluation tester explains the answer', async () => {
  const page = await open(consoleURL, `#/ns/${ns}/flags/checkout`);
  await page.waitForSelector('section.flag');
  await page.getByLabel('evaluation context').fill(JSON.stringify({ targetingKey: 'intern-1', email: 'i@example.com', plan: 'free' }));
  await page.getByRole('button', { name: 'Evaluate with explanation' }).click();
  await page.waitForSelector('.answer table.explain');
  const outcomes = await page.locator('table.explain tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.outcome));
  assert.deepEqual(outcomes, ['Excluded', 'False', 'Matched']);
  assert.equal(await page.locator('.answer').getAttribute('data-reason'), 'SPLIT');
  await screenshot(page, 'console-flag.png');
  await page.close();
});

test('a rollout saved, and a concurrent change reported instead of overwritten', async () => {
  const page = await open(consoleURL, `#/ns/${ns}/flags/checkout`);
  const slider = page.getByLabel('weight of on in gradual');
  // The save's answer is held back: while it is in flight the sliders
  // are held, so a weight moved meanwhile cannot be lost when it comes.
  let release;
  const held = new Promise((r) => { release = r; });
  await page.route('**/k8s/**/flags/checkout', async (route) => {
    if (route.request().method() === 'PUT') await held;
    await route.continue();
  });
  await slider.fill('40');
  await page.getByRole('button', { name: 'Save rollout' }).click();
  await page.waitForSelector('.rollout >> text=Saving…');
  assert.ok(await slider.isDisabled(), 'the slider is held while the save is in flight');
  release();
  await waitFor('the API to have weight 40', async () => (await getFlag(ns, 'checkout')).spec.rules[2].rollout.distribution[0].weight === 40);
  await page.waitForSelector('.rollout >> text=Saved.');
  await page.unroute('**/k8s/**/flags/checkout');

  await slider.fill('60');
  // Someone else changes the flag while the edit is open.
  await patchFlag(ns, 'checkout', { spec: { description: 'changed by someone else' } });
  await page.waitForSelector('text=The flag changed since you started editing.');
  await page.getByRole('button', { name: 'Save rollout' }).click();
  await page.waitForSelector('.rollout .problem');
  assert.match(await page.locator('.rollout .problem').textContent(), /Not saved: the flag changed/);
  let flag = await getFlag(ns, 'checkout');
  assert.equal(flag.spec.rules[2].rollout.distribution[0].weight, 40, 'the stale edit was not written');
  assert.equal(flag.spec.description, 'changed by someone else', "the other client's change is kept");
  // Applied on top of the new flag, both changes stand.
  await page.getByRole('button', { name: 'Apply to the new flag' }).click();
  await page.getByRole('button', { name: 'Save rollout' }).click();
  await waitFor('weight 60 on the new flag', async () => (await getFlag(ns, 'checkout')).spec.rules[2].rollout.distribution[0].weight === 60);
  flag = await getFlag(ns, 'checkout');
  assert.equal(flag.spec.description, 'changed by someone else');
  await page.close();
});

test('history with the changes, and a rollback', async () => {
  const page = await open(consoleURL, `#/ns/${ns}/flags/checkout`);
  const gen = (await getFlag(ns, 'checkout')).metadata.generation;
  const rev = (n) => page.locator(`section.history tr[data-revision="${n}"]`);
  // Revisions are written by the server just after each change.
  await waitFor('the newest revision listed', async () => (await rev(gen).count()) === 1);
  assert.match(await rev(gen).textContent(), /weight: 40 → 60/, "the server's diff of the last save");
  assert.ok(await rev(gen).getByRole('button', { name: 'Roll back' }).isDisabled(), 'the spec it has now is not offered');
  assert.match(await rev(gen - 1).textContent(), /changed by someone else/);
  await screenshot(page, 'console-history.png');
  await rev(gen - 1).getByRole('button', { name: 'Roll back' }).click(); // confirm() is accepted
  await waitFor('the API to have weight 40 again', async () => (await getFlag(ns, 'checkout')).spec.rules[2].rollout.distribution[0].weight === 40);
  await page.waitForSelector(`section.history .done >> text=Rolled back to revision ${gen - 1}: now generation ${gen + 1}.`);
  await waitFor('the rollback listed as a change of its own', async () => (await rev(gen + 1).count()) === 1);
  assert.match(await rev(gen + 1).textContent(), /weight: 60 → 40/);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('overrides with a countdown', async () => {
  const page = await open(consoleURL, `#/ns/${ns}/flags/checkout`);
  await page.waitForSelector('section.overrides form');
  await page.getByLabel('targeting keys').fill('tester-7');
  await page.getByLabel('ttl').fill('10m');
  await page.getByRole('button', { name: 'Add override' }).click();
  const cell = page.locator('section.overrides tr[data-override] td.countdown');
  await cell.waitFor();
  const first = await cell.textContent();
  assert.match(first, /^(9m|10m) \d+s$/);
  await waitFor('the countdown to tick', async () => (await cell.textContent()) !== first);
  await page.locator('section.overrides tr[data-override]').getByRole('button', { name: 'Delete' }).click();
  await page.waitForSelector('section.overrides >> text=None.');
  await page.close();
});

test('a rollout plan: where it is, and approved and aborted from the page', async () => {
  await createFlag(ns, {
    apiVersion: 'flagpole.dev/v1beta1', kind: 'Flag', metadata: { name: 'stepwise' },
    spec: {
      type: 'Boolean', defaultVariant: 'off',
      variants: [{ name: 'on', value: true }, { name: 'off', value: false }],
      rules: [{ name: 'everyone', rollout: {
        distribution: [{ variant: 'on', weight: 0 }, { variant: 'off', weight: 100 }],
        plan: { variant: 'on', steps: [{ weight: 10, approval: true }, { weight: 50, duration: '10m' }, { weight: 100 }] },
      } }],
    },
  });
  const page = await open(consoleURL, `#/ns/${ns}/flags/stepwise`);
  const plan = page.locator('.plan[data-rule="everyone"]');
  await waitFor('the plan waiting for approval', async () => (await plan.getAttribute('data-phase')) === 'Waiting');
  assert.match(await plan.locator('.phase').textContent(), /Waiting, step 1 of 3, 10% on on/);
  assert.match(await plan.locator('tr[data-step="1"]').textContent(), /waiting for approval/);
  assert.ok(await plan.getByRole('button', { name: 'Resume' }).isDisabled(), 'a waiting plan does not resume');
  await plan.getByRole('button', { name: 'Approve' }).click();
  await waitFor('step 2 in the API', async () => (await getFlag(ns, 'stepwise')).status.rollouts[0].step === 1);
  await waitFor('the page to show it', async () => (await plan.getAttribute('data-phase')) === 'Progressing');
  assert.match(await plan.locator('tr[data-step="2"]').textContent(), /after 10m0s \((9m|10m) \d+s left\)/);
  assert.match(await plan.locator('.message').textContent(), /step 1 approved by/);
  await screenshot(page, 'console-plan.png');
  await plan.getByRole('button', { name: 'Abort' }).click(); // confirm() is accepted
  await waitFor('aborted in the API', async () => (await getFlag(ns, 'stepwise')).status.rollouts[0].phase === 'Aborted');
  await waitFor('the page to show it', async () => (await plan.getAttribute('data-phase')) === 'Aborted');
  assert.ok(await plan.getByRole('button', { name: 'Abort' }).isDisabled());
  assert.deepEqual(page.errors, []);
});

test('a list the API throttles comes back when Retry-After says', async () => {
  const page = await browser.newPage();
  pages.push(page);
  page.setDefaultTimeout(30_000);
  // The first two lists of flags are answered 429, as APF does under load.
  let refused = 0;
  await page.route(/\/k8s\/apis\/flagpole\.dev\/v1beta1\/namespaces\/[^/]+\/flags(\?|$)/, async (route) => {
    if (route.request().method() === 'GET' && refused < 2) {
      refused++;
      await route.fulfill({ status: 429, headers: { 'Retry-After': '1', 'Content-Type': 'application/json' },
        body: JSON.stringify({ kind: 'Status', code: 429, reason: 'TooManyRequests', message: 'too many requests, please try again later' }) });
      return;
    }
    await route.continue();
  });
  await page.goto(consoleURL);
  await page.waitForSelector('table.flags');
  assert.equal(refused, 2);
  assert.equal(await row(page, 'checkout').locator('td').nth(2).textContent(), 'Boolean');
});

test('three tabs of a flag open at once, and a fourth still loads and saves', async () => {
  // A browser opens at most six HTTP/1.1 connections to one origin, across
  // all its tabs: a page holding a connection per watch would starve the
  // next tab's page load and every request of its own.
  const tabs = [];
  for (let i = 0; i < 3; i++) {
    const page = await open(consoleURL, `#/ns/${ns}/flags/checkout`);
    await page.waitForSelector('section.history tr[data-revision]');
    await page.waitForSelector('section.overrides form');
    tabs.push(page);
  }
  const list = await open(consoleURL);
  await list.waitForSelector('table.flags');
  const sw = row(list, 'checkout').getByRole('switch');
  await sw.click();
  await waitFor('the API to say Disabled', async () => (await getFlag(ns, 'checkout')).spec.state === 'Disabled');
  for (const page of tabs) {
    await waitFor('every tab to see it live', async () => (await page.locator('section.flag').textContent()).includes('Disabled'));
  }
  await sw.click();
  await waitFor('the API to say Enabled', async () => (await getFlag(ns, 'checkout')).spec.state === 'Enabled');
});

test('a read-only user sees disabled controls and the API refusing', { skip: !readerURL && 'no read-only user here (standalone Flagpole has no RBAC)' }, async () => {
  const page = await open(readerURL);
  await page.waitForSelector('table.flags');
  const sw = row(page, 'checkout').getByRole('switch');
  await waitFor('access reviews to disable the switch', async () => await sw.isDisabled());
  assert.match(await sw.getAttribute('title'), /RBAC does not allow you/);
  await page.evaluate((h) => { location.hash = h; }, `#/ns/${ns}/flags/checkout`);
  await page.waitForSelector('section.flag');
  await waitFor('the slider disabled', async () => await page.getByLabel('weight of on in gradual').isDisabled());
  assert.ok(await page.getByRole('button', { name: 'Add override' }).isDisabled());
  assert.ok(await page.getByRole('button', { name: 'Evaluate with explanation' }).isDisabled());
  // What RBAC refuses the page cannot read either: the overrides are a 403.
  await page.waitForSelector('section.overrides .problem.forbidden');
  assert.match(await page.locator('section.overrides .problem').textContent(), /403: .*cannot (list|watch) resource "flagoverrides"/);
  // And a write sent anyway (the controls bypassed) is the API's 403.
  const status = await page.evaluate(async (path) => {
    const res = await fetch('/k8s' + path, {
      method: 'PATCH',
      headers: { 'X-Flagpole-Console-Secret': sessionStorage.getItem('flagpole-console-secret'), 'Content-Type': 'application/merge-patch+json' },
      body: JSON.stringify({ spec: { state: 'Disabled' } }),
    });
    return [res.status, await res.text()];
  }, `/apis/flagpole.dev/v1beta1/namespaces/${ns}/flags/checkout`);
  assert.equal(status[0], 403, status[1]);
  assert.match(JSON.parse(status[1]).message, /cannot patch resource "flags"/);
  assert.equal((await getFlag(ns, 'checkout')).spec.state, 'Enabled');
  // bob's Role names flags, not flagrevisions: the history is the API's 403.
  await page.waitForSelector('section.history .problem.forbidden');
  await screenshot(page, 'console-read-only.png');
  await page.close();
});

test('a page of another origin cannot use the console', async () => {
  const page = await browser.newPage();
  await page.goto(`${foreignPage}?console=${encodeURIComponent(base)}&ns=${ns}`);
  await page.waitForSelector('#done');
  const results = JSON.parse(await page.locator('#results').textContent());
  // A fetch with the secret header needs a preflight, which is refused; a
  // simple request and a form post get no answer the page may read, and
  // change nothing.
  assert.equal(results.withHeader, 'blocked', JSON.stringify(results));
  assert.equal(results.simple, 'blocked', JSON.stringify(results));
  assert.equal((await getFlag(ns, 'checkout')).spec.state, 'Enabled', 'the form post changed nothing');
  // The same requests made directly, with the foreign Origin: refused.
  const res = await fetch(`${base}/k8s/apis/flagpole.dev/v1beta1/namespaces/${ns}/flags`, {
    headers: { Origin: new URL(foreignPage).origin, 'X-Flagpole-Console-Secret': new URL(consoleURL).hash.replace('#secret=', '') },
  });
  assert.equal(res.status, 403);
  await page.close();
});
