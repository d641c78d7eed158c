// Package memlimit gives the Go runtime a soft memory limit from the
// container's: without one the garbage collector lets the heap grow to
// twice its live size before collecting (GOGC=100), so a burst that doubles
// the live heap of a replica running near its container limit gets it
// OOM-killed, where a collector aware of the limit would have worked harder
// first. The limit is the cgroup's memory limit (v2 memory.max, or v1
// memory.limit_in_bytes) less a headroom for what is not Go heap (thread
// stacks, cgo, the runtime's own). GOMEMLIMIT, when set, wins.
package memlimit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"k8s.io/klog/v2"
)

// Fraction of the container's limit given to the Go runtime.
const Fraction = 0.9

// noLimit is what cgroup v1 reports for "no limit" (the largest page-aligned
// int64), and anything above it means the same.
const noLimit = math.MaxInt64 &^ (4096 - 1)

// Apply sets the runtime's memory limit from the cgroup, unless GOMEMLIMIT
// is set or the process has no cgroup memory limit, and logs what it did.
func Apply() {
	if v, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		klog.V(2).InfoS("Memory limit from GOMEMLIMIT", "GOMEMLIMIT", v)
		return
	}
	limit, path, err := FromCgroup(os.DirFS("/"))
	switch {
	case err != nil:
		klog.V(2).InfoS("No cgroup memory limit read; the Go runtime has no memory limit", "err", err)
	case limit <= 0:
		klog.V(2).InfoS("No cgroup memory limit; the Go runtime has no memory limit", "cgroup", path)
	default:
		soft := int64(float64(limit) * Fraction)
		debug.SetMemoryLimit(soft)
		klog.InfoS("Memory limit set from the container's", "cgroup", path, "containerLimit", limit, "goMemLimit", soft)
	}
}

// FromCgroup reads the memory limit of the process's cgroup from root (the
// file system's root: "/" in production, a test tree otherwise); 0 means no
// limit.
func FromCgroup(root fs.FS) (limit int64, file string, err error) {
	cgroups, err := fs.ReadFile(root, "proc/self/cgroup")
	if err != nil {
		return 0, "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(cgroups))
	var v1, v2 string
	for sc.Scan() {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2 = parts[2]
		case containsController(parts[1], "memory"):
			v1 = parts[2]
		}
	}
	candidates := []string{}
	if v1 != "" {
		candidates = append(candidates, filepath.Join("sys/fs/cgroup/memory", v1, "memory.limit_in_bytes"), "sys/fs/cgroup/memory/memory.limit_in_bytes")
	}
	if v2 != "" {
		candidates = append(candidates, filepath.Join("sys/fs/cgroup", v2, "memory.max"), "sys/fs/cgroup/memory.max")
	}
	for _, c := range candidates {
		c = strings.TrimPrefix(filepath.Clean(c), "/")
		data, err := fs.ReadFile(root, c)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, c, err
		}
		limit, err := parseLimit(string(data))
		if err != nil {
			return 0, c, fmt.Errorf("%s: %w", c, err)
		}
		return limit, "/" + c, nil
	}
	return 0, "", fmt.Errorf("no memory limit file for the cgroups in /proc/self/cgroup")
}

func containsController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

func parseLimit(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, err
	}
	if n >= noLimit || n <= 0 {
		return 0, nil
	}
	return n, nil
}
