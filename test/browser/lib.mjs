// What the browser tests share: Debian's Chromium driven by playwright-core
// (never a browser playwright downloads), a new empty profile each time,
// and a client for Flagpole's API as another user would change it.
import { chromium } from 'playwright-core';
import https from 'node:https';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests through the Go test that starts Flagpole (docs/testing.md)`);
  return v;
}

// The flags the issue prescribes; playwright adds its own automation flags.
const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// launch starts Chromium with a fresh profile; extraArgs adds flags (the
// serving certificate to trust). The profile is removed on close.
export async function launch(extraArgs = []) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'flagpole-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: need('FLAGPOLE_CHROMIUM'),
    headless: true,
    args: [...chromiumArgs, ...extraArgs],
    viewport: { width: 1280, height: 900 },
  });
  const close = context.close.bind(context);
  context.close = async () => { await close(); fs.rmSync(profile, { recursive: true, force: true }); };
  return context;
}

// api talks to Flagpole's API (through kube-apiserver when delegated) with
// the admin's client certificate: "another client".
const apiServer = process.env.FLAGPOLE_API_SERVER;
function apiRequest(method, apiPath, body, contentType = 'application/json') {
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(apiPath, apiServer), {
      method,
      ca: fs.readFileSync(need('FLAGPOLE_API_CA')),
      cert: fs.readFileSync(need('FLAGPOLE_API_CERT')),
      key: fs.readFileSync(need('FLAGPOLE_API_KEY')),
      headers: body === undefined ? {} : { 'Content-Type': contentType },
    }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => (res.statusCode < 300 ? resolve(JSON.parse(text)) : reject(new Error(`${method} ${apiPath}: ${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
export const flagPath = (ns, name) => `/apis/flagpole.dev/v1beta1/namespaces/${ns}/flags/${name}`;
export const getFlag = (ns, name) => apiRequest('GET', flagPath(ns, name));
export const patchFlag = (ns, name, patch) => apiRequest('PATCH', flagPath(ns, name), patch, 'application/merge-patch+json');
export const createFlag = (ns, flag) => apiRequest('POST', `/apis/flagpole.dev/v1beta1/namespaces/${ns}/flags`, flag);

// waitFor polls check until it is true (15 s at most).
export async function waitFor(what, check, timeout = 30_000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) { last = err; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// screenshot saves a page to FLAGPOLE_SCREENSHOT_DIR, when set.
export async function screenshot(page, name) {
  const dir = process.env.FLAGPOLE_SCREENSHOT_DIR;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, name), fullPage: true });
}
