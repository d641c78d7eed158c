package flagpole

import "strings"

// yamlBooleanPrefix marks a variant name that arrived as a JSON boolean. YAML
// 1.1 (which kubectl speaks) reads unquoted on/off/yes/no/true/false as
// booleans, so `name: on` reaches the server as `"name": true`. Rejecting that
// at decode time would give a bare type error with no field path; instead the
// versioned types keep the boolean apart under this prefix (a NUL byte can
// never start a valid name) and validation reports it with the field path and
// a hint to quote the value.
const yamlBooleanPrefix = "\x00boolean:"

// BooleanVariantName returns the placeholder kept for a variant name that was
// sent as a JSON boolean.
func BooleanVariantName(b bool) string {
	if b {
		return yamlBooleanPrefix + "true"
	}
	return yamlBooleanPrefix + "false"
}

// VariantNameBoolean reports whether name is such a placeholder, and which
// boolean it holds.
func VariantNameBoolean(name string) (value bool, isBoolean bool) {
	v, ok := strings.CutPrefix(name, yamlBooleanPrefix)
	if !ok {
		return false, false
	}
	return v == "true", true
}
