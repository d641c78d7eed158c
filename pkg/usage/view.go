package usage

import (
	"slices"
	"sort"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
)

// View merges the stored records of the other replicas (and the archive)
// with this replica's live counts: what every read of a flag's usage sees.
// The merge of the stored records is made when one of them changes (once a
// flush interval per replica), so a read adds only this replica's live
// counts. Safe for concurrent use.
type View struct {
	counter *Counter

	mu      sync.RWMutex
	records map[string]*Record
	merged  map[types.UID]*FlagRecord
	since   int64
	subs    []func()
}

// NewView returns a view of counter's counts (which may be nil) and of the
// records given to SetRecord.
func NewView(counter *Counter) *View {
	v := &View{counter: counter, records: map[string]*Record{}, merged: map[types.UID]*FlagRecord{}}
	if counter != nil {
		v.since = counter.Since().Unix()
	}
	return v
}

// OnChange calls fn after every change of the stored records.
func (v *View) OnChange(fn func()) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.subs = append(v.subs, fn)
}

// SetRecord replaces (or adds) the stored record under key.
func (v *View) SetRecord(key string, r *Record) {
	v.mu.Lock()
	v.records[key] = r
	subs := v.remerge()
	v.mu.Unlock()
	for _, fn := range subs {
		fn()
	}
}

// DeleteRecord removes the stored record under key.
func (v *View) DeleteRecord(key string) {
	v.mu.Lock()
	delete(v.records, key)
	subs := v.remerge()
	v.mu.Unlock()
	for _, fn := range subs {
		fn()
	}
}

// Records returns the stored records by key, for the archive's fold.
func (v *View) Records() map[string]*Record {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make(map[string]*Record, len(v.records))
	for k, r := range v.records {
		out[k] = r
	}
	return out
}

func (v *View) remerge() []func() {
	merged := map[types.UID]*FlagRecord{}
	var since int64
	if v.counter != nil {
		since = v.counter.Since().Unix()
	}
	for _, r := range v.records {
		if r.Since != 0 && (since == 0 || r.Since < since) {
			since = r.Since
		}
		for i := range r.Flags {
			fr := &r.Flags[i]
			if m, ok := merged[fr.UID]; ok {
				m.Merge(fr)
			} else {
				merged[fr.UID] = fr.clone()
			}
		}
	}
	v.merged, v.since = merged, since
	return slices.Clone(v.subs)
}

// CountingSince is when the first of the replicas whose counts are kept
// began counting: no evaluation before it is known.
func (v *View) CountingSince() time.Time {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.since == 0 {
		return time.Time{}
	}
	return time.Unix(v.since, 0).UTC()
}

// Flag returns the merged record of a flag: every replica's and this one's
// live counts. Nil: never evaluated (since CountingSince).
func (v *View) Flag(uid types.UID) *FlagRecord {
	var live *FlagRecord
	if v.counter != nil {
		live = v.counter.Live(uid)
	}
	v.mu.RLock()
	stored := v.merged[uid]
	v.mu.RUnlock()
	switch {
	case stored == nil:
		return live
	case live == nil:
		return stored.clone()
	}
	out := stored.clone()
	out.Merge(live)
	return out
}

// LastEvaluated is when the flag was last evaluated, by any replica; zero:
// never since CountingSince. It merges no buckets: tables ask it per row.
func (v *View) LastEvaluated(uid types.UID) time.Time {
	var last int64
	if v.counter != nil {
		last = v.counter.LastEvaluated(uid)
	}
	v.mu.RLock()
	if r, ok := v.merged[uid]; ok {
		last = max(last, r.Last)
	}
	v.mu.RUnlock()
	if last == 0 {
		return time.Time{}
	}
	return time.Unix(last, 0).UTC()
}

// Times returns the flag's merged record without its window counts: when
// it was first and last evaluated, and each variant last served. Nil:
// never evaluated.
func (v *View) Times(uid types.UID) *FlagRecord {
	var out *FlagRecord
	merge := func(r *FlagRecord) {
		if r == nil || r.Last == 0 {
			return
		}
		if out == nil {
			out = &FlagRecord{UID: r.UID, Namespace: r.Namespace, Name: r.Name}
		}
		out.Merge(&FlagRecord{First: r.First, Last: r.Last, Served: r.Served})
	}
	if v.counter != nil {
		merge(v.counter.Times(uid))
	}
	v.mu.RLock()
	merge(v.merged[uid])
	v.mu.RUnlock()
	return out
}

// Usage is the flag's usage as the API shows it, at now.
func (v *View) Usage(uid types.UID, now time.Time) *flagpole.FlagUsage {
	return ToAPI(v.Flag(uid), v.CountingSince(), now)
}

// ToAPI turns a merged record into the API's usage at now. A nil record is
// a flag never evaluated since countingSince.
func ToAPI(r *FlagRecord, countingSince, now time.Time) *flagpole.FlagUsage {
	u := &flagpole.FlagUsage{}
	if !countingSince.IsZero() {
		u.CountingSince = timePtr(countingSince)
	}
	if r == nil || r.Last == 0 {
		return u
	}
	u.LastEvaluated = unixPtr(r.Last)
	if r.First != 0 {
		u.FirstEvaluated = unixPtr(r.First)
	}
	for name, t := range r.Served {
		if name != "" {
			u.Variants = append(u.Variants, flagpole.VariantUsage{Name: name, LastServed: *unixPtr(t)})
		}
	}
	sort.Slice(u.Variants, func(i, j int) bool { return u.Variants[i].Name < u.Variants[j].Name })
	for w, window := range Windows {
		first := window.firstKept(now)
		var sum Counts
		for _, b := range r.Buckets[w] {
			if b.Index >= first {
				sum.Add(&b.Counts)
			}
		}
		since := window.bucketStart(first)
		if since.Before(countingSince) {
			since = countingSince
		}
		uw := flagpole.UsageWindow{Window: window.Name, Since: metav1.NewTime(since.UTC()).Rfc3339Copy(), Evaluations: int64(sum.Evaluations())}
		for i, reason := range flagpole.Reasons {
			if sum.Reasons[i] > 0 {
				uw.Reasons = append(uw.Reasons, flagpole.ReasonCount{Reason: reason, Count: int64(sum.Reasons[i])})
				if reason == flagpole.ReasonError {
					uw.Errors = int64(sum.Reasons[i])
				}
			}
		}
		for _, v := range sum.Variants {
			if v.Name != "" {
				uw.Variants = append(uw.Variants, flagpole.VariantCount{Name: v.Name, Count: int64(v.N)})
			}
		}
		sort.Slice(uw.Variants, func(i, j int) bool { return uw.Variants[i].Name < uw.Variants[j].Name })
		u.Windows = append(u.Windows, uw)
	}
	return u
}

func unixPtr(sec int64) *metav1.Time {
	return timePtr(time.Unix(sec, 0))
}

func timePtr(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t.UTC()).Rfc3339Copy()
	return &mt
}
