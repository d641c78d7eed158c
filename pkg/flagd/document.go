package flagd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Source is one flagd flag definition document: a file (flagd's "flags"
// schema, https://flagd.dev/schema/v0/flags.json), or the spec.flagSpec of
// an OpenFeature Operator FeatureFlag. Several sources are merged as flagd
// merges its sources: in order, a later source's flag replacing an earlier
// one with the same key (and flag set).
type Source struct {
	// Name names the source in problems: a file name, "-" for standard
	// input, "FeatureFlag <namespace>/<name>".
	Name string
	// Data is the document, JSON.
	Data []byte

	// root is the path of the document within what Name names.
	root *field.Path
}

// Problem is something in a source that cannot be imported (or exported)
// exactly, at its JSON path.
type Problem struct {
	// Source is the Source.Name (or, on export, the object) it is in.
	Source string
	// Path is the JSON path, e.g. flags.my-flag.targeting.if[0].some_unknown_op.
	Path string
	// Detail says what is wrong and, where there is one, what to do.
	Detail string
}

func (p Problem) String() string {
	var parts []string
	for _, s := range []string{p.Source, p.Path} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(append(parts, p.Detail), ": ")
}

// Problems is every problem found; as an error it lists them all.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// problems collects Problems for one source.
type problems struct {
	list   *Problems
	source string
}

func (p problems) add(path *field.Path, format string, args ...any) {
	at := ""
	if path != nil {
		at = path.String()
	}
	*p.list = append(*p.list, Problem{Source: p.source, Path: at, Detail: fmt.Sprintf(format, args...)})
}

// FeatureFlag API group and kind (OpenFeature Operator).
const (
	featureFlagGroup = "core.openfeature.dev"
	featureFlagKind  = "FeatureFlag"
)

// FeatureFlagSources turns OpenFeature Operator FeatureFlag objects
// (core.openfeature.dev, any version), as read from a cluster or decoded
// from files, into sources: each object's spec.flagSpec is a flagd
// document. Objects of another kind are problems.
func FeatureFlagSources(objs []*unstructured.Unstructured) ([]Source, error) {
	var (
		out  []Source
		errs Problems
	)
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		name := fmt.Sprintf("%s %s", featureFlagKind, o.GetName())
		if o.GetNamespace() != "" {
			name = fmt.Sprintf("%s %s/%s", featureFlagKind, o.GetNamespace(), o.GetName())
		}
		if gvk.Group != featureFlagGroup || gvk.Kind != featureFlagKind {
			errs = append(errs, Problem{Source: fmt.Sprintf("%s %s", gvk.Kind, o.GetName()), Path: "kind",
				Detail: fmt.Sprintf("is %s, not a %s.%s", gvk.GroupKind(), featureFlagKind, featureFlagGroup)})
			continue
		}
		spec, found, err := unstructured.NestedFieldNoCopy(o.Object, "spec", "flagSpec")
		if err != nil || !found {
			errs = append(errs, Problem{Source: name, Path: "spec.flagSpec", Detail: "missing: a FeatureFlag holds its flags in spec.flagSpec"})
			continue
		}
		data, err := json.Marshal(spec)
		if err != nil {
			errs = append(errs, Problem{Source: name, Path: "spec.flagSpec", Detail: err.Error()})
			continue
		}
		out = append(out, Source{Name: name, Data: data, root: field.NewPath("spec", "flagSpec")})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// ReadFeatureFlags decodes the YAML or JSON documents of r (separated by
// "---", as kubectl reads them; a List's items count one by one) into
// FeatureFlag objects and turns them into sources. name names r in
// problems.
func ReadFeatureFlags(r io.Reader, name string) ([]Source, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(io.LimitReader(r, MaxDocumentBytes+1), 4096)
	var objs []*unstructured.Unstructured
	for i := 0; ; i++ {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, Problems{{Source: name, Path: fmt.Sprintf("document %d", i+1), Detail: err.Error()}}
		}
		if doc == nil {
			continue
		}
		u := &unstructured.Unstructured{Object: doc}
		if u.IsList() {
			list, err := u.ToList()
			if err != nil {
				return nil, Problems{{Source: name, Path: fmt.Sprintf("document %d", i+1), Detail: err.Error()}}
			}
			for j := range list.Items {
				objs = append(objs, &list.Items[j])
			}
			continue
		}
		objs = append(objs, u)
	}
	return FeatureFlagSources(objs)
}

// document is one parsed source.
type document struct {
	source     Source
	root       *field.Path
	evaluators map[string]*value
	metadata   *value
}

// flagDef is one flag as flagd holds it after merging its sources.
type flagDef struct {
	key    string
	doc    *document
	path   *field.Path
	state  string
	values []member // variants, in document order
	// defaultVariant is "" for none (null or absent: the caller's default).
	defaultVariant string
	// targeting is nil when absent; refs are resolved in it, and it keeps
	// the $ref objects where they were in targetingRaw.
	targeting    *value
	targetingRaw *value
	// metadata is the flag's metadata over its document's, as flagd
	// reports it (nil for none).
	metadata  *value
	flagSetID string
}

// parseDocuments reads and merges sources as flagd does.
func parseDocuments(sources []Source, errs, notes *Problems) []*flagDef {
	var (
		flags []*flagDef
		index = map[string]int{}
	)
	for _, src := range sources {
		p := problems{list: errs, source: src.Name}
		root := src.root
		top, err := decodeJSON(src.Data, root)
		if err != nil {
			p.add(nil, "%v", err)
			continue
		}
		if top.typ != typeObject {
			p.add(nil, "a flagd document is a JSON object, not %s", top.typeName())
			continue
		}
		doc := &document{source: src, root: root, evaluators: map[string]*value{}}
		if ev := top.get("$evaluators"); ev != nil {
			if ev.typ != typeObject {
				p.add(ev.path, "must be an object of named targeting rules, not %s", ev.typeName())
			} else {
				for _, m := range ev.obj {
					if len(m.val.marshal()) < 3 {
						// flagd refuses the whole file.
						p.add(m.val.path, "flagd refuses an empty evaluator")
						continue
					}
					doc.evaluators[m.key] = m.val
				}
			}
		}
		if md := top.get("metadata"); md != nil && md.typ != typeNull {
			if md.typ != typeObject {
				p.add(md.path, "must be an object, not %s", md.typeName())
			} else {
				doc.metadata = md
			}
		}
		fv := top.get("flags")
		switch {
		case fv == nil:
			p.add(childPath(root, "flags"), "required: the flags of the document")
			continue
		case fv.typ == typeObject:
			for _, m := range fv.obj {
				if def := parseFlag(p, doc, m.key, m.val, m.val.path); def != nil {
					flags = mergeFlag(p, notes, flags, index, def)
				}
			}
		case fv.typ == typeArray:
			// flagd also reads flags as a list of objects with a key.
			for _, el := range fv.arr {
				k := el.get("key")
				if k == nil || k.typ != typeString {
					p.add(childPath(el.path, "key"), "required: each flag of a list has a string key")
					continue
				}
				if def := parseFlag(p, doc, k.s, el, el.path); def != nil {
					flags = mergeFlag(p, notes, flags, index, def)
				}
			}
		default:
			p.add(fv.path, "must be an object of flags, not %s", fv.typeName())
		}
	}
	return flags
}

func mergeFlag(p problems, notes *Problems, flags []*flagDef, index map[string]int, def *flagDef) []*flagDef {
	i, seen := index[def.key]
	if !seen {
		index[def.key] = len(flags)
		return append(flags, def)
	}
	prev := flags[i]
	if prev.flagSetID != def.flagSetID {
		p.add(def.path, "flag %q is also defined in flag set %q of %s: one namespace holds one flag of a key; import each flag set into a namespace of its own",
			def.key, prev.flagSetID, prev.doc.source.Name)
		return flags
	}
	// flagd: the later source wins.
	*notes = append(*notes, Problem{Source: p.source, Path: def.path.String(),
		Detail: fmt.Sprintf("replaces flag %q of %s: flagd gives a later source priority", def.key, prev.doc.source.Name)})
	flags[i] = def
	return flags
}

func parseFlag(p problems, doc *document, key string, v *value, path *field.Path) *flagDef {
	if v.typ != typeObject {
		p.add(path, "a flag is an object, not %s", v.typeName())
		return nil
	}
	def := &flagDef{key: key, doc: doc, path: path}
	ok := true
	switch st := v.get("state"); {
	case st == nil:
		p.add(childPath(path, "state"), "required: ENABLED or DISABLED")
		ok = false
	case st.typ != typeString || (st.s != "ENABLED" && st.s != "DISABLED"):
		p.add(st.path, "must be ENABLED or DISABLED, not %s", st.marshal())
		ok = false
	default:
		def.state = st.s
	}
	vars := v.get("variants")
	switch {
	case vars == nil:
		p.add(childPath(path, "variants"), "required: the flag's variants")
		ok = false
	case vars.typ != typeObject || len(vars.obj) == 0:
		p.add(vars.path, "must be an object with at least one variant")
		ok = false
	default:
		def.values = vars.obj
	}
	if dv := v.get("defaultVariant"); dv != nil && dv.typ != typeNull {
		switch {
		case dv.typ != typeString:
			p.add(dv.path, "must be a variant name or null, not %s", dv.typeName())
			ok = false
		case vars != nil && vars.get(dv.s) == nil:
			// flagd refuses the whole file.
			p.add(dv.path, "%q is not one of the flag's variants", dv.s)
			ok = false
		default:
			def.defaultVariant = dv.s
		}
	}
	def.targetingRaw = v.get("targeting")
	def.metadata = effectiveMetadata(p, doc.metadata, v.get("metadata"))
	if id := def.metadata.get("flagSetId"); id != nil && id.typ == typeString {
		def.flagSetID = id.s
	}
	if !ok {
		return nil
	}
	// flagd replaces references to evaluators in the whole document.
	vals := make([]member, len(def.values))
	for i, m := range def.values {
		vals[i] = member{key: m.key, val: resolveRefs(p, doc, m.val)}
	}
	def.values = vals
	def.metadata = resolveRefs(p, doc, def.metadata)
	if def.targetingRaw != nil {
		def.targeting = resolveRefs(p, doc, def.targetingRaw)
	}
	return def
}

// effectiveMetadata is a flag's metadata over its document's: what flagd
// reports with the flag's evaluations.
func effectiveMetadata(p problems, doc, flag *value) *value {
	if flag != nil && flag.typ != typeNull && flag.typ != typeObject {
		p.add(flag.path, "must be an object, not %s", flag.typeName())
		flag = nil
	}
	if flag != nil && flag.typ == typeNull {
		flag = nil
	}
	if doc == nil && flag == nil {
		return nil
	}
	out := &value{typ: typeObject}
	for _, src := range []*value{doc, flag} {
		if src == nil {
			continue
		}
		if out.path == nil {
			out.path = src.path
		}
		for _, m := range src.obj {
			replaced := false
			for i := range out.obj {
				if out.obj[i].key == m.key {
					out.obj[i].val, replaced = m.val, true
				}
			}
			if !replaced {
				out.obj = append(out.obj, m)
			}
		}
	}
	if flag != nil {
		out.path = flag.path
	}
	return out
}

// refName is the evaluator an object {"$ref": "name"} refers to.
func refName(v *value) (string, bool) {
	if v == nil || v.typ != typeObject || len(v.obj) != 1 || v.obj[0].key != "$ref" || v.obj[0].val.typ != typeString {
		return "", false
	}
	return v.obj[0].val.s, true
}

// resolveRefs copies v with every {"$ref": name} of a known evaluator
// replaced by the evaluator, marked with its name. An evaluator that refers
// to another is refused: flagd replaces references one evaluator at a time,
// in an order Go's map iteration makes random, so whether such a reference
// resolves differs from one start of flagd to the next.
func resolveRefs(p problems, doc *document, v *value) *value {
	if v == nil {
		return nil
	}
	if name, ok := refName(v); ok {
		body, known := doc.evaluators[name]
		if !known {
			return v
		}
		if inner := findRef(doc, body); inner != nil {
			n, _ := refName(inner)
			p.add(inner.path, "evaluator %q refers to evaluator %q: flagd resolves such references in a random order, so its answer changes between restarts; inline %q into %q", name, n, n, name)
		}
		c := copyValue(body)
		c.ref = name
		c.refAt = v.path
		return c
	}
	switch v.typ {
	case typeArray:
		c := *v
		c.arr = make([]*value, len(v.arr))
		for i, el := range v.arr {
			c.arr[i] = resolveRefs(p, doc, el)
		}
		return &c
	case typeObject:
		c := *v
		c.obj = make([]member, len(v.obj))
		for i, m := range v.obj {
			c.obj[i] = member{key: m.key, val: resolveRefs(p, doc, m.val)}
		}
		return &c
	}
	return v
}

// findRef is the first reference to a known evaluator within v.
func findRef(doc *document, v *value) *value {
	if name, ok := refName(v); ok {
		if _, known := doc.evaluators[name]; known {
			return v
		}
	}
	for _, el := range v.arr {
		if r := findRef(doc, el); r != nil {
			return r
		}
	}
	for _, m := range v.obj {
		if r := findRef(doc, m.val); r != nil {
			return r
		}
	}
	return nil
}

func copyValue(v *value) *value {
	c := *v
	if v.arr != nil {
		c.arr = make([]*value, len(v.arr))
		for i, el := range v.arr {
			c.arr[i] = copyValue(el)
		}
	}
	if v.obj != nil {
		c.obj = make([]member, len(v.obj))
		for i, m := range v.obj {
			c.obj[i] = member{key: m.key, val: copyValue(m.val)}
		}
	}
	return &c
}
