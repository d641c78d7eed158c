package evaluation

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// planFlag is a flag whose one rule rolls "new" out over dist by a plan,
// with weight in effect (status) weight.
func planFlag(dist []v1beta1.WeightedVariant, bucketing v1beta1.RolloutBucketing, weight int32) *v1beta1.Flag {
	f := &v1beta1.Flag{
		ObjectMeta: metav1.ObjectMeta{Name: "checkout", Namespace: "shop", UID: types.UID("u1"), Generation: 1},
		Spec: v1beta1.FlagSpec{
			Type: v1beta1.FlagTypeString,
			Variants: []v1beta1.Variant{
				{Name: "old", Value: js("old")}, {Name: "other", Value: js("other")}, {Name: "third", Value: js("third")}, {Name: "new", Value: js("new")},
			},
			DefaultVariant: "old",
			Rules: []v1beta1.Rule{{Name: "gradual", Rollout: &v1beta1.Rollout{
				Distribution: dist, Bucketing: bucketing,
				Plan: &v1beta1.RolloutPlan{Variant: "new", Steps: []v1beta1.RolloutStep{{Weight: 100}}},
			}}},
		},
	}
	f.Status.Rollouts = []v1beta1.RolloutStatus{{Rule: "gradual", Weight: weight}}
	return f
}

// A plan over many random distributions, weights and keys, with flagd's
// buckets underneath: a key that has the new variant keeps it at every
// later weight; a key that does not keeps the variant it had before the
// plan (never another old one); weight 0 (an abort) is everyone's variant
// before the plan exactly; the new variant's share is the weight.
func TestPlanIsStickyAsItGrows(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const keys = 4000
	names := []v1beta1.VariantName{"old", "other", "third", "new"}
	for trial := range 40 {
		// Two to four variants in a random order, "new" among them with a
		// random weight (often 0) or absent.
		n := 2 + rng.IntN(3)
		order := rng.Perm(4)[:n]
		var dist []v1beta1.WeightedVariant
		for _, i := range order {
			w := int32(1 + rng.IntN(1000))
			if names[i] == "new" && rng.IntN(2) == 0 {
				w = 0
			}
			dist = append(dist, v1beta1.WeightedVariant{Variant: names[i], Weight: w})
		}
		bucketing := v1beta1.RolloutBucketingFlagdV2
		if trial%4 == 3 {
			bucketing = v1beta1.RolloutBucketingFlagdV1
		}
		// Rising weights, as a plan's steps are.
		weights := []int32{0}
		for w := int32(0); w < 100; {
			w = min(100, w+1+int32(rng.IntN(40)))
			weights = append(weights, w)
		}
		t.Run(fmt.Sprintf("%d-%v-%s", trial, dist, bucketing), func(t *testing.T) {
			now := time.Now()
			before := make([]string, keys)
			got := make([]string, keys)
			var totalW, newW int
			for _, d := range dist {
				totalW += int(d.Weight)
				if d.Variant == "new" {
					newW += int(d.Weight)
				}
			}
			for step, w := range weights {
				f := planFlag(dist, bucketing, w)
				c := CompileFlag(f, noLookup)
				onNew := 0
				for k := range keys {
					key := fmt.Sprintf("user-%d-%d", trial, k)
					res := c.Evaluate(t.Context(), f, nil, Request{Context: &Context{TargetingKey: key, HasTargetingKey: true}, Now: now})
					if res.ErrorCode != "" {
						t.Fatalf("%s at %d%%: %s %s", key, w, res.ErrorCode, res.ErrorMessage)
					}
					v := res.Variant
					if step == 0 {
						before[k] = v
					} else {
						prev := got[k]
						switch {
						case prev == "new" && v != "new":
							t.Fatalf("%s had new at the step before and %s at %d%%", key, v, w)
						case v != "new" && v != before[k]:
							t.Fatalf("%s moved from %s to %s at %d%%: only a move to new is allowed", key, before[k], v, w)
						}
					}
					got[k] = v
					if v == "new" {
						onNew++
					}
				}
				share := 100 * float64(onNew) / keys
				want := float64(w)
				if floor := 100 * float64(newW) / float64(totalW); want < floor {
					want = floor // the plan never takes from what new had
				}
				// 4000 keys: a standard deviation under 0.8 points.
				if share < want-4 || share > want+4 {
					t.Errorf("at %d%%: %.1f%% on new, want about %.1f%%", w, share, want)
				}
			}
			// Aborted: weight 0, everyone where they were before the plan.
			f := planFlag(dist, bucketing, 0)
			c := CompileFlag(f, noLookup)
			for k := range keys {
				key := fmt.Sprintf("user-%d-%d", trial, k)
				if v := c.Evaluate(t.Context(), f, nil, Request{Context: &Context{TargetingKey: key, HasTargetingKey: true}, Now: now}).Variant; v != before[k] {
					t.Fatalf("%s: %s after the abort, %s before the plan", key, v, before[k])
				}
			}
		})
	}
}

// Before the plan starts and at weight 0 the rule is bit for bit the
// distribution: flagd's buckets.
func TestPlanAtZeroIsTheDistribution(t *testing.T) {
	dist := []v1beta1.WeightedVariant{{Variant: "old", Weight: 70}, {Variant: "new", Weight: 0}, {Variant: "other", Weight: 30}}
	f := planFlag(dist, "", 0)
	f.Status.Rollouts = nil
	c := CompileFlag(f, noLookup)
	for k := range 2000 {
		key := fmt.Sprintf("k%d", k)
		want := string(dist[Bucket("checkout"+key, dist)].Variant)
		if v := c.Evaluate(t.Context(), f, nil, Request{Context: &Context{TargetingKey: key, HasTargetingKey: true}, Now: time.Now()}).Variant; v != want {
			t.Fatalf("%s: %s, flagd's bucket %s", key, v, want)
		}
	}
}

// A step is a status write, not a new generation: the cache recompiles
// when the weight in effect changes.
func TestCacheRecompilesOnPlanStep(t *testing.T) {
	dist := []v1beta1.WeightedVariant{{Variant: "old", Weight: 1}}
	cache := NewCache()
	f := planFlag(dist, "", 0)
	first := cache.Get(f, noLookup)
	if cache.Get(f, noLookup) != first {
		t.Fatal("recompiled with nothing changed")
	}
	f = f.DeepCopy()
	f.Status.Rollouts[0].Weight = 100
	second := cache.Get(f, noLookup)
	if second == first {
		t.Fatal("a new weight in effect was not recompiled")
	}
	if v := second.Evaluate(t.Context(), f, nil, Request{Context: &Context{TargetingKey: "k", HasTargetingKey: true}, Now: time.Now()}).Variant; v != "new" {
		t.Errorf("at 100%%: %s", v)
	}
}

func noLookup(string) *v1beta1.Segment { return nil }
