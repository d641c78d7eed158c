// Package browser runs the tests in this directory in a real headless
// Chromium — Debian's (/usr/bin/chromium; hack/install-debian-tools.sh installs
// it), driven by playwright-core from npm (the committed package-lock.json)
// — against a Flagpole the calling Go test started: the console
// (console.test.mjs) and the OpenFeature web SDK on a page of another
// origin (ofrep.test.mjs). docs/testing.md says what each proves.
package browser

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flagpole-dev/flagpole/test/tools"
)

// ChromiumPath is where Debian's chromium package puts the browser.
const ChromiumPath = "/usr/bin/chromium"

// Dir is this package's directory (package.json, the test files and pages).
func Dir(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate test/browser")
	}
	return filepath.Dir(file)
}

// Chromium returns the browser, or ends the test without one: it fails
// under hack/test.sh (which installs it first) and skips otherwise, saying
// how to install it.
func Chromium(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		tools.Missing(t, "Chromium is not installed (%v): run hack/install-debian-tools.sh (apt-get install chromium), or hack/test.sh which runs it", err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not installed: the browser tests need Node.js 20 or later (docs/testing.md)")
	}
	return ChromiumPath
}

// Run runs the named test files with node's test runner and the browser,
// with env (names FLAGPOLE_...) added, and fails t with their output if any
// test fails.
func Run(t testing.TB, env map[string]string, files ...string) {
	t.Helper()
	chromium := Chromium(t)
	dir := Dir(t)
	tools.NPMCI(t, dir)
	args := append([]string{"--test", "--test-reporter=spec", "--test-concurrency=1"}, files...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FLAGPOLE_CHROMIUM="+chromium)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	// Chromium's processes go with node's group when the test ends early.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("node %s:\n%s", strings.Join(files, " "), out)
}

// ServePages serves this directory (its pages and node_modules) on a new
// loopback origin, http://127.0.0.1:<port>, until the test ends.
func ServePages(t testing.TB) string {
	t.Helper()
	dir := Dir(t)
	tools.NPMCI(t, dir)
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL
}

// ServingSPKI is the base64 SHA-256 of the public key of the certificate
// the TLS server at hostport serves, for Chromium's
// --ignore-certificate-errors-spki-list: the browser trusts that one
// certificate, and checks every other as usual.
func ServingSPKI(t testing.TB, hostport string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", hostport, &tls.Config{InsecureSkipVerify: true}) // only to read the certificate
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sum := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// HostPort is the host:port of a URL.
func HostPort(t testing.TB, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return u.Host
}

var consoleURL = regexp.MustCompile(`http://127\.0\.0\.1:\d+/#secret=\S+`)

// StartConsole runs `kubectl-flagpole console --no-browser` with kubeconfig
// in namespace and returns the URL it prints; it stops with the test.
func StartConsole(t testing.TB, plugin, kubeconfig, namespace string) string {
	t.Helper()
	cmd := exec.Command(plugin, "console", "--no-browser", "--kubeconfig", kubeconfig, "-n", namespace, "--cache-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "KUBECONFIG=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("kubectl-flagpole console: %v\n%s", err, stderr.String())
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("kubectl-flagpole console did not stop within 10s of SIGTERM")
		}
	})
	found := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if u := consoleURL.FindString(s.Text()); u != "" {
				found <- u
			}
		}
	}()
	select {
	case u := <-found:
		return u
	case <-time.After(30 * time.Second):
		t.Fatalf("kubectl-flagpole console printed no URL within 30s\n%s", stderr.String())
		return ""
	}
}
