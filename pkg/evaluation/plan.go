package evaluation

import (
	"math/bits"

	"github.com/twmb/murmur3"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// planSplit is a rollout plan in effect: the plan's variant gets weight
// percent of the rule's traffic. A key first falls into the distribution's
// bucket as it would without the plan (flagd's buckets); a key whose bucket
// is another variant moves to the plan's variant when a second hash of it
// falls below the share moved, q = (p·T − 100·w) / (100·(T − w)) for a
// distribution of total weight T giving the plan's variant w. The key
// moves when q grows past its hash and stays moved as q grows further
// (sticky as the plan advances), keeps its bucket's variant until then (no
// key changes between the other variants), and is back where it was before
// the plan when the weight returns to 0 (an abort).
type planSplit struct {
	variant string
	// moved is q as the fraction num / den.
	num, den uint64
}

// planSeed makes the second hash independent of the bucket's (seed 0):
// a fixed, arbitrary choice that can never change (keys would move).
const planSeed = 0x5f1d3a27

// PlanWeight is the weight in effect of the plan of rule, from the flag's
// status: 0 (the distribution alone) while the plan has not started.
func PlanWeight(flag *v1beta1.Flag, rule string) int32 {
	for i := range flag.Status.Rollouts {
		if s := &flag.Status.Rollouts[i]; s.Rule == rule {
			return min(max(s.Weight, 0), 100)
		}
	}
	return 0
}

// newPlanSplit is the split of plan at weight percent over dist, nil when
// no key moves (the distribution alone decides).
func newPlanSplit(plan *v1beta1.RolloutPlan, dist []v1beta1.WeightedVariant, weight int32) *planSplit {
	if plan == nil || weight <= 0 {
		return nil
	}
	var total, own uint64
	for _, d := range dist {
		if d.Weight > 0 {
			total += uint64(d.Weight)
			if d.Variant == plan.Variant {
				own += uint64(d.Weight)
			}
		}
	}
	p := uint64(min(weight, 100))
	if total == 0 || p*total <= 100*own {
		return nil
	}
	return &planSplit{variant: string(plan.Variant), num: p*total - 100*own, den: 100 * (total - own)}
}

// pick is the variant of key whose bucket's variant is bucketed.
func (s *planSplit) pick(key, bucketed string) string {
	if s == nil || bucketed == s.variant {
		return bucketed
	}
	if s.num >= s.den {
		return s.variant
	}
	// moved iff h / 2³² < num / den, in 128-bit integers: h·den < num·2³².
	h := uint64(murmur3.SeedStringSum32(planSeed, key))
	hHi, hLo := bits.Mul64(h, s.den)
	nHi, nLo := bits.Mul64(s.num, 1<<32)
	if hHi < nHi || (hHi == nHi && hLo < nLo) {
		return s.variant
	}
	return bucketed
}
