package usage

import (
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

var start = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

func testFlag(name string) *v1beta1.Flag {
	return &v1beta1.Flag{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name)}}
}

func answer(variant, reason string) *v1beta1.FlagEvaluation {
	return &v1beta1.FlagEvaluation{Variant: variant, Reason: reason}
}

func window(t *testing.T, u *flagpole.FlagUsage, name string) flagpole.UsageWindow {
	t.Helper()
	for _, w := range u.Windows {
		if w.Window == name {
			return w
		}
	}
	t.Fatalf("no window %s in %+v", name, u)
	return flagpole.UsageWindow{}
}

func variantCount(w flagpole.UsageWindow, name string) int64 {
	for _, v := range w.Variants {
		if v.Name == name {
			return v.Count
		}
	}
	return 0
}

// Counts land in the bucket of the flush that saw them, every window sums
// its buckets from between one and one and a quarter of its length ago, and
// the live counts not flushed yet are part of what a read sees.
func TestCounterWindows(t *testing.T) {
	clock := clocktesting.NewFakeClock(start)
	c := NewCounter(clock, DefaultMaxFlags)
	f := testFlag("f")
	for i := 0; i < 3; i++ {
		c.Evaluated(f, answer("on", flagpole.ReasonSplit), clock.Now())
	}
	c.Evaluated(f, answer("", flagpole.ReasonError), clock.Now())
	v := NewView(c)

	// Live: nothing flushed yet.
	u := v.Usage(f.UID, clock.Now())
	if u.LastEvaluated == nil || !u.LastEvaluated.Time.Equal(start) {
		t.Errorf("lastEvaluated %v, want %v", u.LastEvaluated, start)
	}
	if w := window(t, u, "1h"); w.Evaluations != 4 || w.Errors != 1 || variantCount(w, "on") != 3 {
		t.Errorf("1h live: %+v", w)
	}

	c.Commit(c.Flush("r1", nil))
	clock.Step(20 * time.Minute)
	c.Evaluated(f, answer("off", flagpole.ReasonSplit), clock.Now())
	c.Commit(c.Flush("r1", nil))

	// 50 minutes after the first flush: both in the last hour.
	clock.Step(30 * time.Minute)
	if w := window(t, v.Usage(f.UID, clock.Now()), "1h"); w.Evaluations != 5 || variantCount(w, "off") != 1 {
		t.Errorf("1h at +50m: %+v", w)
	}
	// At +80 min the first evaluations left the hour's buckets (15 min
	// each, the current one and four before), not the day's.
	clock.Step(30 * time.Minute)
	u = v.Usage(f.UID, clock.Now())
	if w := window(t, u, "1h"); w.Evaluations != 1 || !w.Since.Time.Equal(start.Add(15*time.Minute)) {
		t.Errorf("1h at +80m: %+v, want 1 evaluation since %v", w, start.Add(15*time.Minute))
	}
	if w := window(t, u, "24h"); w.Evaluations != 5 {
		t.Errorf("24h at +80m: %+v", w)
	}
	// A week and a half later everything is gone from the windows, but not
	// when the flag was last evaluated or each variant last served.
	clock.Step(10 * 24 * time.Hour)
	u = v.Usage(f.UID, clock.Now())
	if w := window(t, u, "7d"); w.Evaluations != 0 {
		t.Errorf("7d after 10 days: %+v", w)
	}
	if u.LastEvaluated == nil || !u.LastEvaluated.Time.Equal(start.Add(20*time.Minute)) || len(u.Variants) != 2 {
		t.Errorf("after 10 days: last %v, variants %+v", u.LastEvaluated, u.Variants)
	}
	if u.FirstEvaluated == nil || !u.FirstEvaluated.Time.Equal(start) {
		t.Errorf("firstEvaluated %v", u.FirstEvaluated)
	}
}

// A flush that is not stored (etcd unreachable) is counted again by the
// next; a record the leader archived is not written again by its replica,
// which then writes only what it never stored.
func TestCounterCommitAndRestart(t *testing.T) {
	clock := clocktesting.NewFakeClock(start)
	c := NewCounter(clock, DefaultMaxFlags)
	f := testFlag("f")
	total := func(r *Record) uint64 {
		var n uint64
		for _, fr := range r.Flags {
			for _, b := range fr.Buckets[0] {
				n += b.Evaluations()
			}
		}
		return n
	}
	c.Evaluated(f, answer("on", flagpole.ReasonStatic), clock.Now())
	if got := total(c.Flush("r", nil)); got != 1 {
		t.Fatalf("first flush: %d", got)
	}
	// Not committed: the next flush has it too.
	c.Evaluated(f, answer("on", flagpole.ReasonStatic), clock.Now())
	rec := c.Flush("r", nil)
	if got := total(rec); got != 2 {
		t.Fatalf("second flush after a failed write: %d, want 2", got)
	}
	c.Commit(rec)
	c.Evaluated(f, answer("on", flagpole.ReasonStatic), clock.Now())
	if got := total(c.Flush("r", nil)); got != 3 {
		t.Fatalf("after commit: %d, want 3", got)
	}
	// The stored record (2) was archived; the third, never stored, is all
	// this replica writes now.
	c.Restart()
	if got := total(c.Flush("r", nil)); got != 1 {
		t.Fatalf("after restart: %d, want 1", got)
	}
}

// Replicas' records and the live counts add up; the first and last
// evaluation are the earliest and the latest.
func TestViewMergesReplicas(t *testing.T) {
	clock := clocktesting.NewFakeClock(start)
	f := testFlag("f")
	other := NewCounter(clock, DefaultMaxFlags)
	for i := 0; i < 5; i++ {
		other.Evaluated(f, answer("on", flagpole.ReasonTargetingMatch), clock.Now())
	}
	otherRecord := other.Flush("r2", nil)
	data, err := otherRecord.Encode()
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := DecodeRecord(data)
	if err != nil {
		t.Fatal(err)
	}

	clock.Step(time.Minute)
	own := NewCounter(clock, DefaultMaxFlags)
	own.Evaluated(f, answer("off", flagpole.ReasonDefault), clock.Now())
	v := NewView(own)
	changed := 0
	v.OnChange(func() { changed++ })
	v.SetRecord("r2", decoded)
	if changed != 1 {
		t.Errorf("OnChange called %d times", changed)
	}
	u := v.Usage(f.UID, clock.Now())
	w := window(t, u, "24h")
	if w.Evaluations != 6 || variantCount(w, "on") != 5 || variantCount(w, "off") != 1 {
		t.Errorf("merged: %+v", w)
	}
	if !u.FirstEvaluated.Time.Equal(start) || !u.LastEvaluated.Time.Equal(start.Add(time.Minute)) {
		t.Errorf("first %v last %v", u.FirstEvaluated, u.LastEvaluated)
	}
	if !u.CountingSince.Time.Equal(start) {
		t.Errorf("countingSince %v, want the other replica's start %v", u.CountingSince, start)
	}
	v.DeleteRecord("r2")
	if w := window(t, v.Usage(f.UID, clock.Now()), "24h"); w.Evaluations != 1 {
		t.Errorf("after the other record went: %+v", w)
	}
	if u := v.Usage("never", clock.Now()); u.LastEvaluated != nil || len(u.Windows) != 0 || u.CountingSince == nil {
		t.Errorf("a flag never evaluated: %+v", u)
	}
}

// Reports add counts as if evaluated here; the variants not named served
// nothing.
func TestCounterAdd(t *testing.T) {
	clock := clocktesting.NewFakeClock(start)
	c := NewCounter(clock, DefaultMaxFlags)
	c.Add("u1", "ns", "f", []flagpole.ReasonCount{{Reason: flagpole.ReasonSplit, Count: 10}, {Reason: flagpole.ReasonError, Count: 2}},
		[]flagpole.VariantCount{{Name: "a", Count: 4}, {Name: "b", Count: 6}}, clock.Now())
	w := window(t, NewView(c).Usage("u1", clock.Now()), "1h")
	if w.Evaluations != 12 || w.Errors != 2 || variantCount(w, "a") != 4 || variantCount(w, "b") != 6 {
		t.Errorf("%+v", w)
	}
	rec := c.Flush("r", nil)
	if n := rec.Flags[0].Buckets[0][0].Variant(""); n != 2 {
		t.Errorf("none served: %d, want 2", n)
	}
}

// The counter counts at most its limit of flags; a forgotten flag frees its
// place. Rule errors are reported once each.
func TestCounterLimitForgetAndRuleErrors(t *testing.T) {
	clock := clocktesting.NewFakeClock(start)
	c := NewCounter(clock, 2)
	for _, name := range []string{"a", "b", "c"} {
		c.Evaluated(testFlag(name), answer("on", flagpole.ReasonStatic), clock.Now())
	}
	if c.Len() != 2 || c.Live("uid-c") != nil {
		t.Errorf("len %d, c counted: %v", c.Len(), c.Live("uid-c") != nil)
	}
	c.Forget("uid-a")
	c.Evaluated(testFlag("c"), answer("on", flagpole.ReasonStatic), clock.Now())
	if c.Live("uid-c") == nil {
		t.Error("c not counted after a was forgotten")
	}

	failing := &v1beta1.FlagEvaluation{Reason: flagpole.ReasonError, ErrorCode: "GENERAL", ErrorMessage: "no such key: plan", Metadata: v1beta1.EvaluationMetadata{Rule: "staff"}}
	missingKey := &v1beta1.FlagEvaluation{Reason: flagpole.ReasonError, ErrorCode: "TARGETING_KEY_MISSING", Metadata: v1beta1.EvaluationMetadata{Rule: "gradual"}}
	for i := 0; i < 3; i++ {
		c.Evaluated(testFlag("b"), failing, clock.Now())
	}
	c.Evaluated(testFlag("b"), missingKey, clock.Now())
	var got []string
	report := func(namespace, name string, _ types.UID, n uint64, last RuleError) {
		got = append(got, fmt.Sprintf("%s/%s %d %s: %s", namespace, name, n, last.Rule, last.Message))
	}
	c.RuleErrors(report)
	if len(got) != 1 || got[0] != "ns/b 3 staff: no such key: plan" {
		t.Errorf("rule errors: %v", got)
	}
	got = nil
	c.RuleErrors(report)
	if len(got) != 0 {
		t.Errorf("reported twice: %v", got)
	}
}

// Concurrent evaluations, flushes and reads lose no count (run with -race).
func TestCounterConcurrent(t *testing.T) {
	clock := clocktesting.NewFakeClock(start)
	c := NewCounter(clock, DefaultMaxFlags)
	f := testFlag("f")
	const workers, each = 8, 2000
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for i := 0; i < each; i++ {
				variant := []string{"a", "b", "c"}[i%3]
				c.Evaluated(f, answer(variant, flagpole.ReasonSplit), clock.Now())
			}
		})
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			default:
				c.Commit(c.Flush("r", nil))
				_ = c.Live(f.UID)
			}
		}
	}()
	wg.Wait()
	close(done)
	rec := c.Flush("r", nil)
	if got := rec.Flags[0].Buckets[0][0].Evaluations(); got != workers*each {
		t.Errorf("counted %d, want %d", got, workers*each)
	}
}

// A record over its size limit keeps the flags evaluated last whole and
// loses the counts of the others first.
func TestEncodeWithin(t *testing.T) {
	rec := &Record{Version: RecordVersion, Replica: "r"}
	for i := 0; i < 2000; i++ {
		fr := FlagRecord{UID: types.UID(fmt.Sprintf("u%d", i)), Namespace: "ns", Name: fmt.Sprintf("flag-%d", i), First: 1, Last: int64(1000 + i)}
		for w := range Windows {
			for b := int64(0); b < keptBuckets; b++ {
				fr.Buckets[w] = append(fr.Buckets[w], Bucket{Index: b, Counts: Counts{Reasons: [reasonSlots]uint64{uint64(i*7 + int(b)), uint64(i * 13)}, Variants: []VariantN{{fmt.Sprintf("v%d", i), uint64(i)}}}})
			}
		}
		rec.Flags = append(rec.Flags, fr)
	}
	full, err := rec.Encode()
	if err != nil {
		t.Fatal(err)
	}
	limit := len(full) * 2 / 3
	data, encoded, trimmed, err := rec.EncodeWithin(limit)
	if err != nil || len(data) > limit || trimmed == 0 {
		t.Fatalf("%d bytes of %d, limit %d, trimmed %d: %v", len(data), len(full), limit, trimmed, err)
	}
	decoded, err := DecodeRecord(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(decoded.Flags) != len(encoded.Flags) {
		t.Errorf("decoded %d flags, encoded %d", len(decoded.Flags), len(encoded.Flags))
	}
	last := decoded.Flags[len(decoded.Flags)-1]
	if last.Name != "flag-1999" || len(last.Buckets[0]) != keptBuckets {
		t.Errorf("the flag evaluated last lost its counts: %+v", last.Buckets[0])
	}
	if first := decoded.Flags[0]; first.Name == "flag-0" && len(first.Buckets[0]) != 0 {
		t.Errorf("the flag evaluated first kept its counts")
	}
	if _, err := DecodeRecord([]byte("not gzip")); err == nil {
		t.Error("garbage decoded")
	}
}
