// What the Go test that runs these files tells them (test/integration and
// test/e2e): where Flagpole's OFREP base URL is, the tokens to use, and the
// answers the Go engine gives, so the two can be compared.
import https from 'node:https';
import fs from 'node:fs';

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests through the Go test that starts Flagpole (docs/testing.md)`);
  return v;
}

export const baseUrl = need('FLAGPOLE_OFREP_BASE_URL');
export const appToken = need('FLAGPOLE_APP_TOKEN');
export const deniedToken = need('FLAGPOLE_DENIED_TOKEN');
// What a request without credentials gets: 401 standalone; delegated
// authentication lets it through as system:anonymous, whom RBAC refuses: 403.
export const noTokenStatus = Number(need('FLAGPOLE_NO_TOKEN_STATUS'));
// {"<targetingKey>": "<variant>"} for the rollout flag, from the Go engine.
export const expectedSplits = JSON.parse(need('FLAGPOLE_EXPECTED_SPLITS'));
// The flag the web test flips, and the kubeconfig-free way to flip it.
const adminCert = process.env.FLAGPOLE_ADMIN_CERT;
const adminKey = process.env.FLAGPOLE_ADMIN_KEY;
const apiServer = process.env.FLAGPOLE_API_SERVER;

export const bearer = (token) => [['Authorization', `Bearer ${token}`]];

// mergePatch sends a JSON merge patch to a Flagpole API path with the admin
// client certificate.
export function mergePatch(path, patch) {
  return new Promise((resolve, reject) => {
    const url = new URL(path, apiServer);
    const req = https.request(url, {
      method: 'PATCH',
      cert: fs.readFileSync(adminCert),
      key: fs.readFileSync(adminKey),
      headers: { 'Content-Type': 'application/merge-patch+json' },
    }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body)) : reject(new Error(`PATCH ${path}: ${res.statusCode} ${body}`))));
    });
    req.on('error', reject);
    req.end(JSON.stringify(patch));
  });
}

// waitFor polls until check() is true (10 s at most).
export async function waitFor(what, check) {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
