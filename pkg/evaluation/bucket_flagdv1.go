package evaluation

import (
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// BucketFlagdV1 picks the index of the distribution entry key falls into
// the way flagd's `fractional` operator did before 2026 (flagd core up to
// v0.13, "fractional-v1"): the murmur3 x86 32-bit hash (seed 0) read as a
// signed int32, its absolute value divided by 2³¹−1 and scaled to [0, 100],
// then the distribution walked in order, adding each variant's percentage
// 100 × weight / total in float64, until the sum exceeds the bucket. The
// arithmetic is flagd's, step for step, so rounding lands keys where flagd
// landed them.
//
// It returns -1 where flagd found no bucket and answered the empty variant:
// a hash of ±(2³¹−1) or −2³¹ scales to 100 or just above it, and a
// distribution whose percentages do not sum to exactly 100.0 in floating
// point leaves a sliver below 100 uncovered. It also returns -1 when the
// weights add up to zero (validation prevents that).
func BucketFlagdV1(key string, distribution []v1beta1.WeightedVariant) int {
	weights := make([]int, len(distribution))
	for i, d := range distribution {
		weights[i] = int(d.Weight)
	}
	return flagdV1Bucket(key, weights)
}
