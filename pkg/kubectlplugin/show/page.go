package show

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/exit"
)

// Page is what the readable view of one flag shows.
type Page struct {
	Flag *v1beta1.Flag
	// Overrides are the flag's FlagOverrides; OverridesErr says why they
	// could not be listed (a Role that may read flags but not overrides).
	Overrides    []v1beta1.FlagOverride
	OverridesErr error
	// Segments are the segments the rules name, by name: nil for one that
	// does not exist; SegmentsErr says why they could not be read.
	Segments    map[string]*v1beta1.Segment
	SegmentsErr error
}

// Gather reads what the page of f shows besides f: its overrides and the
// segments its rules name. What the user may not read is noted on the page,
// not an error.
func Gather(ctx context.Context, client clientset.Interface, f *v1beta1.Flag) (*Page, error) {
	p := &Page{Flag: f, Segments: map[string]*v1beta1.Segment{}}
	overrides, err := client.FlagpoleV1beta1().FlagOverrides(f.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector(flagpole.FlagOverrideFieldFlag, f.Name).String(),
	})
	if err != nil {
		if !apierrors.IsForbidden(err) {
			return nil, exit.FromAPI(err, exit.Target{Verb: "list", Resource: "flagoverrides", Namespace: f.Namespace})
		}
		p.OverridesErr = err
	} else {
		p.Overrides = overrides.Items
		sort.Slice(p.Overrides, func(i, j int) bool { return p.Overrides[i].Name < p.Overrides[j].Name })
	}
	for _, r := range f.Spec.Rules {
		for _, name := range r.Segments {
			if _, seen := p.Segments[name]; seen || p.SegmentsErr != nil {
				continue
			}
			s, err := client.FlagpoleV1beta1().Segments(f.Namespace).Get(ctx, name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				p.Segments[name] = nil
			case apierrors.IsForbidden(err):
				p.SegmentsErr = err
			case err != nil:
				return nil, exit.FromAPI(err, exit.Target{Verb: "get", Resource: "segments", Namespace: f.Namespace, Name: name})
			default:
				p.Segments[name] = s
			}
		}
	}
	return p, nil
}

// barWidth is how many characters a rollout bar has.
const barWidth = 20

// Write prints the page, with times measured from now.
func (p *Page) Write(out io.Writer, now time.Time) error {
	f := p.Flag
	var b strings.Builder
	field := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "%-13s%s\n", label+":", fmt.Sprintf(format, args...))
	}
	sub := func(label, format string, args ...any) {
		b.WriteString(strings.TrimRight(fmt.Sprintf("     %-11s%s", label+":", fmt.Sprintf(format, args...)), " ") + "\n")
	}
	field("Flag", "%s/%s", f.Namespace, f.Name)
	if f.Spec.Description != "" {
		field("Description", "%s", f.Spec.Description)
	}
	field("Type", "%s", f.Spec.Type)
	state := string(f.Spec.State)
	if f.Spec.State == v1beta1.FlagStateDisabled {
		state += " (kill switch on: every evaluation answers DISABLED)"
	}
	field("State", "%s", state)
	if f.Spec.DefaultVariant == "" {
		field("Default", "(none: the caller's code default)")
	} else {
		field("Default", "%s = %s", f.Spec.DefaultVariant, VariantValue(f, f.Spec.DefaultVariant))
	}
	if f.Spec.Owner != "" {
		field("Owner", "%s", f.Spec.Owner)
	}
	if f.Spec.ExpiresAt != nil {
		field("Expires", "%s (%s)", f.Spec.ExpiresAt.UTC().Format(time.RFC3339), relative(f.Spec.ExpiresAt.Time, now))
	}
	if f.Spec.Lifecycle != nil {
		field("Lifecycle", "%s", f.Spec.Lifecycle.Kind)
	}
	field("Revision", "generation %d, resourceVersion %s", f.Generation, f.ResourceVersion)
	if c := f.Status.LastChange; c != nil {
		who := c.User
		if who == "" {
			who = "unknown"
		}
		field("Changed", "%s by %s (generation %d)", relative(c.Time.Time, now), who, c.Generation)
	}
	writeUsage(&b, f.Status.Usage, now)

	b.WriteString("Variants:\n")
	table(&b, "  ", func(w io.Writer) {
		for _, v := range f.Spec.Variants {
			fmt.Fprintf(w, "%s\t%s\n", v.Name, string(v.Value.Raw))
		}
	})

	if len(f.Spec.Rules) == 0 {
		field("Rules", "none: every evaluation serves the default (STATIC)")
	} else {
		b.WriteString("Rules:       (in order; the first that matches decides)\n")
	}
	for i, r := range f.Spec.Rules {
		fmt.Fprintf(&b, "  %d. %s\n", i+1, r.Name)
		for _, name := range r.Segments {
			sub("segment", "%s%s", name, p.segmentNote(name))
		}
		if r.When != "" {
			sub("when", "%s", r.When)
		}
		if r.Rollout == nil {
			sub("serve", "%s", r.Variant)
			continue
		}
		if r.Rollout.BucketBy != "" {
			sub("bucket by", "%s", r.Rollout.BucketBy)
		}
		if r.Rollout.Bucketing != "" && r.Rollout.Bucketing != v1beta1.RolloutBucketingFlagdV2 {
			sub("bucketing", "%s", r.Rollout.Bucketing)
		}
		if plan := r.Rollout.Plan; plan != nil {
			st := planStatus(f, r.Name)
			if st == nil {
				sub("plan", "rolls %s out in %d steps, not started yet (kubectl flagpole plan %s)", plan.Variant, len(plan.Steps), f.Name)
			} else {
				sub("plan", "%s, step %d of %d: %d%% on %s (kubectl flagpole plan %s)", st.Phase, st.Step+1, len(plan.Steps), st.Weight, plan.Variant, f.Name)
				if st.Weight > 0 {
					sub("serving", "")
					table(&b, "       ", func(w io.Writer) {
						for _, bar := range PlanBars(plan, r.Rollout.Distribution, st.Weight) {
							fmt.Fprintf(w, "%s\t%s %s\n", bar.Variant, bar.Bar, bar.Percent)
						}
					})
				}
			}
			sub("rollout", "(before the plan, and after an abort)")
		} else {
			sub("rollout", "")
		}
		table(&b, "       ", func(w io.Writer) {
			for _, bar := range RolloutBars(r.Rollout.Distribution) {
				fmt.Fprintf(w, "%s\t%s %s\n", bar.Variant, bar.Bar, bar.Percent)
			}
		})
	}

	switch {
	case p.OverridesErr != nil:
		field("Overrides", "not shown: %v", p.OverridesErr)
	case len(p.Overrides) == 0:
		field("Overrides", "none")
	default:
		b.WriteString("Overrides:\n")
		table(&b, "  ", func(w io.Writer) {
			for _, o := range p.Overrides {
				who := "everyone"
				if len(o.Spec.TargetingKeys) > 0 {
					who = strings.Join(o.Spec.TargetingKeys, ", ")
				}
				left := "no expiry recorded"
				if o.Status.ExpiresAt != nil {
					left = relative(o.Status.ExpiresAt.Time, now)
					if !o.Status.ExpiresAt.After(now) {
						left = "expired " + left + ": ignored"
					} else {
						left = "expires " + left
					}
				}
				fmt.Fprintf(w, "%s\t%s for %s, %s\n", o.Name, o.Spec.Variant, who, left)
			}
		})
	}

	if len(f.Status.Conditions) == 0 {
		field("Conditions", "none yet")
	} else {
		b.WriteString("Conditions:\n")
		table(&b, "  ", func(w io.Writer) {
			for _, c := range f.Status.Conditions {
				stale := ""
				if c.ObservedGeneration != 0 && c.ObservedGeneration != f.Generation {
					stale = fmt.Sprintf(" (for generation %d)", c.ObservedGeneration)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s%s\n", c.Type, c.Status, c.Reason, c.Message, stale)
			}
		})
	}
	_, err := io.WriteString(out, b.String())
	return err
}

// writeUsage is the Usage section: what real traffic did with the flag,
// where the server counts it (status.usage; absent with --usage-counting
// off, or from a server older than usage).
func writeUsage(b *strings.Builder, u *v1beta1.FlagUsage, now time.Time) {
	if u == nil {
		return
	}
	last := "never"
	if u.LastEvaluated != nil {
		last = relative(u.LastEvaluated.Time, now)
	}
	if u.CountingSince != nil {
		last += fmt.Sprintf(" (counted since %s)", u.CountingSince.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(b, "%-13s%s\n", "Evaluated:", last)
	if len(u.Windows) == 0 && len(u.Variants) == 0 {
		return
	}
	b.WriteString("Usage:\n")
	table(b, "  ", func(w io.Writer) {
		for _, win := range u.Windows {
			line := fmt.Sprintf("last %s\t%d evaluations", win.Window, win.Evaluations)
			if win.Errors > 0 {
				line += fmt.Sprintf(", %d errors", win.Errors)
			}
			var served []string
			for _, v := range win.Variants {
				served = append(served, fmt.Sprintf("%s %d", v.Name, v.Count))
			}
			if len(served) > 0 {
				line += " (" + strings.Join(served, ", ") + ")"
			}
			fmt.Fprintln(w, line)
		}
		for _, v := range u.Variants {
			fmt.Fprintf(w, "%s\tlast served %s\n", v.Name, relative(v.LastServed.Time, now))
		}
	})
}

// table writes rows aligned on their own columns, each line indented.
func table(b *strings.Builder, indent string, rows func(io.Writer)) {
	var buf bytes.Buffer
	w := printers.GetNewTabWriter(&buf)
	rows(w)
	_ = w.Flush()
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if line != "" {
			b.WriteString(indent + line)
		}
	}
}

func (p *Page) segmentNote(name string) string {
	if p.SegmentsErr != nil {
		return ""
	}
	if s, ok := p.Segments[name]; ok && s == nil {
		return " (does not exist: this rule matches no one)"
	}
	return ""
}

// VariantValue is a variant's JSON value, or a note that there is none.
func VariantValue(f *v1beta1.Flag, name v1beta1.VariantName) string {
	for _, v := range f.Spec.Variants {
		if v.Name == name {
			return string(v.Value.Raw)
		}
	}
	return "(no such variant)"
}

// Bar is one variant's share of a rollout, drawn.
type Bar struct {
	Variant string
	Bar     string
	Percent string
}

// RolloutBars draws a rollout's distribution: each variant's share of the
// total weight as a bar of barWidth characters and a percentage.
func RolloutBars(dist []v1beta1.WeightedVariant) []Bar {
	var total int64
	for _, d := range dist {
		total += int64(d.Weight)
	}
	bars := make([]Bar, 0, len(dist))
	for _, d := range dist {
		share := 0.0
		if total > 0 {
			share = float64(d.Weight) / float64(total)
		}
		filled := int(share*barWidth + 0.5)
		bars = append(bars, Bar{
			Variant: string(d.Variant),
			Bar:     strings.Repeat("█", filled) + strings.Repeat("░", barWidth-filled),
			Percent: Percent(share*100) + " (weight " + strconv.Itoa(int(d.Weight)) + ")",
		})
	}
	return bars
}

// planStatus is where rule's plan is, nil before it starts.
func planStatus(f *v1beta1.Flag, rule string) *v1beta1.RolloutStatus {
	for i := range f.Status.Rollouts {
		if f.Status.Rollouts[i].Rule == rule {
			return &f.Status.Rollouts[i]
		}
	}
	return nil
}

// PlanBars draws the split a plan at weight percent serves over dist: the
// plan's variant weight percent (or what the distribution gives it, if
// more), the others the rest in the distribution's proportions.
func PlanBars(plan *v1beta1.RolloutPlan, dist []v1beta1.WeightedVariant, weight int32) []Bar {
	var total, own float64
	for _, d := range dist {
		if d.Weight > 0 {
			total += float64(d.Weight)
			if d.Variant == plan.Variant {
				own += float64(d.Weight)
			}
		}
	}
	if total == 0 {
		return nil
	}
	share := max(float64(weight)/100, own/total)
	bar := func(variant string, s float64) Bar {
		filled := int(s*barWidth + 0.5)
		return Bar{Variant: variant, Bar: strings.Repeat("█", filled) + strings.Repeat("░", barWidth-filled), Percent: Percent(s * 100)}
	}
	bars := []Bar{bar(string(plan.Variant), share)}
	for _, d := range dist {
		if d.Variant == plan.Variant || d.Weight <= 0 {
			continue
		}
		bars = append(bars, bar(string(d.Variant), float64(d.Weight)/(total-own)*(1-share)))
	}
	return bars
}

// Percent prints a share with as few decimals as it needs (up to two).
func Percent(p float64) string {
	return strconv.FormatFloat(float64(int64(p*100+0.5))/100, 'f', -1, 64) + "%"
}

// relative says how far t is from now: "in 29m", "3d ago".
func relative(t, now time.Time) string {
	d := t.Sub(now)
	if d >= 0 {
		return "in " + duration.HumanDuration(d)
	}
	return duration.HumanDuration(-d) + " ago"
}
