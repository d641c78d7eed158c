// The Flagpole console: flags of a namespace, a flag's detail (variants,
// rules, rollout sliders, overrides with a countdown, an evaluation tester
// with explain, history), segments. Changes of others arrive through
// watches; controls the user may not use are disabled (access reviews).
import { render } from 'preact';
import { useEffect, useState, useCallback } from 'preact/hooks';
import { takeSecret, setSecret, session, request, nsPath, watchList, can } from './api.js';

// ---- routing: #/ns/<namespace>/flags[/<name>] | #/ns/<namespace>/segments
function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (parts[0] !== 'ns' || !parts[1]) return null;
  return { namespace: parts[1], page: parts[2] || 'flags', name: parts[3] || '' };
}
const href = (ns, page, name) => `#/ns/${encodeURIComponent(ns)}/${page}${name ? '/' + encodeURIComponent(name) : ''}`;

function useRoute() {
  const [route, setRoute] = useState(parseRoute());
  useEffect(() => {
    const on = () => setRoute(parseRoute());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

// useWatch lists and watches an API path: [items, error].
function useWatch(path, query = '') {
  const [state, setState] = useState({ items: null, error: null });
  useEffect(() => {
    const ctl = new AbortController();
    setState({ items: null, error: null });
    watchList(path, query, (items) => setState({ items, error: null }), (error) => setState((s) => ({ ...s, error })), ctl.signal);
    return () => ctl.abort();
  }, [path, query]);
  return [state.items, state.error];
}

// useAccess asks the access reviews the page's controls need.
const checks = {
  patchFlags: ['patch', 'flags'],
  updateFlags: ['update', 'flags'],
  createOverrides: ['create', 'flagoverrides'],
  deleteOverrides: ['delete', 'flagoverrides'],
  evaluate: ['create', 'flags', 'evaluate'],
  rollout: ['create', 'flags', 'rollout'],
};
function useAccess(namespace) {
  const [access, setAccess] = useState(null);
  useEffect(() => {
    let live = true;
    (async () => {
      const out = {};
      for (const [k, [verb, resource, sub]] of Object.entries(checks)) out[k] = await can(namespace, verb, resource, sub);
      if (live) setAccess(out);
    })();
    return () => { live = false; };
  }, [namespace]);
  return access;
}
const denied = (a, what) => (a && !a.allowed ? `RBAC does not allow you to ${what} in this namespace` : '');

// useNow ticks every second, for countdowns.
function useNow() {
  const [now, setNow] = useState(Date.now());
  useEffect(() => { const t = setInterval(() => setNow(Date.now()), 1000); return () => clearInterval(t); }, []);
  return now;
}

function left(ms) {
  if (ms <= 0) return 'expired';
  const s = Math.floor(ms / 1000), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}

// ago says how long before now an API timestamp was: "3m ago".
function ago(ts, now = Date.now()) {
  const ms = now - Date.parse(ts);
  if (ms < 0) return 'just now';
  const s = Math.floor(ms / 1000), m = Math.floor(s / 60), h = Math.floor(m / 60), d = Math.floor(h / 24);
  return (d ? `${d}d` : h ? `${h}h` : m ? `${m}m` : `${s}s`) + ' ago';
}

// LastEvaluated: when real traffic last evaluated the flag; "—" where the
// server counts nothing (usage counting off, or a server older than usage).
function LastEvaluated({ flag }) {
  const u = flag.status?.usage;
  if (!u) return <span class="muted">—</span>;
  if (!u.lastEvaluated) return <span class="muted" title={u.countingSince ? `counted since ${u.countingSince}` : ''}>never</span>;
  return <span title={u.lastEvaluated}>{ago(u.lastEvaluated)}</span>;
}

const cond = (f, type) => (f.status?.conditions || []).find((c) => c.type === type);
const valueOf = (f, name) => { const v = (f.spec.variants || []).find((x) => x.name === name); return v ? JSON.stringify(v.value) : ''; };
const rolloutRule = (f) => (f.spec.rules || []).find((r) => r.rollout);

function Bars({ dist }) {
  const total = dist.reduce((a, d) => a + d.weight, 0) || 1;
  return (
    <span class="bars" title={dist.map((d) => `${d.variant} ${Math.round((d.weight / total) * 1000) / 10}%`).join(', ')}>
      {dist.map((d, i) => <span class={`bar c${i % 6}`} style={{ width: `${(d.weight / total) * 100}%` }} />)}
    </span>
  );
}

function Problem({ error, what }) {
  if (!error) return null;
  return <div class={`problem ${error.forbidden ? 'forbidden' : ''}`} role="alert" data-status={error.status || ''}>{what ? what + ': ' : ''}{error.message}</div>;
}

// KillSwitch flips spec.state with a merge patch (state is absolute: no
// precondition needed); the list updates from the watch.
function KillSwitch({ flag, access, onError }) {
  const enabled = flag.spec.state !== 'Disabled';
  const why = denied(access?.patchFlags, 'change flags');
  const flip = async () => {
    const next = enabled ? 'Disabled' : 'Enabled';
    const q = enabled
      ? `Disable ${flag.metadata.name}? Every evaluation will answer DISABLED${flag.spec.defaultVariant ? ` with "${flag.spec.defaultVariant}"` : ' with the code default'}.`
      : `Enable ${flag.metadata.name}? Its overrides and rules decide again.`;
    if (!confirm(q)) return;
    try {
      await request('PATCH', nsPath(flag.metadata.namespace, 'flags', flag.metadata.name), { spec: { state: next } }, 'application/merge-patch+json');
    } catch (err) { onError(err); }
  };
  return (
    <button class={`switch ${enabled ? 'on' : 'off'}`} role="switch" aria-checked={enabled} aria-label={`kill switch of ${flag.metadata.name}`}
      disabled={!!why} title={why || (enabled ? 'Enabled: click to disable (kill switch)' : 'Disabled: click to enable')} onClick={flip}>
      {enabled ? 'Enabled' : 'Disabled'}
    </button>
  );
}

function FlagsPage({ namespace }) {
  const [flags, error] = useWatch(nsPath(namespace, 'flags'));
  const access = useAccess(namespace);
  const [actionError, setActionError] = useState(null);
  return (
    <section>
      <h2>Flags in {namespace}</h2>
      {access && !access.patchFlags.known && <p class="muted note">This server answers no access reviews (standalone Flagpole): every control is enabled, and the server's answer decides.</p>}
      <Problem error={error} what="listing flags" />
      <Problem error={actionError} />
      {flags && flags.length === 0 && <p class="empty">No flags in this namespace.</p>}
      {flags && flags.length > 0 && (
        <table class="flags">
          <thead><tr><th>Name</th><th>State</th><th>Type</th><th>Default</th><th>Rollout</th><th>Rules</th><th>Last evaluated</th><th>Stale</th><th>Owner</th></tr></thead>
          <tbody>
            {flags.map((f) => {
              const ro = rolloutRule(f);
              const stale = cond(f, 'Stale');
              return (
                <tr data-flag={f.metadata.name} data-state={f.spec.state}>
                  <td><a href={href(namespace, 'flags', f.metadata.name)}>{f.metadata.name}</a><div class="muted">{f.spec.description}</div></td>
                  <td><KillSwitch flag={f} access={access} onError={setActionError} /></td>
                  <td>{f.spec.type}</td>
                  <td>{f.spec.defaultVariant ? <span><code>{f.spec.defaultVariant}</code> <span class="muted">{valueOf(f, f.spec.defaultVariant)}</span></span> : <span class="muted">code default</span>}</td>
                  <td>{ro ? <Bars dist={ro.rollout.distribution} /> : <span class="muted">—</span>}</td>
                  <td>{(f.spec.rules || []).length}</td>
                  <td class="last-evaluated"><LastEvaluated flag={f} /></td>
                  <td>{stale ? (stale.status === 'True' ? <span class="stale" title={stale.message}>stale</span> : <span class="muted" title={stale.message}>no</span>) : '—'}</td>
                  <td>{f.spec.owner || ''}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

// RolloutEditor: sliders for one rule's weights. An edit starts from the
// flag as it was then and is saved with that resourceVersion: a concurrent
// change is reported (409), never overwritten, and the sliders keep the
// user's weights to apply again on the new flag. While a save is in flight
// the sliders are held (a weight moved then would be lost when the answer
// clears the edit); once saved, the flag the API answered is what the
// sliders show and the next edit starts from until the watch delivers it,
// so the user's own save is never reported as someone else's change.
function RolloutEditor({ flag: watched, index, access }) {
  const [saved, setSaved] = useState(null); // {from: the resourceVersion the save replaced, flag: the API's answer}
  const flag = saved && watched.metadata.resourceVersion === saved.from ? saved.flag : watched;
  const rule = flag.spec.rules[index];
  const [edit, setEdit] = useState(null); // {base, weights} while editing
  const [saving, setSaving] = useState(false);
  const [status, setStatus] = useState(null);
  const why = denied(access?.updateFlags, 'change flags');
  const weights = edit ? edit.weights : rule.rollout.distribution.map((d) => d.weight);
  const total = weights.reduce((a, b) => a + b, 0);
  const changedMeanwhile = edit && edit.base.metadata.resourceVersion !== flag.metadata.resourceVersion;
  const save = async () => {
    const next = structuredClone(edit.base);
    const r = next.spec.rules[index];
    r.rollout.distribution = r.rollout.distribution.map((d, i) => ({ ...d, weight: edit.weights[i] }));
    setSaving(true);
    try {
      const answer = await request('PUT', nsPath(flag.metadata.namespace, 'flags', flag.metadata.name), next);
      setSaved({ from: edit.base.metadata.resourceVersion, flag: answer });
      setEdit(null);
      setStatus({ ok: 'Saved.' });
    } catch (err) {
      if (err.conflict) err.message = 'Not saved: the flag changed since you started (someone else changed it). Your weights are kept: "Apply to the new flag" to save them on top of that change, or "Discard".';
      setStatus({ error: err });
    } finally {
      setSaving(false);
    }
  };
  return (
    <div class="rollout" data-rule={rule.name}>
      {rule.rollout.distribution.map((d, i) => (
        <label class="slider">
          <span class="variant">{d.variant}</span>
          <input type="range" min="0" max="100" value={weights[i]} disabled={!!why || saving} title={why}
            aria-label={`weight of ${d.variant} in ${rule.name}`}
            onInput={(e) => {
              const w = [...weights];
              w[i] = Number(e.currentTarget.value);
              setEdit({ base: edit ? edit.base : flag, weights: w });
              setStatus(null);
            }} />
          <span class="pct">{total ? Math.round((weights[i] / total) * 1000) / 10 : 0}%</span>
        </label>
      ))}
      <button disabled={!!why || !edit || total === 0 || saving} title={why} onClick={save}>Save rollout</button>
      {edit && !saving && <button onClick={() => { setEdit(null); setStatus(null); }}>Discard</button>}
      {changedMeanwhile && !saving && <button onClick={() => { setEdit({ base: flag, weights: edit.weights }); setStatus(null); }}>Apply to the new flag</button>}
      {saving && <span class="muted"> Saving…</span>}
      {changedMeanwhile && !status && !saving && <span class="muted"> The flag changed since you started editing.</span>}
      {status?.ok && <span class="ok">{status.ok}</span>}
      <Problem error={status?.error} />
    </div>
  );
}

// Plan: where a rule's rollout plan is, its steps, and the actions
// (flags/rollout), each enabled where the plan's phase allows it and RBAC
// lets the user create flags/rollout. The API's refusal (409) is shown.
const planActions = [
  ['Pause', ['Progressing', 'Waiting']],
  ['Resume', ['Paused']],
  ['Approve', ['Waiting']],
  ['Promote', ['Progressing', 'Waiting', 'Paused']],
  ['Abort', ['Progressing', 'Waiting', 'Paused', 'Completed']],
];
function Plan({ flag, rule, access }) {
  const now = useNow();
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const plan = rule.rollout.plan;
  const st = (flag.status?.rollouts || []).find((s) => s.rule === rule.name);
  const why = denied(access?.rollout, 'move rollout plans (create flags/rollout)');
  const act = async (action) => {
    if ((action === 'Abort' || action === 'Promote') && !confirm(`${action} the plan of rule ${rule.name}?` + (action === 'Abort' ? ` Everyone goes back to the distribution at once.` : ' Its current step ends now.'))) return;
    setBusy(true);
    try {
      await request('POST', nsPath(flag.metadata.namespace, 'flags', flag.metadata.name) + '/rollout',
        { apiVersion: 'flagpole.dev/v1beta1', kind: 'RolloutAction', rule: rule.name, action });
      setError(null);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const ends = (step, j) => {
    const current = st && st.step === j;
    if (step.approval) return current && st.phase === 'Waiting' ? 'waiting for approval' : 'on approval';
    if (step.duration && current && st.nextStepAt) { const ms = Date.parse(st.nextStepAt) - now; return `after ${step.duration} (${ms > 0 ? left(ms) + ' left' : 'ending now'})`; }
    if (step.duration && current && st.remaining) return `after ${step.duration} (${st.remaining} left, paused)`;
    if (step.duration) return `after ${step.duration}`;
    return 'completes the plan';
  };
  return (
    <div class="plan" data-rule={rule.name} data-phase={st?.phase || 'NotStarted'}>
      <div>
        plan: rolls <code>{plan.variant}</code> out —{' '}
        {st ? <strong class="phase">{st.phase}, step {st.step + 1} of {plan.steps.length}, {st.weight}% on {plan.variant}</strong> : <span class="muted">not started yet</span>}
      </div>
      {st?.message && <div class="muted message">{st.message}</div>}
      <table class="steps">
        <thead><tr><th></th><th>Step</th><th>Weight</th><th>Ends</th><th>Guard</th></tr></thead>
        <tbody>
          {plan.steps.map((step, j) => (
            <tr data-step={j + 1} class={st && st.step === j && st.phase !== 'Aborted' ? 'current' : ''}>
              <td>{st && st.step === j && st.phase !== 'Aborted' ? '▶' : ''}</td>
              <td>{j + 1}</td><td>{step.weight}%</td><td>{ends(step, j)}</td>
              <td>{step.guard ? <code title={step.guard.query}>{step.guard.abortAbove ? `> ${step.guard.abortAbove}` : ''}{step.guard.abortBelow ? ` < ${step.guard.abortBelow}` : ''}</code> : '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {planActions.map(([action, phases]) => (
        <button disabled={!!why || busy || !st || !phases.includes(st.phase)} title={why} onClick={() => act(action)}>{action}</button>
      ))}
      <Problem error={error} />
    </div>
  );
}

function DefaultEditor({ flag, access }) {
  const [error, setError] = useState(null);
  const why = denied(access?.patchFlags, 'change flags');
  const set = async (v) => {
    try {
      await request('PATCH', nsPath(flag.metadata.namespace, 'flags', flag.metadata.name),
        { metadata: { resourceVersion: flag.metadata.resourceVersion }, spec: { defaultVariant: v } }, 'application/merge-patch+json');
      setError(null);
    } catch (err) {
      setError(err.conflict ? Object.assign(err, { message: 'Not saved: the flag changed meanwhile; look again and choose again.' }) : err);
    }
  };
  return (
    <span>
      <select aria-label="default variant" disabled={!!why} title={why} value={flag.spec.defaultVariant || ''} onChange={(e) => set(e.currentTarget.value)}>
        {!flag.spec.defaultVariant && <option value="">(code default)</option>}
        {flag.spec.variants.map((v) => <option value={v.name}>{v.name}</option>)}
      </select>
      <Problem error={error} />
    </span>
  );
}

function Overrides({ flag, access }) {
  const ns = flag.metadata.namespace;
  const [items, error] = useWatch(nsPath(ns, 'flagoverrides'), `fieldSelector=${encodeURIComponent('spec.flag=' + flag.metadata.name)}`);
  const now = useNow();
  const [form, setForm] = useState({ variant: flag.spec.variants[0]?.name, keys: '', ttl: '30m' });
  const [actionError, setActionError] = useState(null);
  const whyCreate = denied(access?.createOverrides, 'create overrides');
  const whyDelete = denied(access?.deleteOverrides, 'delete overrides');
  const create = async (e) => {
    e.preventDefault();
    const keys = form.keys.split(',').map((k) => k.trim()).filter(Boolean);
    try {
      await request('POST', nsPath(ns, 'flagoverrides'), {
        apiVersion: 'flagpole.dev/v1beta1', kind: 'FlagOverride',
        metadata: { generateName: flag.metadata.name + '-' },
        spec: { flag: flag.metadata.name, variant: form.variant, ttl: form.ttl, ...(keys.length ? { targetingKeys: keys } : {}) },
      });
      setActionError(null);
    } catch (err) { setActionError(err); }
  };
  const remove = async (name) => {
    try { await request('DELETE', nsPath(ns, 'flagoverrides', name)); } catch (err) { setActionError(err); }
  };
  return (
    <section class="overrides">
      <h3>Overrides</h3>
      <Problem error={error} what="listing overrides" />
      {items && items.length === 0 && <p class="muted">None.</p>}
      {items && items.length > 0 && (
        <table>
          <thead><tr><th>Name</th><th>Variant</th><th>For</th><th>Time left</th><th /></tr></thead>
          <tbody>
            {items.map((o) => (
              <tr data-override={o.metadata.name}>
                <td>{o.metadata.name}</td><td><code>{o.spec.variant}</code></td>
                <td>{(o.spec.targetingKeys || []).join(', ') || 'everyone'}</td>
                <td class="countdown">{o.status?.expiresAt ? left(Date.parse(o.status.expiresAt) - now) : '—'}</td>
                <td><button disabled={!!whyDelete} title={whyDelete} onClick={() => remove(o.metadata.name)}>Delete</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form onSubmit={create} class="inline">
        <select aria-label="override variant" value={form.variant} onChange={(e) => setForm({ ...form, variant: e.currentTarget.value })} disabled={!!whyCreate}>
          {flag.spec.variants.map((v) => <option value={v.name}>{v.name}</option>)}
        </select>
        <input aria-label="targeting keys" placeholder="targeting keys, comma-separated (empty: everyone)" value={form.keys} onInput={(e) => setForm({ ...form, keys: e.currentTarget.value })} disabled={!!whyCreate} />
        <input aria-label="ttl" size="5" value={form.ttl} onInput={(e) => setForm({ ...form, ttl: e.currentTarget.value })} disabled={!!whyCreate} />
        <button type="submit" disabled={!!whyCreate} title={whyCreate}>Add override</button>
      </form>
      <Problem error={actionError} />
    </section>
  );
}

function Tester({ flag, access }) {
  const [ctx, setCtx] = useState('{\n  "targetingKey": "user-1"\n}');
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const why = denied(access?.evaluate, 'evaluate flags');
  const run = async (e) => {
    e.preventDefault();
    let context;
    try { context = JSON.parse(ctx); } catch (err) { setError(new Error('The context is not JSON: ' + err.message)); return; }
    try {
      setResult(await request('POST', nsPath(flag.metadata.namespace, 'flags', flag.metadata.name) + '/evaluate',
        { apiVersion: 'flagpole.dev/v1beta1', kind: 'EvaluationRequest', context, explain: true }));
      setError(null);
    } catch (err) { setError(err); setResult(null); }
  };
  const ex = result?.explanation;
  return (
    <section class="tester">
      <h3>Evaluate</h3>
      <form onSubmit={run}>
        <textarea aria-label="evaluation context" rows="5" value={ctx} onInput={(e) => setCtx(e.currentTarget.value)} />
        <button type="submit" disabled={!!why} title={why}>Evaluate with explanation</button>
      </form>
      <Problem error={error} />
      {result && (
        <div class="answer" data-reason={result.reason}>
          <p><strong>{result.value !== undefined ? JSON.stringify(result.value) : '(code default)'}</strong> — variant <code>{result.variant || '—'}</code>, reason <code>{result.reason}</code>{result.errorCode ? <span> <code>{result.errorCode}</code>: {result.errorMessage}</span> : ''}</p>
          {ex && <p>Decided by: <strong>{ex.decision}</strong>{result.metadata?.rule ? ` (rule ${result.metadata.rule})` : ''}{result.metadata?.override ? ` (override ${result.metadata.override})` : ''}</p>}
          {ex?.rules?.length > 0 && (
            <table class="explain">
              <thead><tr><th>#</th><th>Rule</th><th>Outcome</th><th>Segment</th><th>Why</th></tr></thead>
              <tbody>{ex.rules.map((r, i) => <tr data-outcome={r.outcome}><td>{i + 1}</td><td>{r.name}</td><td>{r.outcome}</td><td>{r.segment || ''}</td><td>{r.message || ''}</td></tr>)}</tbody>
            </table>
          )}
        </div>
      )}
    </section>
  );
}

// History: the flag's FlagRevisions (kept by the server, newest first),
// each with the server's diff from the one before, and a rollback: one
// JSON patch giving the flag that revision's spec, preconditioned on the
// resourceVersion shown, so a concurrent change is reported (409), never
// overwritten.
function History({ flag, access }) {
  const ns = flag.metadata.namespace, name = flag.metadata.name;
  const [revs, error] = useWatch(nsPath(ns, 'flagrevisions'), `fieldSelector=${encodeURIComponent('flag.name=' + name)}`);
  const [actionError, setActionError] = useState(null);
  const [done, setDone] = useState('');
  const why = denied(access?.patchFlags, 'change flags');
  const current = JSON.stringify(flag.spec);
  const rollback = async (rev) => {
    const n = rev.change.generation;
    if (!confirm(`Roll ${name} back to revision ${n}? Its spec becomes that of generation ${n} (a new generation, recorded as a change).`)) return;
    setActionError(null); setDone('');
    try {
      const out = await request('PATCH', nsPath(ns, 'flags', name), [
        { op: 'replace', path: '/metadata/resourceVersion', value: flag.metadata.resourceVersion },
        { op: 'replace', path: '/spec', value: rev.spec },
      ], 'application/json-patch+json');
      setDone(`Rolled back to revision ${n}: now generation ${out.metadata.generation}.`);
    } catch (err) {
      if (err.conflict) err.message = `${name} changed since this page showed it (409): nothing was rolled back; look at the new revision first.`;
      setActionError(err);
    }
  };
  let body;
  if (error?.notFound && !revs) body = <p class="muted">This server keeps no revisions of flags: see your GitOps history or the audit log.</p>;
  else if (error && !revs) body = <Problem error={error} what="reading the history" />;
  else if (!revs) body = <p class="muted">Loading…</p>;
  else if (revs.length === 0) body = <p class="muted">No revisions kept.</p>;
  else {
    const sorted = [...revs].sort((x, y) => y.change.generation - x.change.generation);
    body = (
      <table class="revisions">
        <thead><tr><th>Revision</th><th>When</th><th>Who</th><th>Change</th><th /></tr></thead>
        <tbody>{sorted.map((r) => {
          const same = JSON.stringify(r.spec) === current;
          return (
            <tr data-revision={r.change.generation}>
              <td>{r.change.generation}</td>
              <td title={r.change.time}>{ago(r.change.time)}</td>
              <td>{r.change.user || <span class="muted">unknown</span>}</td>
              <td>{(r.diff || []).length === 0 ? <span class="muted">created</span> : <ul class="diff">{r.diff.map((d) => <li><code>{d}</code></li>)}</ul>}</td>
              <td><button disabled={!!why || same} title={why || (same ? 'the flag has this spec now' : `give ${name} the spec of revision ${r.change.generation}`)} onClick={() => rollback(r)}>Roll back</button></td>
            </tr>
          );
        })}</tbody>
      </table>
    );
  }
  return (
    <section class="history">
      <h3>History</h3>
      <Problem error={actionError} />
      {done && <p class="done" role="status">{done}</p>}
      {body}
    </section>
  );
}

// Usage: what real traffic did with the flag (status.usage).
function Usage({ flag }) {
  const u = flag.status?.usage;
  if (!u) return null;
  return (
    <>
      <dt>Last evaluated</dt><dd><LastEvaluated flag={flag} />{u.countingSince && <span class="muted"> (counted since {u.countingSince})</span>}</dd>
      {(u.windows || []).map((w) => (
        <><dt>Last {w.window}</dt><dd class="usage-window" data-window={w.window}>{w.evaluations} evaluations{w.errors ? `, ${w.errors} errors` : ''}{(w.variants || []).length > 0 && <span class="muted"> ({w.variants.map((v) => `${v.name} ${v.count}`).join(', ')})</span>}</dd></>
      ))}
    </>
  );
}

function FlagPage({ namespace, name }) {
  const [flags, error] = useWatch(nsPath(namespace, 'flags'), `fieldSelector=${encodeURIComponent('metadata.name=' + name)}`);
  const access = useAccess(namespace);
  const [actionError, setActionError] = useState(null);
  const flag = flags?.[0];
  if (error && !flag) return <Problem error={error} what={`reading flag ${name}`} />;
  if (!flags) return <p class="muted">Loading…</p>;
  if (!flag) return <p class="empty">No flag {name} in {namespace}. <a href={href(namespace, 'flags')}>All flags</a></p>;
  return (
    <section class="flag" data-flag={flag.metadata.name} data-rv={flag.metadata.resourceVersion}>
      <p><a href={href(namespace, 'flags')}>← Flags</a></p>
      <h2>{flag.metadata.name} <KillSwitch flag={flag} access={access} onError={setActionError} /></h2>
      <Problem error={actionError} />
      {flag.spec.description && <p>{flag.spec.description}</p>}
      <dl>
        <dt>Type</dt><dd>{flag.spec.type}</dd>
        <dt>Default</dt><dd><DefaultEditor flag={flag} access={access} /></dd>
        {flag.spec.owner && <><dt>Owner</dt><dd>{flag.spec.owner}</dd></>}
        {flag.spec.expiresAt && <><dt>Expires</dt><dd>{flag.spec.expiresAt}</dd></>}
        {flag.spec.lifecycle && <><dt>Lifecycle</dt><dd>{flag.spec.lifecycle.kind}</dd></>}
        <dt>Revision</dt><dd>generation {flag.metadata.generation}, resourceVersion {flag.metadata.resourceVersion}</dd>
        {flag.status?.lastChange && <><dt>Changed</dt><dd>{ago(flag.status.lastChange.time)} by {flag.status.lastChange.user || 'unknown'}</dd></>}
        <Usage flag={flag} />
        {(flag.status?.conditions || []).map((c) => <><dt>{c.type}</dt><dd>{c.status} <span class="muted">{c.reason}: {c.message}</span></dd></>)}
      </dl>
      <h3>Variants</h3>
      <table><tbody>{flag.spec.variants.map((v) => <tr><td><code>{v.name}</code></td><td><code>{JSON.stringify(v.value)}</code></td></tr>)}</tbody></table>
      <h3>Rules</h3>
      {(flag.spec.rules || []).length === 0 && <p class="muted">None: every evaluation serves the default (STATIC).</p>}
      <ol class="rules">
        {(flag.spec.rules || []).map((r, i) => (
          <li data-rule={r.name}>
            <strong>{r.name}</strong>
            {(r.segments || []).map((s) => <span> segment <a href={href(namespace, 'segments') + '?' + encodeURIComponent(s)}>{s}</a></span>)}
            {r.when && <div>when <code>{r.when}</code></div>}
            {r.variant && <div>serve <code>{r.variant}</code></div>}
            {r.rollout?.plan && <Plan flag={flag} rule={r} access={access} key={'plan-' + r.name} />}
            {r.rollout?.plan && <div class="muted">distribution before the plan, and after an abort:</div>}
            {r.rollout && <RolloutEditor flag={flag} index={i} access={access} key={r.name} />}
          </li>
        ))}
      </ol>
      <Overrides flag={flag} access={access} />
      <Tester flag={flag} access={access} />
      <History flag={flag} access={access} />
    </section>
  );
}

function SegmentsPage({ namespace }) {
  const [segments, error] = useWatch(nsPath(namespace, 'segments'));
  const [flags] = useWatch(nsPath(namespace, 'flags'));
  const usedBy = (name) => (flags || []).filter((f) => (f.spec.rules || []).some((r) => (r.segments || []).includes(name))).map((f) => f.metadata.name);
  return (
    <section>
      <h2>Segments in {namespace}</h2>
      <Problem error={error} what="listing segments" />
      {segments && segments.length === 0 && <p class="empty">No segments in this namespace.</p>}
      {segments && segments.length > 0 && (
        <table>
          <thead><tr><th>Name</th><th>When</th><th>Include</th><th>Exclude</th><th>Used by</th></tr></thead>
          <tbody>
            {segments.map((s) => (
              <tr data-segment={s.metadata.name}>
                <td>{s.metadata.name}<div class="muted">{s.spec.description}</div></td>
                <td>{s.spec.when ? <code>{s.spec.when}</code> : ''}</td>
                <td>{(s.spec.include || []).join(', ')}</td>
                <td>{(s.spec.exclude || []).join(', ')}</td>
                <td>{usedBy(s.metadata.name).map((n) => <a href={href(namespace, 'flags', n)}>{n} </a>)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function App({ info }) {
  const route = useRoute();
  const [nsInput, setNsInput] = useState(route?.namespace || info.namespace);
  const go = useCallback((e) => { e.preventDefault(); location.hash = href(nsInput.trim() || info.namespace, 'flags'); }, [nsInput]);
  useEffect(() => { if (!route) location.replace(href(info.namespace, 'flags')); }, [route]);
  if (!route) return null;
  return (
    <>
      <header>
        <h1>Flagpole</h1>
        <nav>
          <a class={route.page === 'flags' ? 'active' : ''} href={href(route.namespace, 'flags')}>Flags</a>
          <a class={route.page === 'segments' ? 'active' : ''} href={href(route.namespace, 'segments')}>Segments</a>
        </nav>
        <form onSubmit={go} class="ns">
          <label>namespace <input aria-label="namespace" value={nsInput} onInput={(e) => setNsInput(e.currentTarget.value)} /></label>
        </form>
        <span class="who" title={info.server}>{info.context || info.server}</span>
      </header>
      <main>
        {route.page === 'segments' && <SegmentsPage namespace={route.namespace} />}
        {route.page === 'flags' && !route.name && <FlagsPage namespace={route.namespace} key={route.namespace} />}
        {route.page === 'flags' && route.name && <FlagPage namespace={route.namespace} name={route.name} key={route.namespace + '/' + route.name} />}
      </main>
    </>
  );
}

async function start() {
  const root = document.getElementById('app');
  root.textContent = '';
  const secret = takeSecret();
  if (!secret) {
    render(<p class="problem">Open the console with the URL <code>kubectl flagpole console</code> printed: it carries this run's secret.</p>, root);
    return;
  }
  setSecret(secret);
  try {
    render(<App info={await session()} />, root);
  } catch (err) {
    render(<p class="problem">{err.message}</p>, root);
  }
}
start();
