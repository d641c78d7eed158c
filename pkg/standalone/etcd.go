package standalone

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/klog/v2"

	"github.com/flagpole-dev/flagpole/pkg/durable"
)

// Etcd is an embedded single-member etcd that only this process can reach.
type Etcd struct {
	e *embed.Etcd
	// dir holds etcd's data.
	dir string
	// ClientURL is where the API server's storage connects: unix://<socket>.
	ClientURL string
	// DiskSpace watches the free space of etcd's file system (StartDatastore
	// sets it; nil otherwise).
	DiskSpace *DiskSpace
	// closers run on Close after etcd stopped, last first: the removal of the
	// private socket directory made when socketDir's path was too long for a
	// socket, and what StartDatastore started beside etcd.
	closers []func()
}

// socketName is the file name of etcd's client socket.
const socketName = "etcd.sock"

// maxSocketPath is the longest path a unix socket can be bound to: the
// platform's sockaddr_un path buffer less its terminating NUL (107 bytes on
// Linux, 103 on macOS).
var maxSocketPath = len(syscall.RawSockaddrUnix{}.Path) - 1

// StartEtcd starts an embedded etcd that keeps its data in dataDir and waits
// until it serves. Its only listener is a unix socket in socketDir, a 0700
// directory: etcd has no authentication of its own, so whoever reaches it can
// read and write every object past authentication, authorization, validation
// and audit. The file system decides who reaches it — this user, nobody else.
// It has no peer listener (a single member has no peers) and no metrics listener.
//
// When socketDir's path is too long for a socket, the socket goes to a private
// directory under os.TempDir instead, removed again by Close.
//
// Before etcd opens an existing member, its files are checked (see
// checkMember): a damaged datastore is an error that names the file, not a
// crash of the process or a start that never ends.
//
// Call LockDataDir first: etcd removes an existing socket before it takes its
// own lock on dataDir.
func StartEtcd(dataDir, socketDir string, startTimeout time.Duration) (*Etcd, error) {
	if err := durable.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	if err := checkMember(dataDir); err != nil {
		return nil, err
	}
	socket, cleanup, err := socketPath(socketDir)
	if err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Name = "flagpole"
	cfg.Dir = dataDir
	cfg.LogLevel = "warn"
	client := url.URL{Scheme: "unix", Path: socket}
	cfg.ListenClientUrls = []url.URL{client}
	cfg.AdvertiseClientUrls = []url.URL{client}
	// No peer listener. The advertised peer URL (etcd's default) is only the
	// member's name in the one-member initial cluster; nothing listens on it.
	cfg.ListenPeerUrls = nil
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// Embedded etcd serves only this process: no metrics, debug or gateway.
	cfg.ListenMetricsUrls = nil
	cfg.EnableGRPCGateway = false

	e, err := startEmbed(cfg)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("starting embedded etcd in %s: %w. If this names a damaged file, restore %s from a backup (%s)", dataDir, err, dataDir, RestoreDocs)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		cleanup()
		return nil, fmt.Errorf("embedded etcd failed: %w", err)
	case <-time.After(startTimeout):
		e.Server.Stop()
		e.Close()
		cleanup()
		return nil, fmt.Errorf("embedded etcd in %s did not become ready within %s", dataDir, startTimeout)
	}
	clientURL := client.String()
	klog.InfoS("Embedded etcd is serving", "dataDir", dataDir, "clientURL", clientURL)
	return &Etcd{e: e, dir: dataDir, ClientURL: clientURL, closers: []func(){cleanup}}, nil
}

// startEmbed is embed.StartEtcd with the panics of etcd's bootstrap
// returned as errors: etcd panics (zap's Panic level, in this goroutine) on
// some data it cannot recover from — a database missing beside a compacted
// WAL, say, which checkMember already refuses — and a panic checkMember did
// not foresee is then still one line, not a crash.
func startEmbed(cfg *embed.Config) (e *embed.Etcd, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("etcd could not start on its data: %v", r)
		}
	}()
	return embed.StartEtcd(cfg)
}

// socketPath returns the absolute path for etcd's socket in dir, made 0700,
// or, when that path is too long to bind, in a fresh private directory under
// os.TempDir; cleanup removes that directory.
func socketPath(dir string) (socket string, cleanup func(), err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return "", nil, err
	}
	if socket = filepath.Join(dir, socketName); len(socket) <= maxSocketPath {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", nil, err
		}
		// MkdirAll keeps the mode of a directory that already exists.
		if err := os.Chmod(dir, 0o700); err != nil {
			return "", nil, err
		}
		return socket, func() {}, nil
	}
	private, err := os.MkdirTemp("", "flagpole-etcd-") // 0700
	if err != nil {
		return "", nil, err
	}
	socket = filepath.Join(private, socketName)
	if len(socket) > maxSocketPath {
		os.Remove(private)
		return "", nil, fmt.Errorf("no usable path for etcd's unix socket: %s and %s are both longer than %d bytes; use a shorter --data-dir or TMPDIR", dir, private, maxSocketPath)
	}
	klog.InfoS("Data directory path too long for a unix socket; etcd's socket is in a private temporary directory", "dir", dir, "socket", socket)
	return socket, func() { os.RemoveAll(private) }, nil
}

// Close stops etcd. Call it only after the API server has drained, so that
// in-flight requests can still reach storage.
func (e *Etcd) Close() {
	e.e.Close()
	for _, c := range slices.Backward(e.closers) {
		c()
	}
	klog.InfoS("Embedded etcd stopped")
}
