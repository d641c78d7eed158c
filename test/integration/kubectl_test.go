package integration

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestKubectlSmoke drives the built flagpole-apiserver binary with the
// machine's kubectl and the kubeconfig the server writes, as a new user would.
func TestKubectlSmoke(t *testing.T) {
	t.Parallel()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal("kubectl is not on PATH; the smoke test drives the real kubectl")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "flagpole-apiserver")
	build := exec.Command("go", "build", "-o", bin, "./cmd/flagpole-apiserver")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	dataDir := filepath.Join(tmp, "data")
	port := freePort(t)
	var log syncBuffer
	server := exec.Command(bin, "--data-dir", dataDir, "--secure-port", strconv.Itoa(port), "--bind-address", "127.0.0.1")
	server.Stdout, server.Stderr = &log, &log
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- server.Wait() }()
	t.Cleanup(func() {
		if server.ProcessState == nil {
			_ = server.Process.Kill()
			<-exited
		}
	})

	kubeconfig := filepath.Join(dataDir, "kubeconfig")
	run := func(args ...string) (string, error) {
		args = append([]string{"--kubeconfig", kubeconfig, "--cache-dir", filepath.Join(tmp, "kubectl-cache")}, args...)
		cmd := exec.Command(kubectl, args...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s\nserver log:\n%s", strings.Join(args, " "), err, out, tail(log.String()))
		}
		return out
	}

	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(kubeconfig); err == nil {
			if out, err := run("get", "--raw", "/readyz"); err == nil && strings.TrimSpace(out) == "ok" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready within 60s; log:\n%s", tail(log.String()))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(log.String(), "kubectl --kubeconfig "+kubeconfig) {
		t.Errorf("the log does not tell the user which kubectl command to try:\n%s", tail(log.String()))
	}

	out := must("apply", "-f", "artifacts/examples/")
	for _, want := range []string{"flag.flagpole.dev/new-checkout created", "flag.flagpole.dev/banner-color created", "segment.flagpole.dev/employees created"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}

	out = must("get", "flags")
	if !regexp.MustCompile(`(?m)^NAME\s+TYPE\s+STATE\s+DEFAULT\s+RULES\s+AGE$`).MatchString(out) {
		t.Errorf("printer columns missing:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^new-checkout\s+Boolean\s+Enabled\s+off\s+2\s+\S+$`).MatchString(out) {
		t.Errorf("new-checkout row wrong:\n%s", out)
	}
	out = must("get", "fl,seg")
	if !strings.Contains(out, "flag.flagpole.dev/banner-color") || !strings.Contains(out, "segment.flagpole.dev/employees") {
		t.Errorf("short names:\n%s", out)
	}
	if out = must("get", "flagpole", "-o", "name"); strings.Count(out, "\n") != 3 {
		t.Errorf("category flagpole lists:\n%s", out)
	}

	out = must("explain", "flag.spec")
	for _, want := range []string{"variants", "defaultVariant", "rules", "Disabled is the kill switch"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain flag.spec lacks %q:\n%s", want, out)
		}
	}

	must("patch", "flag", "new-checkout", "--type=merge", "-p", `{"spec":{"state":"Disabled"}}`)
	if out = must("get", "flag", "new-checkout", "-o", "jsonpath={.spec.state} {.metadata.generation}"); out != "Disabled 2" {
		t.Errorf("after patch: %q, want \"Disabled 2\"", out)
	}

	out, err = run("patch", "flag", "new-checkout", "--type=merge", "-p", `{"spec":{"defaultVariant":"maybe"}}`)
	if err == nil || !strings.Contains(out, "spec.defaultVariant") {
		t.Errorf("invalid patch: %v\n%s", err, out)
	}

	must("delete", "-f", "artifacts/examples/")
	if out = must("get", "flags"); !strings.Contains(out, "No resources found") {
		t.Errorf("after delete:\n%s", out)
	}

	// SIGTERM drains and stops etcd last; the process exits cleanly.
	if err := server.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, tail(log.String()))
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("no exit within 60s of SIGTERM")
	}
	if !strings.Contains(log.String(), "Embedded etcd stopped") {
		t.Errorf("embedded etcd was not closed:\n%s", tail(log.String()))
	}
}

// freePort asks the kernel for a free loopback port for a child process that
// must be told its port on the command line.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer collects a child's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func tail(s string) string {
	if len(s) > 4000 {
		return s[len(s)-4000:]
	}
	return s
}
