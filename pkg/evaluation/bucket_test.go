package evaluation

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

type flagdVector struct {
	FlagKey      string                    `json:"flagKey"`
	TargetingKey string                    `json:"targetingKey"`
	BucketBy     string                    `json:"bucketBy"`
	BucketValue  string                    `json:"bucketValue"`
	Context      map[string]any            `json:"context"`
	Distribution []v1beta1.WeightedVariant `json:"distribution"`
	Variant      string                    `json:"variant"`
}

func loadFlagdVectors(t testing.TB) []flagdVector {
	// Produced by running flagd itself; see testdata/README.md.
	return loadVectors[flagdVector](t, "flagd-fractional-vectors.json", 86)
}

// loadVectors reads testdata/<file>'s "vectors" and insists on want of them,
// so a truncated file cannot pass by testing less.
func loadVectors[V any](t testing.TB, file string, want int) []V {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatalf("reading %s: %v", file, err)
	}
	var doc struct {
		Vectors []V `json:"vectors"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(doc.Vectors) != want {
		t.Fatalf("expected %d vectors in %s, found %d", want, file, len(doc.Vectors))
	}
	return doc.Vectors
}

// Every vector flagd produced lands in the same variant here.
func TestBucketMatchesFlagd(t *testing.T) {
	for i, v := range loadFlagdVectors(t) {
		key := v.FlagKey + v.TargetingKey
		if v.BucketBy != "" {
			key = v.BucketValue
		}
		idx := Bucket(key, v.Distribution)
		if idx < 0 || string(v.Distribution[idx].Variant) != v.Variant {
			got := "<none>"
			if idx >= 0 {
				got = string(v.Distribution[idx].Variant)
			}
			t.Errorf("vector %d (flag %q, key %q): got %s, flagd says %s", i, v.FlagKey, key, got, v.Variant)
		}
	}
}

// 100k keys: each bucket within one percentage point of its weight.
func TestBucketDistribution(t *testing.T) {
	dist := []v1beta1.WeightedVariant{{Variant: "a", Weight: 10}, {Variant: "b", Weight: 25}, {Variant: "c", Weight: 0}, {Variant: "d", Weight: 65}}
	const n = 100000
	counts := make([]int, len(dist))
	for i := 0; i < n; i++ {
		counts[Bucket(fmt.Sprintf("flag-user-%d", i), dist)]++
	}
	for i, d := range dist {
		share := 100 * float64(counts[i]) / n
		if math.Abs(share-float64(d.Weight)) > 1 {
			t.Errorf("variant %s: %.2f%%, weight %d%%", d.Variant, share, d.Weight)
		}
	}
	if counts[2] != 0 {
		t.Errorf("a zero-weight variant received %d keys", counts[2])
	}
	if Bucket("x", []v1beta1.WeightedVariant{{Variant: "a"}}) != -1 {
		t.Error("zero total weight must pick nothing")
	}
}
