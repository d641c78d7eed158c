// The console's way to the cluster: every request goes to the console's own
// proxy (/k8s/...) with this run's secret; the proxy adds the user's
// credentials. The browser never holds a credential.

const SECRET_KEY = 'flagpole-console-secret';

// The secret comes in the URL's fragment (never sent to a server); it is
// kept in this tab's session storage and removed from the address bar.
export function takeSecret() {
  const m = /(?:^#|&)secret=([^&]*)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(SECRET_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + '#/');
  }
  return sessionStorage.getItem(SECRET_KEY);
}

let secret = null;
export function setSecret(s) { secret = s; }

// APIError carries the HTTP status and the API's Status message.
export class APIError extends Error {
  constructor(status, message, reason, retryAfter = 0) {
    super(message);
    this.status = status;
    this.reason = reason;
    // retryAfter is the answer's Retry-After in seconds (429, 503), 0 without.
    this.retryAfter = retryAfter;
  }
  get forbidden() { return this.status === 403; }
  get conflict() { return this.status === 409; }
  get notFound() { return this.status === 404; }
}

function headers(extra) {
  return { 'X-Flagpole-Console-Secret': secret, Accept: 'application/json', ...extra };
}

async function failure(res) {
  let message = `${res.status} ${res.statusText}`;
  let reason = '';
  const text = await res.text();
  try {
    const status = JSON.parse(text);
    if (status.message) message = `${res.status}: ${status.message}`;
    reason = status.reason || '';
  } catch {
    if (text.trim()) message = `${res.status}: ${text.trim()}`;
  }
  const retryAfter = Number.parseInt(res.headers.get('Retry-After') || '', 10);
  return new APIError(res.status, message, reason, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : 0);
}

// request sends one API request through the console and returns the JSON
// answer, or throws an APIError.
export async function request(method, path, body, contentType = 'application/json') {
  const res = await fetch('/k8s' + path, {
    method,
    headers: headers(body === undefined ? {} : { 'Content-Type': contentType }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw await failure(res);
  return res.status === 204 ? null : res.json();
}

export async function session() {
  const res = await fetch('/session', { headers: headers() });
  if (!res.ok) throw await failure(res);
  return res.json();
}

export const group = '/apis/flagpole.dev/v1beta1';
export const nsPath = (ns, resource, name) => `${group}/namespaces/${encodeURIComponent(ns)}/${resource}${name ? '/' + encodeURIComponent(name) : ''}`;

// A tab's watches share one stream (the console's /watches): a browser
// opens at most six HTTP/1.1 connections to an origin across all its tabs,
// and a connection per watch starved the third tab of every request. The
// stream is replaced whenever the set of watches changes; each watch
// resumes from the last resourceVersion it saw, so nothing is lost.
const hub = { watches: new Map(), next: 0, ctl: null, timer: null, retry: null, retryAt: 0 };
const first = 500;

// watchList lists path and then watches it, calling onChange with the
// current items (by name) on every event, until signal aborts. It
// reconnects from the last resourceVersion, and lists again when that is
// too old (410). onError gets failures (a 403 stops the watch).
export function watchList(path, query, onChange, onError, signal) {
  const id = hub.next++;
  const w = { path, query, rv: '', items: new Map(), onError, stopped: false, notBefore: 0, delay: first };
  w.emit = () => onChange([...w.items.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)));
  hub.watches.set(id, w);
  signal.addEventListener('abort', () => { hub.watches.delete(id); reconnect(); }, { once: true });
  reconnect();
}

// reconnect replaces the open stream with one for the watches there are
// now — once for a burst of changes (a page mounting three watches).
function reconnect() {
  if (hub.timer) return;
  hub.timer = setTimeout(() => {
    hub.timer = null;
    hub.ctl?.abort();
    hub.ctl = new AbortController();
    run(hub.ctl.signal);
  }, 0);
}

// reconnectAt brings a waiting watch back when it may try again.
function reconnectAt(t) {
  if (hub.retry && hub.retryAt <= t) return;
  clearTimeout(hub.retry);
  hub.retryAt = t;
  hub.retry = setTimeout(() => { hub.retry = null; reconnect(); }, Math.max(0, t - Date.now()));
}

const sleep = (ms, signal) => new Promise((r) => {
  const t = setTimeout(r, ms);
  signal.addEventListener('abort', () => { clearTimeout(t); r(); }, { once: true });
});

// fail reports a watch's failure and decides when it tries again: never
// after a 401 or 403, when the server says after a 429 or 503, else after
// a backoff of its own.
function fail(w, err) {
  w.onError(err);
  w.failed = true;
  if (err instanceof APIError && (err.forbidden || err.status === 401)) { w.stopped = true; return; }
  if (err instanceof APIError && err.status === 410) w.rv = '';
  const wait = err instanceof APIError && err.retryAfter ? err.retryAfter * 1000 : w.delay;
  if (!(err instanceof APIError && err.retryAfter)) w.delay = Math.min(w.delay * 2, 10_000);
  w.notBefore = Date.now() + wait;
}

async function relist(w) {
  const list = await request('GET', `${w.path}?${w.query}`);
  w.items.clear();
  for (const it of list.items) w.items.set(it.metadata.name, it);
  w.rv = list.metadata.resourceVersion;
  w.emit();
}

async function run(signal) {
  let delay = first;
  while (!signal.aborted) {
    const now = Date.now();
    const all = [...hub.watches.values()].filter((w) => !w.stopped);
    for (const w of all) {
      if (w.rv || w.notBefore > now) continue;
      try { await relist(w); } catch (err) { fail(w, err); }
      if (signal.aborted) return;
    }
    // Those waiting (throttled, failed: their lists just now included)
    // come back when the first may try again.
    const waiting = all.filter((w) => !w.stopped && w.notBefore > Date.now());
    if (waiting.length) reconnectAt(Math.min(...waiting.map((w) => w.notBefore)));
    const live = all.filter((w) => w.rv && !w.stopped && w.notBefore <= Date.now());
    if (!live.length) return; // reconnectAt brings the waiting back
    const opened = Date.now();
    let events = 0;
    try {
      events = await stream(live, signal);
    } catch (err) {
      if (signal.aborted) return;
      // The stream itself failed (the console stopped, the network): every
      // watch on it says so.
      for (const w of live) { w.onError(err); w.failed = true; }
      events = 0;
    }
    if (signal.aborted) return;
    // A stream that ends at once, with nothing, is not tried again at once.
    if (events === 0 && Date.now() - opened < 1000) {
      await sleep(delay, signal);
      delay = Math.min(delay * 2, 10_000);
    } else {
      delay = first;
    }
  }
}

// stream reads one /watches response, and returns the number of events
// when it ends.
async function stream(live, signal) {
  const w = JSON.stringify(live.map((x) => ({ path: x.path, query: x.query, resourceVersion: x.rv })));
  const res = await fetch('/watches?w=' + encodeURIComponent(w), { headers: headers(), signal });
  if (!res.ok) throw await failure(res);
  // Connected again: a watch's earlier failure is no longer the news.
  for (const x of live) if (x.failed) { x.failed = false; x.emit(); }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let events = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return events;
    buf += value;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const text = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!text) continue;
      const line = JSON.parse(text);
      const x = live[line.watch];
      if (!x) continue;
      if (line.error) {
        const e = line.error;
        const st = e.status && typeof e.status === 'object' ? e.status : null;
        fail(x, new APIError(e.code, `${e.code}: ${st?.message || e.message || 'watch refused'}`, st?.reason || '', e.retryAfter || 0));
        continue;
      }
      const ev = line.event;
      if (ev.type === 'ERROR') {
        // Too old (410): listed again when the stream ends, as the API ends it.
        if (ev.object?.code === 410) { x.rv = ''; continue; }
        fail(x, new APIError(ev.object?.code || 500, ev.object?.message || 'watch error'));
        continue;
      }
      events++;
      x.delay = first;
      if (ev.object?.metadata?.resourceVersion) x.rv = ev.object.metadata.resourceVersion;
      if (ev.type === 'BOOKMARK') continue;
      if (ev.type === 'DELETED') x.items.delete(ev.object.metadata.name);
      else x.items.set(ev.object.metadata.name, ev.object);
      x.emit();
    }
  }
}

// Access answers "may I?" with SelfSubjectAccessReviews, cached per
// namespace. A server that has no access reviews (standalone Flagpole, which
// serves only flagpole.dev) answers 404: then every control is enabled and
// the API's own answer (403) is shown when it comes.
const reviews = new Map();
export async function can(namespace, verb, resource, subresource = '') {
  const key = [namespace, verb, resource, subresource].join('/');
  if (!reviews.has(key)) {
    reviews.set(key, (async () => {
      try {
        const review = await request('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SelfSubjectAccessReview',
          spec: { resourceAttributes: { namespace, verb, group: 'flagpole.dev', resource, subresource } },
        });
        return { allowed: !!review.status?.allowed, known: true };
      } catch (err) {
        return { allowed: true, known: false };
      }
    })());
  }
  return reviews.get(key);
}
