package integration

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/flagpole-dev/flagpole/pkg/standalone"
	"github.com/flagpole-dev/flagpole/test/tools"
)

// binaryServer is flagpole-apiserver run as a child process, exactly as a
// user runs it. Unlike the in-process framework server its log is its own,
// so a test can read everything it printed (a panic, a data race).
type binaryServer struct {
	DataDir    string
	Kubeconfig string
	// Config is the admin kubeconfig the server wrote, as a rest.Config.
	Config *rest.Config
	Log    *syncBuffer

	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
}

// buildServer builds ./cmd/flagpole-apiserver into a temporary directory.
// Under `go test -race` the binary is built with -race too: the race cache
// the test binary needed is reused, and a data race in the server fails the
// test that reads its log.
func buildServer(t *testing.T) string {
	t.Helper()
	return tools.GoBuild(t, repoRoot(t), "./cmd/flagpole-apiserver", t.TempDir())
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// startBinary runs bin in standalone mode on a free loopback port with its
// data in a new temporary directory, and waits until /readyz answers ok
// with the admin kubeconfig it wrote. The process is killed when the test
// ends unless stop was called.
func startBinary(t *testing.T, bin string) *binaryServer {
	t.Helper()
	return startBinaryIn(t, bin, filepath.Join(t.TempDir(), "data"))
}

// startBinaryIn is startBinary on dataDir, with more flags.
func startBinaryIn(t *testing.T, bin, dataDir string, args ...string) *binaryServer {
	t.Helper()
	s := launchBinary(t, bin, dataDir, args...)
	s.waitReady(t)
	return s
}

// launchBinary starts bin in standalone mode on dataDir and a free loopback
// port, with more flags, and does not wait. The process is killed when the
// test ends unless it has exited.
func launchBinary(t *testing.T, bin, dataDir string, args ...string) *binaryServer {
	t.Helper()
	s := &binaryServer{DataDir: dataDir, Kubeconfig: standalone.Layout{DataDir: dataDir}.Kubeconfig(), Log: &syncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(bin, append([]string{"--data-dir", dataDir, "--secure-port", strconv.Itoa(freePort(t)), "--bind-address", "127.0.0.1"}, args...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.Log, s.Log
	// Killed with the test process, never left behind.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		if !s.exited() {
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	return s
}

// waitReady waits until /readyz answers ok with the admin kubeconfig the
// server wrote, and sets Config.
func (s *binaryServer) waitReady(t *testing.T) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		if s.exited() {
			return false, s.exitError()
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
		if err != nil {
			return false, nil // not written yet
		}
		cfg.QPS, cfg.Burst = -1, -1
		client, err := rest.HTTPClientFor(cfg)
		if err != nil {
			return false, nil
		}
		resp, err := client.Get(cfg.Host + "/readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		s.Config = cfg
		return resp.StatusCode == 200, nil
	})
	if err != nil {
		t.Fatalf("flagpole-apiserver not ready: %v\nlog:\n%s", err, tail(s.Log.String()))
	}
}

// waitExit waits up to timeout for the process to exit by itself, and
// returns how it exited.
func (s *binaryServer) waitExit(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-s.done:
		return s.waitErr
	case <-time.After(timeout):
		t.Fatalf("flagpole-apiserver still running after %s\nlog:\n%s", timeout, tail(s.Log.String()))
		return nil
	}
}

func (s *binaryServer) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// exitError says why the process ended before it was ready.
func (s *binaryServer) exitError() error {
	<-s.done
	return fmt.Errorf("flagpole-apiserver exited before it was ready: %v", s.waitErr)
}

// stop sends SIGTERM and returns the exit error (nil for a clean exit).
func (s *binaryServer) stop(t *testing.T) error {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !s.exited() {
		t.Fatal(err)
	}
	select {
	case <-s.done:
		return s.waitErr
	case <-time.After(60 * time.Second):
		t.Fatalf("no exit within 60s of SIGTERM\n%s", tail(s.Log.String()))
		return nil
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

// Len is how much has been written so far: a mark to read the log from.
func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

func tail(s string) string {
	if len(s) > 4000 {
		return s[len(s)-4000:]
	}
	return s
}

// pinnedKubectl returns the kubectl that hack/build-tools.sh builds from the
// k8s.io/kubernetes version hack/tools/go.mod pins (test/tools: under
// hack/test.sh a missing binary fails the test; a plain `go test ./...`
// skips, saying how to build it). Another version fails the test: the
// machine's kubectl may be any version and never stands in.
func pinnedKubectl(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	kubectl := tools.Bin(t, "kubectl")
	goMod, err := os.ReadFile(filepath.Join(root, "hack", "tools", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	var pin string
	for _, line := range strings.Split(string(goMod), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "k8s.io/kubernetes" {
			pin = f[1]
		}
	}
	if pin == "" {
		t.Fatal("hack/tools/go.mod does not pin k8s.io/kubernetes")
	}
	out, err := exec.Command(kubectl, "version", "--client").CombinedOutput()
	if err != nil {
		t.Fatalf("%s version --client: %v\n%s", kubectl, err, out)
	}
	if !strings.Contains(string(out), "Client Version: "+pin+"\n") {
		t.Fatalf("%s is not kubectl %s (the pin in hack/tools/go.mod):\n%s", kubectl, pin, out)
	}
	return kubectl
}
