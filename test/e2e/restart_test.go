//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	tcluster "github.com/flagpole-dev/flagpole/test/cluster"
)

// TestRestartFlagpole: stopping Flagpole makes the APIService unavailable;
// starting it again brings it back, with the data intact.
func TestRestartFlagpole(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	mustKubectl(t, userAdmin, "apply", "-n", e2eNamespace, "-f", "artifacts/examples/segment-employees.yaml")

	p := e2e.Procs["flagpole-apiserver"]
	if err := p.Stop(60 * time.Second); err != nil {
		t.Fatalf("flagpole did not exit cleanly on SIGTERM: %v\n%s", err, p.Tail(tcluster.TailBytes))
	}
	if err := e2e.WaitAPIService(ctx, false, 120*time.Second); err != nil {
		t.Fatalf("APIService still available with Flagpole down: %v", err)
	}
	if out, err := e2e.Kubectl(userAdmin, "get", "segments", "-n", e2eNamespace); err == nil {
		t.Errorf("kubectl worked with Flagpole down:\n%s", out)
	}

	if err := e2e.StartFlagpole(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitAPIService(ctx, true, 120*time.Second); err != nil {
		t.Fatalf("APIService did not return to Available: %v", err)
	}
	out := mustKubectl(t, userAdmin, "get", "segment", "employees", "-n", e2eNamespace, "-o", "jsonpath={.spec.include}")
	if !strings.Contains(out, "tester-1") {
		t.Errorf("segment after restart: %q", out)
	}
}
