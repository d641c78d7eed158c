//go:build hostile

package hostile

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	tcluster "github.com/flagpole-dev/flagpole/test/cluster"
	"github.com/flagpole-dev/flagpole/test/tools"
)

// TestRapidResetCompare runs the same rapid-reset attack against
// kube-apiserver v1.37.2 (the pinned one, on an etcd of its own) and
// against Flagpole in the same run, for docs/operations.md. It asserts
// nothing of kube-apiserver, which is not ours; it runs only when
// FLAGPOLE_HOSTILE_COMPARE=1, since its figures are for the docs, and
// TestRapidReset holds Flagpole to its goals.
func TestRapidResetCompare(t *testing.T) {
	if os.Getenv("FLAGPOLE_HOSTILE_COMPARE") != "1" {
		t.Skip("set FLAGPOLE_HOSTILE_COMPARE=1 to measure kube-apiserver under the same attack (docs/operations.md)")
	}
	bin := tools.Dir()
	tools.Bin(t, "kube-apiserver")
	c := tcluster.New(tcluster.Config{Dir: t.TempDir(), BinDir: bin, FlagpoleBin: serverBinary(t), RepoRoot: repoRoot()})
	t.Cleanup(c.Teardown)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("control plane: %v\n%s", err, c.Logs())
	}
	caPEM, err := c.CA.CAPEM()
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	cfg := c.RestConfig(tcluster.UserAdmin)
	cert, err := tls.LoadX509KeyPair(cfg.TLSClientConfig.CertFile, cfg.TLSClientConfig.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	admin := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1"}
	addr := strings.TrimPrefix(c.KubeHost, "https://")
	probeClient := &http.Client{Transport: &http.Transport{TLSClientConfig: admin.Clone(), ForceAttemptHTTP2: true}, Timeout: 30 * time.Second}
	kube := rapidReset(t, c.Procs["kube-apiserver"], addr, admin,
		Request{Method: "GET", Path: "/api/v1/namespaces/default/configmaps", Authority: addr},
		getter(probeClient, c.KubeHost+"/api/v1/namespaces/default/configmaps"))
	t.Logf("kube-apiserver v1.37.2, admin certificate, GET configmaps: %s", kube)

	s := startServer(t)
	flagpole := rapidReset(t, s.proc, s.addr, s.admin,
		Request{Method: "GET", Path: "/apis/flagpole.dev/v1beta1/namespaces/default/flags", Authority: s.addr},
		getter(s.client(s.admin), "https://"+s.addr+"/apis/flagpole.dev/v1beta1/namespaces/default/flags"))
	t.Logf("flagpole-apiserver, admin certificate, GET flags: %s", flagpole)
}
