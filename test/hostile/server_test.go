//go:build hostile

package hostile

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/flagpole-dev/flagpole/pkg/standalone"
	"github.com/flagpole-dev/flagpole/test/process"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// serverBinary builds ./cmd/flagpole-apiserver once per test binary, without
// -race: the goals are about a server's memory, latency and logs as users run
// it.
func serverBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flagpole-hostile-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "flagpole-apiserver")
		cmd := exec.Command("go", "build", "-o", builtBin, "./cmd/flagpole-apiserver")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func repoRoot() string {
	root, _ := filepath.Abs("../..")
	return root
}

// server is flagpole-apiserver in standalone mode as a child process.
type server struct {
	proc *process.Process
	addr string
	// admin is a TLS config with the admin client certificate; app trusts
	// the CA only, and appToken is the application token.
	admin, app *tls.Config
	appToken   string
	// appTokens are the tokens of the applications startServer was given,
	// by user.
	appTokens map[string]string
}

// appUsers are the applications a server is started with: each a token
// of its own in group flagpole:evaluators.
var appUsers = []string{"app-greedy", "app-other"}

func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	layout := standalone.Layout{DataDir: filepath.Join(dir, "data")}
	// Two applications with tokens of their own, written before the first
	// start (which then keeps them).
	if err := os.MkdirAll(layout.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{}
	var csv strings.Builder
	for _, u := range appUsers {
		tokens[u] = "token-" + u + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		fmt.Fprintf(&csv, "%s,%s,%s,%q\n", tokens[u], u, u, standalone.EvaluatorsGroup)
	}
	if err := os.WriteFile(layout.TokensFile(), []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(layout.AppTokenFile(), []byte(tokens[appUsers[0]]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := process.Start("flagpole-apiserver", filepath.Join(dir, "flagpole.log"), serverBinary(t),
		append([]string{"--data-dir", layout.DataDir, "--secure-port", strconv.Itoa(port), "--bind-address", "127.0.0.1"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("flagpole-apiserver log (tail):\n%s", p.Tail(8000))
		}
	})
	s := &server{proc: p, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), appTokens: tokens}
	pki := layout.PKI()
	err = wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("exited: %v", p.Err())
		}
		caPEM, err := os.ReadFile(pki.CACertFile())
		if err != nil {
			return false, nil
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(caPEM)
		cert, err := tls.LoadX509KeyPair(pki.AdminCertFile(), pki.AdminKeyFile())
		if err != nil {
			return false, nil
		}
		token, err := os.ReadFile(layout.AppTokenFile())
		if err != nil {
			return false, nil
		}
		s.admin = &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1"}
		s.app = &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
		s.appToken = strings.TrimSpace(string(token))
		resp, err := s.client(s.admin).Get("https://" + s.addr + "/readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("flagpole-apiserver not ready: %v\n%s", err, p.Tail(4000))
	}
	return s
}

// client is an HTTP/2 client with cfg (a connection of its own).
func (s *server) client(cfg *tls.Config) *http.Client {
	tr := &http.Transport{TLSClientConfig: cfg.Clone(), ForceAttemptHTTP2: true}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// rssBytes is a process's resident set.
func rssBytes(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return -1
}

// logLines counts the lines of a log file.
func logLines(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "\n")
}

// probe sends do every interval until ctx ends and records each answer's
// latency and status.
type probe struct {
	mu        sync.Mutex
	latencies []time.Duration
	codes     map[int]int
	errs      []string
}

func runProbe(ctx context.Context, interval time.Duration, do func(context.Context) (int, error)) *probe {
	p := &probe{codes: map[int]int{}}
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			rctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			start := time.Now()
			code, err := do(rctx)
			took := time.Since(start)
			cancel()
			p.mu.Lock()
			p.latencies = append(p.latencies, took)
			if took > time.Second && testing.Verbose() {
				fmt.Printf("slow probe at %s: %s (%v)\n", start.Format("15:04:05.000"), took, err)
			}
			if err != nil {
				p.errs = append(p.errs, err.Error())
			} else {
				p.codes[code]++
			}
			p.mu.Unlock()
		}
	}()
	return p
}

// summary is the probe's count, answers by status, p50, p99 and max.
func (p *probe) summary() (n int, codes map[int]int, errs int, p50, p99, max time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := append([]time.Duration(nil), p.latencies...)
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	if len(l) == 0 {
		return 0, p.codes, len(p.errs), 0, 0, 0
	}
	q := func(f float64) time.Duration { return l[min(len(l)-1, int(f*float64(len(l))))] }
	return len(l), p.codes, len(p.errs), q(0.5), q(0.99), l[len(l)-1]
}

var digits = regexp.MustCompile(`[0-9]+`)

// commonLines is the n commonest kinds of line in a log (the text after
// klog's header, cut at 100 bytes), with their counts.
func commonLines(log string, n int) string {
	counts := map[string]int{}
	for _, line := range strings.Split(log, "\n") {
		if i := strings.Index(line, "] "); i >= 0 && i < 60 {
			line = line[i+2:]
		}
		if i := strings.Index(line, `"msg":"`); i >= 0 {
			line = line[i:] // etcd's JSON lines: from the message on
		}
		if len(line) > 100 {
			line = line[:100]
		}
		counts[digits.ReplaceAllString(line, "0")]++
	}
	type kind struct {
		line  string
		count int
	}
	var kinds []kind
	for l, c := range counts {
		kinds = append(kinds, kind{l, c})
	}
	sort.Slice(kinds, func(i, j int) bool { return kinds[i].count > kinds[j].count })
	var b strings.Builder
	for _, k := range kinds[:min(n, len(kinds))] {
		fmt.Fprintf(&b, "%6d %s\n", k.count, k.line)
	}
	return b.String()
}
