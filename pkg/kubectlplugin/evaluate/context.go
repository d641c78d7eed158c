// Package evaluate is `kubectl flagpole evaluate` and `explain`: a flag's
// answer (or every flag's) for a context given on the command line, and how
// the answer came about, through the API (flags/evaluate, evaluations) with
// the user's credentials.
package evaluate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/exit"
)

// ContextFlags build an evaluation context from the command line.
type ContextFlags struct {
	// Pairs are -c key=value: the value is JSON when it parses as JSON
	// (42, true, {"a":1}, "quoted"), else the string as typed; a dotted
	// key nests (-c account.tier=gold).
	Pairs []string
	// TargetingKey is --targeting-key.
	TargetingKey string
	// File is --context-file: a JSON object to start from ("-" is stdin).
	File string
}

// AddFlags adds -c, --targeting-key and --context-file.
func (f *ContextFlags) AddFlags(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&f.Pairs, "context", "c", nil, "a context attribute, key=value (repeatable); the value is read as JSON when it is JSON, else as a string; a dotted key nests")
	fs.StringVar(&f.TargetingKey, "targeting-key", "", "the context's targetingKey (whom rollouts and segments bucket)")
	fs.StringVar(&f.File, "context-file", "", "a JSON file holding the context object to start from (- for stdin); -c and --targeting-key are applied on top")
}

// Build returns the context as JSON: the file's object, then the pairs in
// order, then the targeting key.
func (f *ContextFlags) Build(stdin io.Reader) ([]byte, error) {
	ctx := map[string]any{}
	if f.File != "" {
		var raw []byte
		var err error
		if f.File == "-" {
			raw, err = io.ReadAll(stdin)
		} else {
			raw, err = os.ReadFile(f.File)
		}
		if err != nil {
			return nil, exit.Wrap(exit.Failed, "", fmt.Errorf("--context-file: %w", err))
		}
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&ctx); err != nil {
			return nil, exit.New(exit.Usage, "the file must hold one JSON object, e.g. {\"plan\": \"enterprise\"}", "--context-file %s: %v", f.File, err)
		}
	}
	for _, pair := range f.Pairs {
		key, value, ok := strings.Cut(pair, "=")
		if !ok || key == "" {
			return nil, exit.New(exit.Usage, `write -c key=value, e.g. -c plan=enterprise -c age=42`, "-c %q: not key=value", pair)
		}
		if err := set(ctx, strings.Split(key, "."), parseValue(value)); err != nil {
			return nil, exit.New(exit.Usage, "", "-c %q: %v", pair, err)
		}
	}
	if f.TargetingKey != "" {
		ctx["targetingKey"] = f.TargetingKey
	}
	return json.Marshal(ctx)
}

// parseValue reads v as JSON when it is JSON, else as the string typed.
func parseValue(v string) any {
	d := json.NewDecoder(strings.NewReader(v))
	d.UseNumber()
	var parsed any
	if err := d.Decode(&parsed); err != nil || d.More() {
		return v
	}
	// Trailing garbage after a JSON value ("1 2", "true!") is a string.
	if _, err := d.Token(); err != io.EOF {
		return v
	}
	return parsed
}

func set(m map[string]any, path []string, v any) error {
	for i, part := range path {
		if part == "" {
			return fmt.Errorf("empty key part in %q", strings.Join(path, "."))
		}
		if i == len(path)-1 {
			m[part] = v
			return nil
		}
		next, ok := m[part].(map[string]any)
		if !ok {
			if _, taken := m[part]; taken {
				return fmt.Errorf("%q is already a value, not an object", strings.Join(path[:i+1], "."))
			}
			next = map[string]any{}
			m[part] = next
		}
		m = next
	}
	return nil
}
