package usage

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// DefaultMaxFlags bounds how many flags one Counter counts at a time; the
// evaluations of further flags are not counted (and logged once). A flag's
// entry is removed when the flag is deleted.
const DefaultMaxFlags = 50_000

// Counter counts evaluations per flag with atomic counters: an evaluation
// costs a map lookup that takes no lock, an add per counter it touches and,
// at most once a second per flag, a store of the time. Flush turns what was
// counted since the last flush into time buckets. Safe for concurrent use;
// Flush and the methods that follow it (Commit, Restart) are called by one
// goroutine at a time.
type Counter struct {
	clock    clock.PassiveClock
	since    time.Time
	maxFlags int

	entries    sync.Map // types.UID → *entry
	size       atomic.Int64
	overflowed atomic.Bool

	// flushMu orders Flush, Commit, Restart and live reads of flushed state.
	flushMu sync.Mutex
}

// NewCounter returns a counter that began counting now.
func NewCounter(c clock.PassiveClock, maxFlags int) *Counter {
	return &Counter{clock: c, since: c.Now(), maxFlags: maxFlags}
}

// Since is when the counter began counting.
func (c *Counter) Since() time.Time { return c.since }

// entry is one flag's counters. The atomics are cumulative since the entry
// was made; flushed is their value at the last Flush, pending what Flush
// bucketed and no write has stored yet, committed what the last stored
// record held.
type entry struct {
	uid             types.UID
	namespace, name string

	first, last atomic.Int64 // Unix seconds; 0: never
	reasons     [reasonSlots]atomic.Uint64
	none        variantCounter
	variants    atomic.Pointer[[]*variantCounter] // copy on write
	growMu      sync.Mutex

	ruleErrors    atomic.Uint64
	lastRuleError atomic.Pointer[RuleError]

	// Guarded by Counter.flushMu.
	flushed   snapshot
	pending   *FlagRecord
	committed *FlagRecord
	ruleSeen  uint64
}

type variantCounter struct {
	name  string
	count atomic.Uint64
	last  atomic.Int64
}

// snapshot is an entry's cumulative counts at one time: variants in the
// order of the entry's (append-only) list of variants.
type snapshot struct {
	reasons  [reasonSlots]uint64
	none     uint64
	variants []uint64
}

// RuleError is the last runtime error a flag's rule gave.
type RuleError struct {
	Rule    string
	Message string
	At      time.Time
}

// touch stores t (Unix seconds) in a when it is later: at most one store a
// second, so that every evaluation of a busy flag does not write the same
// cache line.
func touch(a *atomic.Int64, t int64) {
	if a.Load() < t {
		a.Store(t)
	}
}

func (c *Counter) entry(uid types.UID, namespace, name string) *entry {
	if e, ok := c.entries.Load(uid); ok {
		return e.(*entry)
	}
	if c.size.Load() >= int64(c.maxFlags) {
		if !c.overflowed.Swap(true) {
			klog.InfoS("Usage counting is at its limit of flags: further flags' evaluations are not counted", "limit", c.maxFlags)
		}
		return nil
	}
	e := &entry{uid: uid, namespace: namespace, name: name}
	e.variants.Store(&[]*variantCounter{})
	actual, loaded := c.entries.LoadOrStore(uid, e)
	if !loaded {
		c.size.Add(1)
	}
	return actual.(*entry)
}

// variant returns the counter of a variant, adding it the first time.
func (e *entry) variant(name string) *variantCounter {
	if name == "" {
		return &e.none
	}
	for _, v := range *e.variants.Load() {
		if v.name == name {
			return v
		}
	}
	e.growMu.Lock()
	defer e.growMu.Unlock()
	current := *e.variants.Load()
	for _, v := range current {
		if v.name == name {
			return v
		}
	}
	// A flag has at most 100 variants; renames over time could add more,
	// and every name ever served stays until the flag is deleted, so the
	// list is bounded by what was served, not by what clients send.
	v := &variantCounter{name: name}
	grown := append(slices.Clip(current), v)
	e.variants.Store(&grown)
	return v
}

// Evaluated counts one evaluation of flag f at time at.
func (c *Counter) Evaluated(f *v1beta1.Flag, res *v1beta1.FlagEvaluation, at time.Time) {
	e := c.entry(f.UID, f.Namespace, f.Name)
	if e == nil {
		return
	}
	sec := at.Unix()
	if e.first.Load() == 0 {
		e.first.CompareAndSwap(0, sec)
	}
	touch(&e.last, sec)
	e.reasons[reasonIndex(res.Reason)].Add(1)
	v := e.variant(res.Variant)
	v.count.Add(1)
	touch(&v.last, sec)
	// A rule whose expression fails at run time (not a caller's missing
	// targeting key or wrong type) is worth an Event.
	if res.ErrorCode == "GENERAL" && res.Metadata.Rule != "" {
		e.ruleErrors.Add(1)
		if last := e.lastRuleError.Load(); last == nil || at.Sub(last.At) >= time.Second {
			e.lastRuleError.Store(&RuleError{Rule: res.Metadata.Rule, Message: res.ErrorMessage, At: at})
		}
	}
}

// Add counts reported evaluations of a flag as made at time at: reasons and
// variants by count. The caller has checked the report.
func (c *Counter) Add(uid types.UID, namespace, name string, reasons []flagpole.ReasonCount, variants []flagpole.VariantCount, at time.Time) {
	e := c.entry(uid, namespace, name)
	if e == nil {
		return
	}
	sec := at.Unix()
	if e.first.Load() == 0 {
		e.first.CompareAndSwap(0, sec)
	}
	touch(&e.last, sec)
	var served int64
	for _, r := range reasons {
		e.reasons[reasonIndex(r.Reason)].Add(uint64(r.Count))
		served += r.Count
	}
	for _, vc := range variants {
		v := e.variant(vc.Name)
		v.count.Add(uint64(vc.Count))
		touch(&v.last, sec)
		served -= vc.Count
	}
	if served > 0 {
		e.none.count.Add(uint64(served))
		touch(&e.none.last, sec)
	}
}

// Forget removes a deleted flag's entry.
func (c *Counter) Forget(uid types.UID) {
	if _, loaded := c.entries.LoadAndDelete(uid); loaded {
		c.size.Add(-1)
	}
}

// Len is how many flags are counted.
func (c *Counter) Len() int { return int(c.size.Load()) }

func (e *entry) snapshot() snapshot {
	s := snapshot{none: e.none.count.Load()}
	for i := range e.reasons {
		s.reasons[i] = e.reasons[i].Load()
	}
	variants := *e.variants.Load()
	s.variants = make([]uint64, len(variants))
	for i, v := range variants {
		s.variants[i] = v.count.Load()
	}
	return s
}

// since is what was counted between o and s, the entry's variants named
// from its list.
func (s snapshot) since(o snapshot, variants []*variantCounter) Counts {
	var c Counts
	for i, n := range s.reasons {
		c.Reasons[i] = n - o.reasons[i]
	}
	if s.none > o.none {
		c.Variants = append(c.Variants, VariantN{Name: "", N: s.none - o.none})
	}
	for i, n := range s.variants {
		var before uint64
		if i < len(o.variants) {
			before = o.variants[i]
		}
		if n > before {
			c.Variants = append(c.Variants, VariantN{Name: variants[i].name, N: n - before})
		}
	}
	return c
}

// times returns the entry's first, last and per-variant served times.
func (e *entry) times(r *FlagRecord) {
	r.First, r.Last = e.first.Load(), e.last.Load()
	set := func(name string, t int64) {
		if t == 0 {
			return
		}
		if r.Served == nil {
			r.Served = map[string]int64{}
		}
		r.Served[name] = max(r.Served[name], t)
	}
	set("", e.none.last.Load())
	for _, v := range *e.variants.Load() {
		set(v.name, v.last.Load())
	}
}

// bucketAll adds counts to the bucket of now in every window.
func (r *FlagRecord) bucketAll(c *Counts, now time.Time) {
	for w, window := range Windows {
		r.addToBucket(w, window.bucketIndex(now), c)
	}
}

// Flush buckets what was counted since the last Flush at now, and returns
// the record to store: what was last stored plus every flush since. Until
// Commit (the record was stored) or Restart, the next Flush includes these
// counts again. Entries of flags that keep (when not nil) says are gone are
// forgotten: an evaluation racing a flag's deletion cannot leave one behind.
func (c *Counter) Flush(replica string, keep func(namespace, name string, uid types.UID) bool) *Record {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	now := c.clock.Now()
	rec := &Record{Version: RecordVersion, Replica: replica, Since: c.since.Unix(), Written: now.Unix()}
	c.entries.Range(func(_, v any) bool {
		e := v.(*entry)
		if keep != nil && !keep(e.namespace, e.name, e.uid) {
			c.Forget(e.uid)
			return true
		}
		cur := e.snapshot()
		delta := cur.since(e.flushed, *e.variants.Load())
		e.flushed = cur
		if !delta.empty() {
			if e.pending == nil {
				e.pending = &FlagRecord{}
			}
			e.pending.bucketAll(&delta, now)
		}
		fr := FlagRecord{UID: e.uid, Namespace: e.namespace, Name: e.name}
		e.times(&fr)
		if e.committed != nil {
			fr.Merge(e.committed)
		}
		if e.pending != nil {
			fr.Merge(e.pending)
		}
		fr.Prune(now)
		if fr.Last != 0 {
			rec.Flags = append(rec.Flags, fr)
		}
		return true
	})
	slices.SortFunc(rec.Flags, func(a, b FlagRecord) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	return rec
}

// Commit records that rec, built from the last Flush's record, was stored:
// its counts are what the next Flush starts from. Counts the stored record
// lacks (EncodeWithin trimmed them) are given up.
func (c *Counter) Commit(rec *Record) {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	stored := make(map[types.UID]*FlagRecord, len(rec.Flags))
	for i := range rec.Flags {
		stored[rec.Flags[i].UID] = &rec.Flags[i]
	}
	c.entries.Range(func(_, v any) bool {
		e := v.(*entry)
		e.committed, e.pending = nil, nil
		if fr, ok := stored[e.uid]; ok {
			e.committed = &FlagRecord{UID: e.uid, Namespace: e.namespace, Name: e.name, Buckets: fr.Buckets}
		}
		return true
	})
}

// Restart forgets what was stored: the stored record is gone (the leader
// moved it to the archive after this replica stopped writing for a while),
// so only what was never stored is this replica's to write again.
func (c *Counter) Restart() {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	c.entries.Range(func(_, v any) bool {
		v.(*entry).committed = nil
		return true
	})
}

// LastEvaluated is when this replica last counted an evaluation of the
// flag, Unix seconds; 0: never.
func (c *Counter) LastEvaluated(uid types.UID) int64 {
	if v, ok := c.entries.Load(uid); ok {
		return v.(*entry).last.Load()
	}
	return 0
}

// Times returns this replica's first, last and per-variant served times of
// a flag, without counts; nil when it has counted nothing of it.
func (c *Counter) Times(uid types.UID) *FlagRecord {
	v, ok := c.entries.Load(uid)
	if !ok {
		return nil
	}
	e := v.(*entry)
	fr := &FlagRecord{UID: e.uid, Namespace: e.namespace, Name: e.name}
	e.times(fr)
	return fr
}

// Sent forgets every count flushed so far: a provider sent them to the
// server (or gave them up), and the next Flush has only what follows.
func (c *Counter) Sent() {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	c.entries.Range(func(_, v any) bool {
		e := v.(*entry)
		e.committed, e.pending = nil, nil
		return true
	})
}

// Live returns this replica's record of one flag as of now, what was not
// flushed yet included; nil when it has counted nothing of it.
func (c *Counter) Live(uid types.UID) *FlagRecord {
	v, ok := c.entries.Load(uid)
	if !ok {
		return nil
	}
	e := v.(*entry)
	now := c.clock.Now()
	fr := &FlagRecord{UID: e.uid, Namespace: e.namespace, Name: e.name}
	e.times(fr)
	if fr.Last == 0 {
		return nil
	}
	c.flushMu.Lock()
	delta := e.snapshot().since(e.flushed, *e.variants.Load())
	if e.committed != nil {
		fr.Merge(e.committed)
	}
	if e.pending != nil {
		fr.Merge(e.pending)
	}
	c.flushMu.Unlock()
	fr.bucketAll(&delta, now)
	fr.Prune(now)
	return fr
}

// RuleErrors calls fn for every flag whose rules failed at run time since
// the last call, with how often and the last error.
func (c *Counter) RuleErrors(fn func(namespace, name string, uid types.UID, count uint64, last RuleError)) {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	c.entries.Range(func(_, v any) bool {
		e := v.(*entry)
		n := e.ruleErrors.Load()
		if n > e.ruleSeen {
			if last := e.lastRuleError.Load(); last != nil {
				fn(e.namespace, e.name, e.uid, n-e.ruleSeen, *last)
			}
			e.ruleSeen = n
		}
		return true
	})
}
