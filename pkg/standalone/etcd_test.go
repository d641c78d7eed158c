package standalone

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

func putGet(t *testing.T, endpoint string) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("put through %s: %v", endpoint, err)
	}
	resp, err := cli.Get(ctx, "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("get through %s: %v %v", endpoint, resp, err)
	}
}

// Embedded etcd listens on a unix socket in a 0700 directory and nowhere else.
func TestStartEtcdSocketOnly(t *testing.T) {
	dir := t.TempDir()
	socketDir := filepath.Join(dir, "run")
	if len(filepath.Join(socketDir, socketName)) > maxSocketPath {
		t.Skipf("TMPDIR too long for this test's socket: %s", dir)
	}
	// A socket directory that exists with a lax mode is tightened.
	if err := os.Mkdir(socketDir, 0o755); err != nil {
		t.Fatal(err)
	}
	e, err := StartEtcd(filepath.Join(dir, "etcd"), socketDir, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	if want := "unix://" + filepath.Join(socketDir, socketName); e.ClientURL != want {
		t.Errorf("ClientURL %q, want %q", e.ClientURL, want)
	}
	fi, err := os.Stat(socketDir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("socket directory mode %o, want 700", fi.Mode().Perm())
	}
	if len(e.e.Peers) != 0 {
		t.Errorf("%d peer listeners, want none", len(e.e.Peers))
	}
	for _, l := range e.e.Clients {
		if l.Addr().Network() != "unix" {
			t.Errorf("client listener on %s %s, want only the unix socket", l.Addr().Network(), l.Addr())
		}
	}
	putGet(t, e.ClientURL)
}

// A data directory too long for a socket address gets its socket in a private
// temporary directory, removed by Close.
func TestStartEtcdLongPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", maxSocketPath))
	e, err := StartEtcd(filepath.Join(dir, "etcd"), filepath.Join(dir, "run"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	socket := strings.TrimPrefix(e.ClientURL, "unix://")
	private := filepath.Dir(socket)
	if !strings.HasPrefix(private, filepath.Join(os.TempDir(), "flagpole-etcd-")) {
		t.Errorf("socket %s, want one in a private directory under %s", socket, os.TempDir())
	}
	fi, err := os.Stat(private)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("private socket directory mode %o, want 700", fi.Mode().Perm())
	}
	putGet(t, e.ClientURL)
	e.Close()
	if _, err := os.Stat(private); !os.IsNotExist(err) {
		t.Errorf("private socket directory after Close: %v, want it removed", err)
	}
}

func TestLockDataDir(t *testing.T) {
	dir := t.TempDir()
	unlock, err := LockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockDataDir(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("second lock: %v, want an error naming %s", err, dir)
	}
	unlock()
	unlock, err = LockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock()
}

// A data directory whose member was created when embedded etcd listened on
// loopback TCP (peer URL http://127.0.0.1:<port>) starts on the socket.
func TestStartEtcdOnTCPEraDataDir(t *testing.T) {
	dir := t.TempDir()
	cfg := embed.NewConfig()
	cfg.Name = "flagpole"
	cfg.Dir = filepath.Join(dir, "etcd")
	cfg.LogLevel = "warn"
	loopback := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{loopback}, []url.URL{loopback}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{loopback}, []url.URL{loopback}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ListenMetricsUrls = nil
	old, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	<-old.Server.ReadyNotify()
	old.Close()

	e, err := StartEtcd(filepath.Join(dir, "etcd"), filepath.Join(dir, "run"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	putGet(t, e.ClientURL)
}
