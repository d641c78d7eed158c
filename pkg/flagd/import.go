// Package flagd translates flagd flag definitions into Flagpole Flags and
// Segments, and back: the library behind `kubectl flagpole import flagd`,
// `import featureflags` and `export flagd`.
//
// Targeting rules (JsonLogic) are parsed into a tree and translated into
// CEL by structure, with the engine's flagd-compatible functions
// (pkg/evaluation/flagd.go), so that an imported flag answers every context
// as flagd v0.17 does. What cannot be translated exactly is refused with its
// JSON path, all problems at once. docs/flagd-import.md describes the
// translation operator by operator.
package flagd

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/install"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/validation"
	"github.com/flagpole-dev/flagpole/pkg/registry/flagpole/expression"
)

// Annotations an imported object carries: what flagd had that Flagpole has
// no field for, so that an export gives flagd back the same flag.
const (
	// AnnotationTargeting is the flag's targeting as written, its
	// references to evaluators kept.
	AnnotationTargeting = "flagd.flagpole.dev/targeting"
	// AnnotationEvaluators holds the evaluators the targeting refers to.
	AnnotationEvaluators = "flagd.flagpole.dev/evaluators"
	// AnnotationMetadata is the metadata flagd reports with the flag's
	// evaluations: the flag's over its document's.
	AnnotationMetadata = "flagd.flagpole.dev/metadata"
	// AnnotationDefaultVariant is a DISABLED flag's defaultVariant: flagd
	// answers a disabled flag with the caller's default, so the Flag has
	// none (see docs/flagd-import.md).
	AnnotationDefaultVariant = "flagd.flagpole.dev/default-variant"
	// AnnotationFractional says which fractional bucketing the import
	// assumed for the flag's rollouts: v1 or v2.
	AnnotationFractional = "flagd.flagpole.dev/fractional"
	// AnnotationEvaluator, on a Segment, is the evaluator it was made from.
	AnnotationEvaluator = "flagd.flagpole.dev/evaluator"
)

// Fractional names flagd's two fractional bucketings.
type Fractional string

const (
	// FractionalV2 is flagd's bucketing since 2026 (flagd core v0.16).
	FractionalV2 Fractional = "v2"
	// FractionalV1 is flagd's bucketing before (flagd core up to v0.13),
	// for flags whose users must keep the buckets an older flagd gave them.
	FractionalV1 Fractional = "v1"
)

// Options tunes an import.
type Options struct {
	// Namespace is the namespace of the objects; empty leaves it unset
	// (kubectl's current namespace applies).
	Namespace string
	// Fractional is the bucketing the flags' fractional operators were
	// evaluated with; empty means FractionalV2.
	Fractional Fractional
}

// Result is what an import produces.
type Result struct {
	Flags    []v1beta1.Flag
	Segments []v1beta1.Segment
	// Fractional is the bucketing assumed.
	Fractional Fractional
	// Notes say what the import decided where flagd and Flagpole differ in
	// form but not in answers (and the assumption about fractional).
	Notes []Problem
}

// Import translates the flags of sources, merged as flagd merges them,
// into Flags and the Segments they name. Any problem fails the whole
// import: the error is Problems, listing every one.
func Import(sources []Source, opts Options) (*Result, error) {
	if opts.Fractional == "" {
		opts.Fractional = FractionalV2
	}
	if opts.Fractional != FractionalV1 && opts.Fractional != FractionalV2 {
		return nil, Problems{{Detail: fmt.Sprintf("unknown fractional bucketing %q: v1 or v2", opts.Fractional)}}
	}
	imp := &importer{opts: opts, segs: map[segmentKey]*segment{}, segNames: map[string]segmentKey{}}
	defs := parseDocuments(sources, &imp.errs, &imp.notes)
	res := &Result{Fractional: opts.Fractional}
	var fractional []string
	for _, def := range defs {
		f, usesFrac := imp.flag(def)
		if f == nil {
			continue
		}
		res.Flags = append(res.Flags, *f)
		if usesFrac {
			fractional = append(fractional, def.key)
		}
	}
	for _, name := range imp.segOrder {
		s := imp.segs[imp.segNames[name]]
		if s.used {
			res.Segments = append(res.Segments, imp.segmentObject(s))
		}
	}
	slices.SortFunc(res.Segments, func(a, b v1beta1.Segment) int { return strings.Compare(a.Name, b.Name) })
	if len(imp.errs) > 0 {
		return nil, dedupe(imp.errs)
	}
	if len(fractional) > 0 {
		detail := fmt.Sprintf("fractional: assumed flagd's fractional-%s bucketing (flagd since 2026, core v0.16) for %s; import with fractional v1 flags from an older flagd whose users must keep their buckets",
			opts.Fractional, strings.Join(fractional, ", "))
		if opts.Fractional == FractionalV1 {
			detail = fmt.Sprintf("fractional: assumed flagd's fractional-v1 bucketing (flagd core up to v0.13) for %s", strings.Join(fractional, ", "))
		}
		imp.notes = append(imp.notes, Problem{Detail: detail})
	}
	res.Notes = imp.notes
	return res, nil
}

func dedupe(ps Problems) Problems {
	var out Problems
	seen := map[Problem]bool{}
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

type importer struct {
	opts     Options
	errs     Problems
	notes    Problems
	segs     map[segmentKey]*segment
	segNames map[string]segmentKey
	segOrder []string
}

type segmentKey struct {
	doc  *document
	name string
}

// segment is an evaluator that became a Segment.
type segment struct {
	name, evaluator, when string
	body                  *value
	ok, used              bool
	source                string
}

// segmentFor is the Segment a condition that is an evaluator becomes, or
// "" to keep it in the rule. An evaluator becomes one Segment for all the
// flags of its document that test it as a condition, named after it.
func (imp *importer) segmentFor(r *ruleBuilder, s step) string {
	if s.n.ref == "" {
		return ""
	}
	key := segmentKey{r.def.doc, s.n.ref}
	seg, seen := imp.segs[key]
	if !seen {
		seg = &segment{evaluator: s.n.ref, source: r.def.doc.source.Name, body: r.def.doc.evaluators[s.n.ref]}
		imp.segs[key] = seg
		name := strings.ReplaceAll(strings.ToLower(s.n.ref), "_", "-")
		if _, taken := imp.segNames[name]; !taken && len(utilvalidation.IsDNS1123Subdomain(name)) == 0 {
			when, err := r.b.print(s.c)
			if err == nil && len(expression.Compile(field.NewPath("when"), when, validation.ExpressionSegmentWhen, false)) == 0 {
				seg.name, seg.when, seg.ok = name, when, true
				imp.segNames[name] = key
				imp.segOrder = append(imp.segOrder, name)
			}
		}
	}
	if !seg.ok {
		return ""
	}
	seg.used = true
	return seg.name
}

func (imp *importer) segmentObject(s *segment) v1beta1.Segment {
	return v1beta1.Segment{
		TypeMeta: metav1.TypeMeta{APIVersion: v1beta1.SchemeGroupVersion.String(), Kind: "Segment"},
		ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: imp.opts.Namespace,
			Annotations: map[string]string{AnnotationEvaluator: s.evaluator}},
		Spec: v1beta1.SegmentSpec{
			Description: fmt.Sprintf("flagd evaluator %q", s.evaluator),
			When:        s.when,
		},
	}
}

// flag translates one flag; nil after a problem.
func (imp *importer) flag(def *flagDef) (*v1beta1.Flag, bool) {
	p := problems{list: &imp.errs, source: def.doc.source.Name}
	before := len(imp.errs)
	f := &v1beta1.Flag{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1beta1.SchemeGroupVersion.String(), Kind: "Flag"},
		ObjectMeta: metav1.ObjectMeta{Name: def.key, Namespace: imp.opts.Namespace},
		Spec: v1beta1.FlagSpec{
			State:          v1beta1.FlagStateEnabled,
			DefaultVariant: v1beta1.VariantName(def.defaultVariant),
		},
	}
	f.Spec.Type = flagType(p, def)
	names := make([]string, len(def.values))
	isName := map[string]bool{}
	for i, m := range def.values {
		names[i] = m.key
		isName[m.key] = true
		f.Spec.Variants = append(f.Spec.Variants, v1beta1.Variant{Name: v1beta1.VariantName(m.key), Value: v1beta1.JSON{Raw: []byte(m.val.marshal())}})
	}
	annotations := map[string]string{}
	if def.metadata != nil && len(def.metadata.obj) > 0 {
		annotations[AnnotationMetadata] = def.metadata.marshal()
	}
	if def.state == "DISABLED" {
		f.Spec.State = v1beta1.FlagStateDisabled
		if def.defaultVariant != "" {
			// flagd answers a disabled flag with the caller's default.
			f.Spec.DefaultVariant = ""
			annotations[AnnotationDefaultVariant] = def.defaultVariant
			imp.notes = append(imp.notes, Problem{Source: def.doc.source.Name, Path: childPath(def.path, "state").String(),
				Detail: fmt.Sprintf("DISABLED: flagd answers a disabled flag with the caller's default value, so spec.defaultVariant is empty and flagd's %q is kept in annotation %s; set spec.defaultVariant before enabling the flag in Flagpole", def.defaultVariant, AnnotationDefaultVariant)})
		}
	}
	r := &ruleBuilder{
		translator: &translator{p: p, b: newCELBuilder(), v1: imp.opts.Fractional == FractionalV1},
		imp:        imp, def: def, names: names, isName: isName, used: map[string]bool{},
	}
	if t := def.targeting; t != nil && !(t.typ == typeObject && len(t.obj) == 0) {
		r.prefix = t.path.String()
		annotations[AnnotationTargeting] = def.targetingRaw.marshal()
		if evs := referencedEvaluators(def); evs != nil {
			annotations[AnnotationEvaluators] = evs.marshal()
		}
		r.walk(parseLogic(p, t, t.path, false), nil, false)
		if len(r.rules) == 0 && !r.failed {
			// The targeting always yields null: flagd answers DEFAULT (not
			// STATIC), as Flagpole does for a flag with rules none matches.
			r.rules = append(r.rules, v1beta1.Rule{Name: "targeting", When: "false", Variant: v1beta1.VariantName(names[0])})
			r.origins = append(r.origins, t.path)
		}
		if r.usesFrac {
			annotations[AnnotationFractional] = string(imp.opts.Fractional)
		}
	}
	f.Spec.Rules = r.rules
	if len(annotations) > 0 {
		f.Annotations = annotations
	}
	if len(imp.errs) > before {
		return nil, false
	}
	imp.validate(p, def, f, r.origins)
	if len(imp.errs) > before {
		return nil, false
	}
	return f, r.usesFrac
}

// referencedEvaluators is the document's evaluators the targeting names.
func referencedEvaluators(def *flagDef) *value {
	var names []string
	var walk func(v *value)
	walk = func(v *value) {
		if name, ok := refName(v); ok {
			if _, known := def.doc.evaluators[name]; known && !slices.Contains(names, name) {
				names = append(names, name)
			}
			return
		}
		for _, el := range v.arr {
			walk(el)
		}
		for _, m := range v.obj {
			walk(m.val)
		}
	}
	walk(def.targetingRaw)
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	out := &value{typ: typeObject}
	for _, n := range names {
		out.obj = append(out.obj, member{key: n, val: def.doc.evaluators[n]})
	}
	return out
}

// flagType is the one type of every variant value.
func flagType(p problems, def *flagDef) v1beta1.FlagType {
	var t v1beta1.FlagType
	for _, m := range def.values {
		var vt v1beta1.FlagType
		switch m.val.typ {
		case typeBool:
			vt = v1beta1.FlagTypeBoolean
		case typeString:
			vt = v1beta1.FlagTypeString
		case typeNumber:
			vt = v1beta1.FlagTypeNumber
		case typeObject, typeArray:
			vt = v1beta1.FlagTypeObject
		default:
			p.add(m.val.path, "a variant's value must be a boolean, string, number or object, not null")
			continue
		}
		if t != "" && vt != t {
			p.add(m.val.path, "is %s, but an earlier variant is %s: every variant of a flag has one type", vt, t)
			continue
		}
		t = vt
	}
	return t
}

var (
	scheme       = newScheme()
	ruleIndexRe  = regexp.MustCompile(`^spec\.rules\[(\d+)\]`)
	variantIndex = regexp.MustCompile(`^spec\.variants\[(\d+)\]`)
)

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	install.Install(s)
	return s
}

// validate runs the server's validation (the engine's CEL compiler
// included) on f, reporting what it refuses at the flagd path it came from.
func (imp *importer) validate(p problems, def *flagDef, f *v1beta1.Flag, origins []*field.Path) {
	internal := &flagpole.Flag{}
	obj := f.DeepCopy()
	if obj.Namespace == "" {
		obj.Namespace = "default"
	}
	if err := scheme.Convert(obj, internal, nil); err != nil {
		p.add(def.path, "%v", err)
		return
	}
	for _, e := range validation.ValidateFlag(internal, expression.Compile) {
		at := def.path
		switch {
		case strings.HasPrefix(e.Field, "metadata.name"):
			p.add(def.path, "the flag key %q is not a Flagpole flag name (%s): applications ask for the flag by this key, so it is not renamed", def.key, e.Detail)
			continue
		case ruleIndexRe.MatchString(e.Field):
			i, _ := strconv.Atoi(ruleIndexRe.FindStringSubmatch(e.Field)[1])
			if i < len(origins) {
				at = origins[i]
			}
		case variantIndex.MatchString(e.Field):
			i, _ := strconv.Atoi(variantIndex.FindStringSubmatch(e.Field)[1])
			if i < len(def.values) {
				at = def.values[i].val.path
			}
		case e.Field == "spec.rules":
			if def.targeting != nil {
				at = def.targeting.path
			}
		}
		p.add(at, "translates to %s, which Flagpole refuses: %s", e.Field, e.ErrorBody())
	}
}
