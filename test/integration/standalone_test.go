package integration

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	clientv3 "go.etcd.io/etcd/client/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilversion "k8s.io/apimachinery/pkg/util/version"
	genericoptions "k8s.io/apiserver/pkg/server/options"

	"github.com/flagpole-dev/flagpole/pkg/cmd"
)

// shortTempDir is a data directory whose etcd socket path fits a unix socket
// address, so the socket is where the docs say: <data-dir>/run/etcd.sock.
// t.TempDir() is named after the test and can be too long for that.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Embedded etcd has no authentication: whoever reaches it bypasses
// authentication, authorization, validation and audit. Only the server may
// reach it — through a unix socket in a 0700 directory — and no TCP port of
// this process may speak etcd, neither client nor peer protocol.
func TestEmbeddedEtcdReachableOnlyThroughPrivateSocket(t *testing.T) {
	t.Parallel()
	dir := shortTempDir(t)
	s := startServerIn(t, dir)
	createFlag(t, s.Client, "etcd-socket", boolFlag("stored"))

	socket := filepath.Join(dir, "run", "etcd.sock")
	fi, err := os.Lstat(socket)
	if err != nil {
		t.Fatalf("etcd's socket: %v", err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		t.Errorf("%s is %v, want a socket", socket, fi.Mode())
	}
	di, err := os.Stat(filepath.Dir(socket))
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm != 0o700 {
		t.Errorf("socket directory mode %o, want 700", perm)
	}
	// With access to the file system, the socket is etcd (and holds the flag).
	keys, err := etcdKeys("unix://"+socket, "/registry/flagpole.dev/")
	if err != nil {
		t.Fatalf("etcd client on the socket: %v", err)
	}
	if !slicesContainsSuffix(keys, "/etcd-socket/stored") {
		t.Errorf("keys through the socket %v, want the flag etcd-socket/stored", keys)
	}

	addrs := listeningTCPAddrs(t)
	if len(addrs) == 0 {
		t.Fatal("found no TCP listener of this process; the API server's should be one")
	}
	var wg sync.WaitGroup
	for _, addr := range addrs {
		wg.Go(func() {
			if keys, err := etcdKeys("http://"+addr, "/"); err == nil {
				t.Errorf("an etcd client on %s read %d keys without credentials", addr, len(keys))
			}
			if body := httpGet("http://" + addr + "/version"); strings.Contains(body, "etcdserver") {
				t.Errorf("%s answers as etcd (client or peer listener): %s", addr, body)
			}
		})
	}
	wg.Wait()
}

func slicesContainsSuffix(keys []string, suffix string) bool {
	for _, k := range keys {
		if strings.HasSuffix(k, suffix) {
			return true
		}
	}
	return false
}

// etcdKeys lists the keys under prefix with a plain etcd client, no credentials.
func etcdKeys(endpoint, prefix string) ([]string, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 3 * time.Second})
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
	}
	return keys, nil
}

func httpGet(url string) string {
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return string(body)
}

// listeningTCPAddrs returns a dialable address for every listening TCP socket
// this process holds (/proc/self/net/tcp{,6} filtered by the inodes of
// /proc/self/fd); a wildcard address becomes the loopback address.
func listeningTCPAddrs(t *testing.T) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("needs /proc: %v", err)
	}
	own := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			own[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var addrs []string
	for _, table := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		data, err := os.ReadFile(table)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			// sl local_address rem_address st tx:rx tr:tm retrnsmt uid timeout inode
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !own[f[9]] { // 0A: LISTEN
				continue
			}
			addr, err := procNetAddr(f[1])
			if err != nil {
				t.Fatalf("%s: %v", table, err)
			}
			addrs = append(addrs, addr)
		}
	}
	return addrs
}

// procNetAddr decodes /proc/net/tcp's "0100007F:1F90": the address in host
// byte order, 32-bit word by word, and the port in hex.
func procNetAddr(s string) (string, error) {
	hexIP, hexPort, ok := strings.Cut(s, ":")
	if !ok {
		return "", fmt.Errorf("address %q", s)
	}
	raw, err := hex.DecodeString(hexIP)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return "", fmt.Errorf("address %q", s)
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 { // little-endian words
		ip[i], ip[i+1], ip[i+2], ip[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return "", fmt.Errorf("port %q", s)
	}
	if ip.IsUnspecified() {
		ip = net.IPv6loopback
		if len(raw) == 4 {
			ip = net.IPv4(127, 0, 0, 1)
		}
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(int(port))), nil
}

// A second server on a data directory in use fails at once, naming the
// directory, and leaves the first one serving. It used to wait for ever on
// etcd's lock (and, with a socket, would have removed the first one's socket).
func TestSecondServerOnSameDataDirFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := startServerIn(t, dir)

	o := cmd.NewOptions()
	fs := pflag.NewFlagSet("second", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse([]string{"--data-dir", dir}); err != nil {
		t.Fatal(err)
	}
	listener, _, err := genericoptions.CreateListener("tcp", "127.0.0.1:0", net.ListenConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { listener.Close() })
	o.RecommendedOptions.SecureServing.Listener = listener
	completed, err := o.Complete()
	if err != nil {
		t.Fatal(err)
	}
	if err := completed.Validate(); err != nil {
		t.Fatal(err)
	}
	type result struct {
		closer func()
		err    error
	}
	done := make(chan result, 1)
	go func() {
		_, closer, err := completed.Config()
		done <- result{closer, err}
	}()
	select {
	case r := <-done:
		if r.err == nil {
			r.closer()
			t.Fatal("a second server on the same data directory started")
		}
		if !strings.Contains(r.err.Error(), dir) {
			t.Errorf("error %q does not name the data directory %s", r.err, dir)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a second server on the same data directory neither started nor failed within 10s")
	}

	// The first server still reads and writes.
	createFlag(t, first.Client, "second-server", boolFlag("still-serving"))
	if _, err := first.Client.FlagpoleV1beta1().Flags("second-server").List(context.Background(), metav1.ListOptions{}); err != nil {
		t.Errorf("first server after the second one's attempt: %v", err)
	}
}

// /version answers with Flagpole's own version, which kubectl version can
// parse; the kube API machinery underneath still emulates Kubernetes 1.37.
func TestVersionEndpoint(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	info, err := s.Client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	v, err := utilversion.ParseSemantic(info.GitVersion)
	if err != nil || strings.Contains(info.GitVersion, "master") {
		t.Fatalf("gitVersion %q (%v), want Flagpole's semantic version", info.GitVersion, err)
	}
	if info.Major != strconv.Itoa(int(v.Major())) || info.Minor != strconv.Itoa(int(v.Minor())) {
		t.Errorf("major.minor %s.%s, want those of %s", info.Major, info.Minor, info.GitVersion)
	}
	if info.EmulationMajor != "1" || info.EmulationMinor != "37" {
		t.Errorf("emulation version %s.%s, want the kube component's 1.37", info.EmulationMajor, info.EmulationMinor)
	}
}
