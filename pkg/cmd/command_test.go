package cmd

import (
	"bytes"
	"context"
	"strings"
	"testing"

	utilversion "k8s.io/apimachinery/pkg/util/version"
)

// --version prints Flagpole's own version, a semantic version, and returns.
func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"--version=true"}} {
		c := NewCommand(context.Background())
		var out bytes.Buffer
		c.SetOut(&out)
		c.SetArgs(args)
		if err := c.Execute(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		name, v, ok := strings.Cut(strings.TrimSpace(out.String()), " ")
		if !ok || name != "flagpole-apiserver" {
			t.Fatalf("%v printed %q, want \"flagpole-apiserver <version>\"", args, out.String())
		}
		if _, err := utilversion.ParseSemantic(v); err != nil || strings.Contains(v, "master") {
			t.Errorf("%v printed version %q (%v), want a semantic version of Flagpole", args, v, err)
		}
	}

	c := NewCommand(context.Background())
	var out bytes.Buffer
	c.SetOut(&out)
	c.SetArgs([]string{"--version=raw"})
	if err := c.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "GitVersion:") {
		t.Errorf("--version=raw printed %q, want the whole version.Info", out.String())
	}
}
