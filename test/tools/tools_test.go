package tools

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// ending records how a test would end instead of ending it.
type ending struct {
	testing.TB
	fatal, skip string
}

func (e *ending) Helper()           {}
func (e *ending) Fatal(args ...any) { e.fatal = fmt.Sprint(args...) }
func (e *ending) Skip(args ...any)  { e.skip = fmt.Sprint(args...) }

// Without what it needs, a test fails under hack/test.sh and skips
// elsewhere, saying what is missing either way.
func TestRequirePrivileged(t *testing.T) {
	t.Setenv(EnvPrivileged, "1")
	e := &ending{TB: t}
	RequirePrivileged(e, "no-such-command-flagpole")
	if !strings.Contains(e.fatal, "no-such-command-flagpole") || e.skip != "" {
		t.Errorf("required: fatal %q, skip %q; want a failure naming the command", e.fatal, e.skip)
	}

	os.Unsetenv(EnvPrivileged)
	e = &ending{TB: t}
	RequirePrivileged(e, "no-such-command-flagpole")
	if !strings.Contains(e.skip, "no-such-command-flagpole") || e.fatal != "" {
		t.Errorf("not required: fatal %q, skip %q; want a skip naming the command", e.fatal, e.skip)
	}

	e = &ending{TB: t}
	RequirePrivileged(e, "sh")
	if os.Geteuid() == 0 && (e.fatal != "" || e.skip != "") {
		t.Errorf("root with sh on PATH: fatal %q, skip %q", e.fatal, e.skip)
	}
}
