package evaluation

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// Expressions that build far more than they read are rejected when written,
// with their estimate; Kubernetes' estimator alone accepts every one.
func TestHostileExpressionsRejectedOnWrite(t *testing.T) {
	for _, expr := range []string{
		// The example: a 16 KiB string replaced into itself, 268 MB.
		`size(context.s.replace("a", context.s)) > 0`,
		`context.s.replace("", context.s) != ""`,
		// format: a list holding one context string 16,000 times, an
		// unbounded precision, a format string the context chooses.
		`"%s".format([context.xs.map(x, context.s)]) != ""`,
		`"%.99999999f".format([1.0]) != ""`,
		`context.f.format([1.0]) != ""`,
		`"%s".format([context.s + context.s]) != ""`,
		// One list element per byte, many times over.
		`context.xs.all(x, context.s.split("").size() > 0)`,
		`context.xs.all(x, context.s.findAll(".").size() > 0)`,
		`[` + strings.Repeat(`context.s.split(""),`, 60) + `context.s.split("")].size() > 0`,
		// Every element of every member.
		`[` + strings.Repeat(`context.xs,`, 100) + `context.xs].flatten().size() > 0`,
		`lists.range(context.n).size() > 0`,
		`lists.range(600000).size() > 0`,
		// A naive substring search of a context string for another.
		`context.s.indexOf(context.t) >= 0`,
		`context.xs.all(x, context.s.charAt(1) == "a")`,
		`context.xs.all(x, strings.quote(context.s) != "")`,
		`context.xs.all(x, url(context.u).getQuery().size() > 0)`,
		// Loops over context values, nested.
		`context.xs.all(a, context.xs.all(b, a == b))`,
	} {
		_, err := CompileExpression(expr, Predicate, false)
		if err == nil || !strings.Contains(err.Error(), "exceeds the limit") {
			t.Errorf("%.70s: %v, want the estimate rejected", expr, err)
		}
	}
	// Everyday expressions still pass.
	for _, expr := range []string{
		`context.email.replace("@", " at ") != ""`,
		`"%s/%s".format([context.org, targetingKey]) != ""`,
		`"%d-%.2f".format([context.n, 1.5]) != ""`,
		`context.csv.split(",").exists(p, p == "beta")`,
		`context.path.findAll("[a-z]+").size() < 4`,
		`[context.a, context.b].flatten().size() > 1`,
		`lists.range(10).exists(i, i == context.n)`,
		`context.email.indexOf("@") > 0`,
		`strings.quote(context.name) != ""`,
		`url(context.u).getQuery().size() > 0`,
	} {
		if _, err := CompileExpression(expr, Predicate, false); err != nil {
			t.Errorf("%s: %v", expr, err)
		}
	}
}

// Format notes say what would make the estimate finite.
func TestFormatEstimateExplains(t *testing.T) {
	_, err := CompileExpression(`context.f.format([1]) != ""`, Predicate, false)
	if err == nil || !strings.Contains(err.Error(), "string.format needs a literal format string") {
		t.Errorf("%v", err)
	}
}

// hostileCase is an expression that passes the write-time check with the
// context that makes it work hardest.
type hostileCase struct {
	name, expr string
	context    string
}

// maxString is a context holding one string as long as the cap allows.
func maxString(key string, c byte) string {
	overhead := len(`{"":""}`) + len(key)
	return `{"` + key + `":"` + strings.Repeat(string(c), MaxContextBytes-overhead) + `"}`
}

// maxList is a context holding one list of the given JSON element.
func maxList(key, element string) string {
	overhead := len(`{"":[]}`) + len(key)
	n := (MaxContextBytes - overhead + 1) / (len(element) + 1)
	return `{"` + key + `":[` + strings.Repeat(element+",", n-1) + element + `]}`
}

// maxExpressionLength is the API's cap on an expression's length
// (validation.MaxExpressionLength): longer ones never reach the engine.
const maxExpressionLength = 4096

// hostileCases are the worst expressions the write-time check accepts, as
// far as these tests know: each template is grown (a longer replacement,
// more calls, a larger range) to the largest size whose estimate still
// passes and whose text fits the API's length cap, and given the context
// that makes it build the most — or, for the loops, run the longest. Each
// is true for its context, so that a rule `!(expr)` never matches and every
// rule of hostileFlag runs.
var hostileCases = sync.OnceValue(func() []hostileCase {
	repeat := func(item string, n int, sep string) string {
		return strings.TrimSuffix(strings.Repeat(item+sep, n), sep)
	}
	grown := []struct {
		name     string
		template func(n int) string
		context  string
	}{
		{"replace", func(n int) string { return `context.s.replace("a", "` + strings.Repeat("b", n) + `") != ""` }, maxString("s", 'a')},
		{"split", func(n int) string { return `[` + repeat(`context.s.split("")`, n, ",") + `].size() > 0` }, maxString("s", 'a')},
		{"format", func(n int) string {
			return `"` + strings.Repeat("%s", n) + `".format([` + repeat("context.xs", n, ",") + `]) != ""`
		}, maxList("xs", "1e300")},
		{"range", func(n int) string { return `lists.range(` + strconv.Itoa(n) + `).size() > 0` }, `{}`},
		{"concat", func(n int) string { return `[` + repeat(`context.s + context.s`, n, ",") + `].size() > 0` }, maxString("s", 'a')},
	}
	var cases []hostileCase
	for _, g := range grown {
		n := largestAccepted(g.template)
		cases = append(cases, hostileCase{fmt.Sprintf("%s(%d)", g.name, n), g.template(n), g.context})
	}
	return append(cases,
		hostileCase{"map", `context.xs.map(x, [x, x, x, x, x, x, x, x]).size() > 0`, maxList("xs", "1")},
		hostileCase{"loop", `context.xs.all(x, x == 1)`, maxList("xs", "1")},
	)
})

// largestAccepted is the largest n for which the rule `!(template(n))`
// fits the length cap and passes the write-time check; 0 if none does.
func largestAccepted(template func(int) string) int {
	accepted := func(n int) bool {
		expr := "!(" + template(n) + ")"
		if len(expr) > maxExpressionLength {
			return false
		}
		_, err := CompileExpression(expr, Predicate, false)
		return err == nil
	}
	if !accepted(1) {
		return 0
	}
	lo, hi := 1, 2
	for accepted(hi) {
		lo, hi = hi, hi*2
	}
	for lo+1 < hi { // accepted(lo), !accepted(hi)
		mid := lo + (hi-lo)/2
		if accepted(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// hostileFlag has MaxRules-many rules (well, 40) all running expr: more than
// one request's budget.
func hostileFlag(name, expr string) *v1beta1.Flag {
	f := &v1beta1.Flag{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: "hostile-" + "name"},
		Spec: v1beta1.FlagSpec{Type: v1beta1.FlagTypeBoolean, State: v1beta1.FlagStateEnabled,
			Variants: []v1beta1.Variant{{Name: "on", Value: js(true)}, {Name: "off", Value: js(false)}}, DefaultVariant: "off"},
	}
	for i := 0; i < 40; i++ {
		// Never true, so that every rule runs.
		f.Spec.Rules = append(f.Spec.Rules, v1beta1.Rule{Name: fmt.Sprintf("r%d", i), When: "!(" + expr + ")", Variant: "on"})
	}
	return f
}

func TestHostileCasesPassTheWriteCheck(t *testing.T) {
	for _, hc := range hostileCases() {
		if strings.HasSuffix(hc.name, "(0)") {
			t.Errorf("%s: no size passes the write-time check", hc.name)
		}
		if _, err := CompileExpression("!("+hc.expr+")", Predicate, false); err != nil {
			t.Errorf("%s: %v", hc.name, err)
		}
		if _, err := ParseContext([]byte(hc.context)); err != nil {
			t.Errorf("%s: context: %v", hc.name, err)
		}
	}
}

// One request, however hostile its flag, ends within its budget: the cost
// budget or the time limit answers ERROR/GENERAL, never a hang.
func TestHostileFlagsStopAtTheBudget(t *testing.T) {
	for _, hc := range hostileCases() {
		t.Run(hc.name, func(t *testing.T) {
			f := hostileFlag(hc.name, hc.expr)
			c := ctx(t, hc.context)
			compiled := CompileFlag(f, lookup())
			start := time.Now()
			res := compiled.Evaluate(context.Background(), f, nil, Request{Context: c, Now: now})
			took := time.Since(start)
			if res.Reason != ReasonError || res.ErrorCode != ErrorGeneral ||
				!(strings.Contains(res.ErrorMessage, "cost budget") || strings.Contains(res.ErrorMessage, "time limit")) {
				t.Errorf("%+v", res)
			}
			// The time limit, plus one expression started just before it.
			if took > RequestTimeLimit+2*time.Second {
				t.Errorf("took %s", took)
			}
			t.Logf("stopped at rule %s after %s", res.Metadata.Rule, took.Round(time.Millisecond))
		})
	}
}

// Memory: what one evaluation builds is bounded by its cost limit, so that
// the process's memory stays bounded under concurrent hostile evaluations.
//
// MaxHostileMemoryGrowth is the documented bound (docs/evaluation.md, "Speed
// and what it costs") on how much the process grows while 16 requests
// evaluate one of the hostile flags above at once, each with a context at
// the size cap.
const (
	hostileConcurrency     = 16
	MaxHostileMemoryGrowth = 256 << 20
)

func TestConcurrentHostileEvaluationsMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("runs hostile evaluations for several seconds")
	}
	for _, hc := range hostileCases() {
		t.Run(hc.name, func(t *testing.T) {
			f := hostileFlag(hc.name, hc.expr)
			compiled := CompileFlag(f, lookup())
			c := ctx(t, hc.context)

			runtime.GC()
			debug.FreeOSMemory()
			before, peak := memoryBaseline(t)
			start := time.Now()
			var wg sync.WaitGroup
			for range hostileConcurrency {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res := compiled.Evaluate(context.Background(), f, nil, Request{Context: c, Now: now})
					if res.Reason != ReasonError {
						t.Errorf("%+v", res)
					}
				}()
			}
			wg.Wait()
			p := peak()
			growth := p - min(p, before)
			t.Logf("%d concurrent evaluations: %s, peak memory growth %d MiB (bound %d MiB)",
				hostileConcurrency, time.Since(start).Round(time.Millisecond), growth>>20, MaxHostileMemoryGrowth>>20)
			bound := uint64(MaxHostileMemoryGrowth)
			if raceEnabled {
				// The heap's peak includes garbage the slower, race-instrumented
				// collector has not reclaimed yet; the resident-set bound is
				// asserted without -race (hack/test.sh runs this test so too).
				bound *= 2
			}
			if growth > bound {
				t.Errorf("memory grew by %d MiB, more than the bound of %d MiB", growth>>20, bound>>20)
			}
		})
	}
}

// memoryBaseline returns the process's memory now and a function giving
// its peak since. On Linux that is the resident set (VmRSS, and VmHWM after
// resetting it through /proc/self/clear_refs); with the race detector (whose
// shadow memory is several times the heap) or without /proc, the Go
// runtime's heap in use, sampled every millisecond.
func memoryBaseline(t *testing.T) (uint64, func() uint64) {
	if !raceEnabled {
		if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err == nil {
			if rss, ok := procStatus("VmRSS"); ok {
				return rss, func() uint64 {
					hwm, _ := procStatus("VmHWM")
					return hwm
				}
			}
		}
	}
	t.Log("measuring the Go heap in use, sampled")
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	var (
		mu   sync.Mutex
		max  = m.HeapInuse
		done = make(chan struct{})
	)
	go func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				mu.Lock()
				max = maxOf(max, m.HeapInuse)
				mu.Unlock()
			}
		}
	}()
	var stop sync.Once
	return m.HeapInuse, func() uint64 {
		stop.Do(func() { close(done) })
		mu.Lock()
		defer mu.Unlock()
		return max
	}
}

func maxOf(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// procStatus reads a "kB" field of /proc/self/status, in bytes.
func procStatus(field string) (uint64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if name, rest, ok := strings.Cut(line, ":"); ok && name == field {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// The hostile contexts really are at the cap: the memory bound is about the
// worst case.
func TestHostileContextsAreMaximal(t *testing.T) {
	for _, hc := range hostileCases() {
		if hc.context == "{}" {
			continue
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(hc.context), &v); err != nil {
			t.Fatal(err)
		}
		if n := len(hc.context); n > MaxContextBytes || n < MaxContextBytes-8 {
			t.Errorf("%s: context of %d bytes", hc.name, n)
		}
	}
}
