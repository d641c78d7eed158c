package evaluation

import (
	"github.com/twmb/murmur3"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// Bucket picks the index of the distribution entry key falls into. It is
// bit-for-bit flagd's `fractional` operator (its integer bucketing): murmur3
// x86 32-bit with seed 0 over key, scaled into [0, total weight) by
// (hash × total) >> 32, then the distribution walked in order. The same key
// lands in the same variant in Flagpole and in flagd.
//
// It returns -1 when the weights add up to zero (validation prevents that).
func Bucket(key string, distribution []v1beta1.WeightedVariant) int {
	var total uint64
	for _, d := range distribution {
		if d.Weight > 0 {
			total += uint64(d.Weight)
		}
	}
	if total == 0 {
		return -1
	}
	bucket := (uint64(murmur3.StringSum32(key)) * total) >> 32
	var upper uint64
	for i, d := range distribution {
		if d.Weight <= 0 {
			continue
		}
		upper += uint64(d.Weight)
		if bucket < upper {
			return i
		}
	}
	return len(distribution) - 1
}
