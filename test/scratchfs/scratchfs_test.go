package scratchfs

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// ending records how Require ends a test instead of ending it.
type ending struct {
	testing.TB
	fatal, skip string
}

func (e *ending) Helper()           {}
func (e *ending) Fatal(args ...any) { e.fatal = fmt.Sprint(args...) }
func (e *ending) Skip(args ...any)  { e.skip = fmt.Sprint(args...) }

// Without what it needs, a test fails under hack/test.sh and skips
// elsewhere, saying what is missing either way.
func TestRequire(t *testing.T) {
	t.Setenv(EnvRequired, "1")
	e := &ending{TB: t}
	Require(e, "no-such-command-flagpole")
	if !strings.Contains(e.fatal, "no-such-command-flagpole") || e.skip != "" {
		t.Errorf("required: fatal %q, skip %q; want a failure naming the command", e.fatal, e.skip)
	}

	os.Unsetenv(EnvRequired)
	e = &ending{TB: t}
	Require(e, "no-such-command-flagpole")
	if !strings.Contains(e.skip, "no-such-command-flagpole") || e.fatal != "" {
		t.Errorf("not required: fatal %q, skip %q; want a skip naming the command", e.fatal, e.skip)
	}

	e = &ending{TB: t}
	Require(e, "sh")
	if os.Geteuid() == 0 && (e.fatal != "" || e.skip != "") {
		t.Errorf("root with sh on PATH: fatal %q, skip %q", e.fatal, e.skip)
	}
}
