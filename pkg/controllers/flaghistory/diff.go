package flaghistory

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// Bounds of a revision's diff: it says what changed, for people; the
// revision's spec is the exact record.
const (
	maxDiffLines    = 50
	maxDiffLineSize = 256
)

// Diff lists what changed from old to new, one line per changed field, in
// the spec's own JSON: "spec.state: "Enabled" → "Disabled"", "+ spec.x: v"
// for an added field, "- spec.x" for a removed one. Variants are compared
// by name, since their order means nothing; rules and rollouts by position,
// since theirs does.
func Diff(old, new *v1beta1.FlagSpec) []string {
	var lines []string
	more := 0
	emit := func(line string) {
		if len(lines) >= maxDiffLines {
			more++
			return
		}
		if len(line) > maxDiffLineSize {
			line = line[:maxDiffLineSize-3] + "..."
		}
		lines = append(lines, line)
	}
	diffValue("spec", toValue(old), toValue(new), emit)
	if more > 0 {
		lines[len(lines)-1] = fmt.Sprintf("... and %d more changes", more+1)
	}
	return lines
}

// toValue is v as encoding/json sees it, variants keyed by name.
func toValue(spec *v1beta1.FlagSpec) any {
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil
	}
	var v map[string]any
	if json.Unmarshal(raw, &v) != nil {
		return nil
	}
	if variants, ok := v["variants"].([]any); ok {
		byName := map[string]any{}
		for _, variant := range variants {
			if m, ok := variant.(map[string]any); ok {
				if name, ok := m["name"].(string); ok {
					byName[name] = m["value"]
				}
			}
		}
		v["variants"] = byName
	}
	return v
}

func diffValue(path string, old, new any, emit func(string)) {
	switch o := old.(type) {
	case map[string]any:
		if n, ok := new.(map[string]any); ok {
			keys := map[string]bool{}
			for k := range o {
				keys[k] = true
			}
			for k := range n {
				keys[k] = true
			}
			sorted := make([]string, 0, len(keys))
			for k := range keys {
				sorted = append(sorted, k)
			}
			sort.Strings(sorted)
			for _, k := range sorted {
				child := path + "." + k
				ov, inOld := o[k]
				nv, inNew := n[k]
				switch {
				case !inOld:
					emit("+ " + child + ": " + show(nv))
				case !inNew:
					emit("- " + child)
				default:
					diffValue(child, ov, nv, emit)
				}
			}
			return
		}
	case []any:
		if n, ok := new.([]any); ok {
			for i := 0; i < max(len(o), len(n)); i++ {
				child := fmt.Sprintf("%s[%d]", path, i)
				switch {
				case i >= len(o):
					emit("+ " + child + ": " + show(n[i]))
				case i >= len(n):
					emit("- " + child)
				default:
					diffValue(child, o[i], n[i], emit)
				}
			}
			return
		}
	}
	if a, b := show(old), show(new); a != b {
		emit(path + ": " + a + " → " + b)
	}
}

func show(v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(raw)
}
