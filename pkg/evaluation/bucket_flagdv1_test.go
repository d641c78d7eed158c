package evaluation

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

type flagdV1Vector struct {
	Source       string                    `json:"source"`
	Case         string                    `json:"case"`
	Key          string                    `json:"key"`
	Distribution []v1beta1.WeightedVariant `json:"distribution"`
	Variant      string                    `json:"variant"`
}

func loadFlagdV1Vectors(t *testing.T) []flagdV1Vector {
	// Expected answers of flagd's own tests; provenance in testdata/README.md.
	return loadVectors[flagdV1Vector](t, "flagd-fractional-v1-vectors.json", 29)
}

// Every key lands where flagd's fractional-v1 tests say, through the bare
// function and through a whole flag with bucketing FlagdV1.
func TestBucketFlagdV1MatchesFlagdTests(t *testing.T) {
	differs := 0
	for _, v := range loadFlagdV1Vectors(t) {
		i := BucketFlagdV1(v.Key, v.Distribution)
		if i < 0 || string(v.Distribution[i].Variant) != v.Variant {
			t.Errorf("%s: key %q landed in %d, flagd says %s", v.Case, v.Key, i, v.Variant)
		}
		if j := Bucket(v.Key, v.Distribution); j != i {
			differs++
		}

		f := &v1beta1.Flag{
			ObjectMeta: metav1.ObjectMeta{Name: "f", UID: "u"},
			Spec: v1beta1.FlagSpec{Type: v1beta1.FlagTypeString, State: v1beta1.FlagStateEnabled,
				Rules: []v1beta1.Rule{{Name: "split", Rollout: &v1beta1.Rollout{
					BucketBy: "context.key", Distribution: v.Distribution, Bucketing: v1beta1.RolloutBucketingFlagdV1}}}},
		}
		for _, d := range v.Distribution {
			f.Spec.Variants = append(f.Spec.Variants, v1beta1.Variant{Name: d.Variant, Value: js(string(d.Variant))})
		}
		raw, _ := json.Marshal(map[string]any{"key": v.Key})
		res := CompileFlag(f, lookup()).Evaluate(t.Context(), f, nil, Request{Context: ctx(t, string(raw)), Now: now})
		if res.Reason != ReasonSplit || res.Variant != v.Variant {
			t.Errorf("%s: whole flag answered %+v, flagd says %s", v.Case, res, v.Variant)
		}
	}
	// The two algorithms are different: some of flagd's v1 answers are not
	// what v2 gives, which is why flags from an older flagd need FlagdV1.
	if differs == 0 {
		t.Error("v1 and v2 agree on every vector: the v1 vectors prove nothing")
	}
}

// The hash values where v1 finds no bucket, computed from flagd v0.13.3's
// fractional.go, with keys whose hashes the flagd testbed lists
// (fractional-hash-edge-flag): 0 → first bucket, 2³¹−1 → none (exactly
// 100), 2³¹ (int32 −2³¹) → none (just above 100), 2³²−1 (int32 −1) → first.
func TestBucketFlagdV1Edges(t *testing.T) {
	half := []v1beta1.WeightedVariant{{Variant: "lower", Weight: 50}, {Variant: "upper", Weight: 50}}
	for key, want := range map[string]int{"ejOoVL": 0, "bY9fO-": 0, "SI7p-": -1, "6LvT0": -1, "ceQdGm": 0} {
		if got := BucketFlagdV1(key, half); got != want {
			t.Errorf("%q: bucket %d, want %d", key, got, want)
		}
	}
	// 30,000 keys over thirds: each share within 1.5 points of a third.
	thirds := []v1beta1.WeightedVariant{{Variant: "a", Weight: 1}, {Variant: "b", Weight: 1}, {Variant: "c", Weight: 1}}
	if BucketFlagdV1("x", []v1beta1.WeightedVariant{{Variant: "a"}}) != -1 {
		t.Error("zero total weight must pick nothing")
	}
	counts := make([]int, 3)
	const n = 30000
	for i := 0; i < n; i++ {
		if b := BucketFlagdV1(fmt.Sprintf("k%d", i), thirds); b >= 0 {
			counts[b]++
		}
	}
	for i, c := range counts {
		if share := 100 * float64(c) / n; math.Abs(share-100.0/3) > 1.5 {
			t.Errorf("variant %d got %.2f%%", i, share)
		}
	}
}

// A rollout answers ERROR/GENERAL where v1 finds no bucket, as flagd
// answered an empty variant there.
func TestEvaluateFlagdV1NoBucket(t *testing.T) {
	f := &v1beta1.Flag{
		ObjectMeta: metav1.ObjectMeta{Name: "f", UID: "u"},
		Spec: v1beta1.FlagSpec{Type: v1beta1.FlagTypeString, State: v1beta1.FlagStateEnabled,
			Variants: []v1beta1.Variant{{Name: "lower", Value: js("lower")}, {Name: "upper", Value: js("upper")}},
			Rules: []v1beta1.Rule{{Name: "split", Rollout: &v1beta1.Rollout{BucketBy: "context.key", Bucketing: v1beta1.RolloutBucketingFlagdV1,
				Distribution: []v1beta1.WeightedVariant{{Variant: "lower", Weight: 50}, {Variant: "upper", Weight: 50}}}}}},
	}
	res := CompileFlag(f, lookup()).Evaluate(t.Context(), f, nil, Request{Context: ctx(t, `{"key": "SI7p-"}`), Now: now})
	if res.Reason != ReasonError || res.ErrorCode != ErrorGeneral {
		t.Errorf("got %+v", res)
	}
	// The same key with v2 bucketing lands in a bucket.
	f.Spec.Rules[0].Rollout.Bucketing = ""
	res = CompileFlag(f, lookup()).Evaluate(t.Context(), f, nil, Request{Context: ctx(t, `{"key": "SI7p-"}`), Now: now})
	if res.Variant != "lower" {
		t.Errorf("v2: got %+v, the testbed says lower", res)
	}
}
