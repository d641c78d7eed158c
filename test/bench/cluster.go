package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flagpole-dev/flagpole/pkg/standalone"
	tcluster "github.com/flagpole-dev/flagpole/test/cluster"
	"github.com/flagpole-dev/flagpole/test/process"
)

// env is one run's temporary directory and every process started in it
// (test/cluster), so that one deferred close tears everything down on
// success, error or Ctrl-C.
type env struct {
	*tcluster.Cluster
}

func newEnv(cfg config) (*env, error) {
	dir, err := os.MkdirTemp("", "flagpole-bench-")
	if err != nil {
		return nil, err
	}
	root, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	return &env{tcluster.New(tcluster.Config{Dir: dir, BinDir: cfg.toolsBin, FlagpoleBin: cfg.flagpoleBin, RepoRoot: root, FlagpoleArgs: cfg.flagpoleArgs})}, nil
}

// close stops the processes in reverse start order and removes the directory.
func (e *env) close() {
	e.Teardown()
	if err := os.RemoveAll(e.Dir); err != nil {
		fmt.Fprintf(os.Stderr, "bench: remove %s: %v\n", e.Dir, err)
	}
}

// peer is kube-apiserver with its etcd: the reference every Flagpole path is
// divided by.
type peer struct {
	url    string
	token  string // static bearer token of user "bench", in no special group
	roots  *x509.CertPool
	server *process.Process
	etcd   *process.Process
}

func startPeer(ctx context.Context, e *env, binDir string, extra ...string) (*peer, error) {
	etcdURL, err := e.StartEtcd(ctx, "etcd")
	if err != nil {
		return nil, err
	}

	if err := os.MkdirAll(e.Path("kube"), 0o700); err != nil {
		return nil, err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return nil, err
	}
	saKeyFile := e.Path("kube", "service-account.key")
	if err := os.WriteFile(saKeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	tokenBytes := make([]byte, 24)
	if _, err := rand.Read(tokenBytes); err != nil {
		return nil, err
	}
	token := hex.EncodeToString(tokenBytes)
	tokenFile := e.Path("kube", "tokens.csv")
	// token,user,uid — no groups: the user has only system:authenticated.
	if err := os.WriteFile(tokenFile, []byte(token+",bench,bench-uid\n"), 0o600); err != nil {
		return nil, err
	}
	port, err := tcluster.FreePort()
	if err != nil {
		return nil, err
	}
	certDir := e.Path("kube", "certs")
	server, err := e.StartProcess("kube-apiserver", filepath.Join(binDir, "kube-apiserver"), append([]string{
		"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1",
		"--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(port),
		"--cert-dir", certDir, // self-signed serving certificate
		// Endpoints of a loopback address cannot be reconciled.
		"--endpoint-reconciler-type", "none",
		"--authorization-mode", "RBAC",
		"--token-auth-file", tokenFile,
		"--service-cluster-ip-range", "10.96.0.0/24",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", saKeyFile,
		"--service-account-signing-key-file", saKeyFile,
	}, extra...)...)
	if err != nil {
		return nil, err
	}
	p := &peer{url: "https://127.0.0.1:" + strconv.Itoa(port), token: token, server: server, etcd: e.Procs["etcd"]}
	// The serving certificate is written during start-up, so the client that
	// trusts it is built on each try.
	err = tcluster.WaitFor(ctx, server, 120*time.Second, func() error {
		pemBytes, err := os.ReadFile(filepath.Join(certDir, "apiserver.crt"))
		if err != nil {
			return err
		}
		p.roots = x509.NewCertPool()
		if !p.roots.AppendCertsFromPEM(pemBytes) {
			return errors.New("no certificate in apiserver.crt")
		}
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.roots}}}
		return getStatus(c, p.url+"/readyz", http.Header{"Authorization": {"Bearer " + token}})
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// auditPolicy records every request at Metadata level: what an operator
// who keeps an audit trail typically runs, the same for both servers.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
`

// auditFlags writes the audit policy and returns, per server name, the flags
// that make it log to a file of its own in the run's directory.
func auditFlags(e *env) (func(name string) []string, error) {
	policy := e.Path("audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return nil, err
	}
	return func(name string) []string {
		return []string{"--audit-policy-file", policy, "--audit-log-path", e.Path("logs", name+"-audit.log")}
	}, nil
}

// flagpole is the standalone server under test.
type flagpole struct {
	url      string
	appToken string
	roots    *x509.CertPool
	admin    tls.Certificate
	server   *process.Process
	version  string
	dataDir  string
}

// startFlagpoleAs starts a standalone Flagpole process named name on
// dataDir, with extra flags.
func startFlagpoleAs(ctx context.Context, e *env, bin, name, dataDir string, extra ...string) (*flagpole, error) {
	port, err := tcluster.FreePort()
	if err != nil {
		return nil, err
	}
	server, err := e.StartProcess(name, bin, append([]string{"--data-dir", dataDir, "--secure-port", strconv.Itoa(port)}, extra...)...)
	if err != nil {
		return nil, err
	}
	f := &flagpole{url: "https://127.0.0.1:" + strconv.Itoa(port), server: server, dataDir: dataDir}
	// The PKI and token files appear during start-up: load them on each try.
	layout := standalone.Layout{DataDir: dataDir}
	pki := layout.PKI()
	err = tcluster.WaitFor(ctx, server, 90*time.Second, func() error {
		caPEM, err := os.ReadFile(pki.CACertFile())
		if err != nil {
			return err
		}
		f.roots = x509.NewCertPool()
		if !f.roots.AppendCertsFromPEM(caPEM) {
			return errors.New("no certificate in ca.crt")
		}
		if f.admin, err = tls.LoadX509KeyPair(pki.AdminCertFile(), pki.AdminKeyFile()); err != nil {
			return err
		}
		token, err := os.ReadFile(layout.AppTokenFile())
		if err != nil {
			return err
		}
		f.appToken = strings.TrimSpace(string(token))
		return getStatus(f.adminClient(), f.url+"/readyz", nil)
	})
	if err != nil {
		return nil, err
	}
	f.version = flagpoleVersion(bin)
	return f, nil
}

// adminClient is a plain client for set-up requests (not the load generator's).
func (f *flagpole) adminClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: f.roots, Certificates: []tls.Certificate{f.admin},
	}}}
}

const benchNamespace = "bench"

// createFlags creates the two flags every Flagpole path evaluates.
func (f *flagpole) createFlags() error {
	flags := []string{
		`{"apiVersion":"flagpole.dev/v1beta1","kind":"Flag","metadata":{"name":"static-flag"},
		  "spec":{"type":"Boolean","variants":[{"name":"on","value":true},{"name":"off","value":false}],"defaultVariant":"off"}}`,
		`{"apiVersion":"flagpole.dev/v1beta1","kind":"Flag","metadata":{"name":"fractional-flag"},
		  "spec":{"type":"Boolean","variants":[{"name":"on","value":true},{"name":"off","value":false}],"defaultVariant":"off",
		          "rules":[{"name":"split","rollout":{"distribution":[{"variant":"on","weight":50},{"variant":"off","weight":50}]}}]}}`,
	}
	c := f.adminClient()
	for _, body := range flags {
		resp, err := c.Post(f.url+"/apis/flagpole.dev/v1beta1/namespaces/"+benchNamespace+"/flags", "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("create flag: %d %s", resp.StatusCode, b)
		}
	}
	return nil
}

// getStatus GETs url and wants 200.
func getStatus(c *http.Client, url string, h http.Header) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}

// rssKiB reads VmRSS of a running process.
func rssKiB(p *process.Process) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.Pid()) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, errors.New("no VmRSS")
}

// userHZ is the unit of /proc/<pid>/stat's CPU times: fixed at 100 by the
// Linux ABI whatever the kernel's internal tick.
const userHZ = 100

// cpuTime is the user and system CPU time a process has used so far.
func cpuTime(p *process.Process) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.Pid()) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name in parentheses may hold spaces: count fields after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc/<pid>/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("malformed /proc/<pid>/stat")
	}
	// utime and stime are fields 14 and 15 of the line, 12 and 13 after ')'.
	utime, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, err
	}
	stime, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}

// measureCPU sends the CPU time p uses between from and to, or -1 when it
// cannot be read or ctx ends first.
func measureCPU(ctx context.Context, p *process.Process, from, to time.Time) <-chan time.Duration {
	ch := make(chan time.Duration, 1)
	go func() {
		sample := func(at time.Time) (time.Duration, bool) {
			select {
			case <-ctx.Done():
				return 0, false
			case <-time.After(time.Until(at)):
			}
			d, err := cpuTime(p)
			return d, err == nil
		}
		a, ok := sample(from)
		if !ok {
			ch <- -1
			return
		}
		b, ok := sample(to)
		if !ok {
			ch <- -1
			return
		}
		ch <- b - a
	}()
	return ch
}
