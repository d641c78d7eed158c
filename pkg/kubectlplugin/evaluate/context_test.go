package evaluate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/exit"
)

func TestContextFlags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ctx.json")
	if err := os.WriteFile(file, []byte(`{"plan": "free", "big": 12345678901234567890, "account": {"tier": "silver"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		flags ContextFlags
		stdin string
		want  string
	}{
		{"empty", ContextFlags{}, "", `{}`},
		{"values are JSON when they are JSON", ContextFlags{Pairs: []string{"plan=enterprise", "age=42", "beta=true", `tags=["a","b"]`, `zip="01234"`, "ratio=0.5", "n=1 2", "nil=null"}},
			"", `{"age":42,"beta":true,"n":"1 2","nil":null,"plan":"enterprise","ratio":0.5,"tags":["a","b"],"zip":"01234"}`},
		{"dotted keys nest", ContextFlags{Pairs: []string{"account.tier=gold", "account.id=7"}}, "", `{"account":{"id":7,"tier":"gold"}}`},
		{"an = in the value", ContextFlags{Pairs: []string{"q=a=b"}}, "", `{"q":"a=b"}`},
		{"targeting key", ContextFlags{TargetingKey: "u-1", Pairs: []string{"targetingKey=ignored"}}, "", `{"targetingKey":"u-1"}`},
		{"file, then pairs on top", ContextFlags{File: file, Pairs: []string{"plan=vip", "account.tier=gold"}}, "",
			`{"account":{"tier":"gold"},"big":12345678901234567890,"plan":"vip"}`},
		{"stdin", ContextFlags{File: "-"}, `{"x": 1}`, `{"x":1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.flags.Build(strings.NewReader(tc.stdin))
			if err != nil || string(got) != tc.want {
				t.Errorf("%s, %v; want %s", got, err, tc.want)
			}
		})
	}
	for _, bad := range []ContextFlags{
		{Pairs: []string{"plan"}},
		{Pairs: []string{"=x"}},
		{Pairs: []string{"a=1", "a.b=2"}},
		{Pairs: []string{"a..b=1"}},
		{File: filepath.Join(t.TempDir(), "missing.json")},
	} {
		if _, err := bad.Build(strings.NewReader("")); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if _, err := (&ContextFlags{File: "-"}).Build(strings.NewReader(`[1]`)); exit.CodeOf(err) != exit.Usage {
		t.Errorf("a context file that is no object: %v", err)
	}
}
