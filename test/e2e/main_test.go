//go:build e2e

// Package e2e drives Flagpole through a real control plane: etcd,
// kube-apiserver v1.37.2 and kube-controller-manager built by
// hack/build-tools.sh, kubectl v1.37.2, and flagpole-apiserver in delegated
// mode registered through an APIService. Run it with hack/test.sh, or:
//
//	hack/build-tools.sh && go test -tags e2e -count=1 ./test/e2e/
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

var (
	repoRoot string
	e2e      *cluster
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if repoRoot, err = filepath.Abs("../.."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binDir := os.Getenv("FLAGPOLE_E2E_BIN_DIR")
	if binDir == "" {
		binDir = filepath.Join(repoRoot, "_output", "tools", "bin")
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kubectl"} {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %s missing in %s: run hack/build-tools.sh first\n", b, binDir)
			return 1
		}
	}
	dir, err := os.MkdirTemp("", "flagpole-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	keep := os.Getenv("FLAGPOLE_E2E_KEEP") != ""
	defer func() {
		if !keep {
			os.RemoveAll(dir)
		}
	}()

	flagpoleBin := filepath.Join(dir, "flagpole-apiserver")
	build := exec.Command("go", "build", "-o", flagpoleBin, "./cmd/flagpole-apiserver")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build: %v\n%s", err, out)
		return 1
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	e2e, err = newCluster(ctx, dir, binDir, flagpoleBin)
	if e2e != nil {
		defer e2e.Teardown()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cluster did not come up: %v\n", err)
		if e2e != nil {
			fmt.Fprintln(os.Stderr, e2e.Logs())
		}
		return 1
	}
	fmt.Printf("e2e: control plane and Flagpole ready in %s (logs in %s)\n", time.Since(start).Round(time.Second), dir)
	code := m.Run()
	if code != 0 {
		fmt.Fprintln(os.Stderr, e2e.Logs())
	}
	return code
}
