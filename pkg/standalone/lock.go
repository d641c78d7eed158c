package standalone

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/flagpole-dev/flagpole/pkg/durable"
)

// LockDataDir takes an exclusive lock on dir, creating it (0700) if needed, and
// returns the function that releases it. A second server on the same directory
// fails at once instead of waiting for ever on etcd's own lock — and it fails
// before it touches anything: embedded etcd removes an existing socket when it
// opens its listener, before it takes its lock, which would cut off the server
// already running. The lock is flock(2) on the directory itself, so it leaves
// no file behind and is released by the kernel when the process dies.
func LockDataDir(dir string) (unlock func(), err error) {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	if err := durable.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s is in use by another flagpole-apiserver: stop it, or give this one another --data-dir", dir)
		}
		return nil, fmt.Errorf("locking data directory %s: %w", dir, err)
	}
	// Closing the descriptor releases the lock.
	return func() { f.Close() }, nil
}
