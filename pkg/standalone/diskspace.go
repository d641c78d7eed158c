package standalone

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
)

// DefaultMinFreeBytes is the free space on embedded etcd's file system below
// which writes are refused: 128 MiB, which leaves etcd room for
//
//   - one more write-ahead log segment (64 MB): etcd preallocates the next
//     segment whenever it starts one, and a segment it cannot allocate is a
//     fatal error;
//   - one growth step of its bbolt database (16 MiB, bbolt's allocation
//     size), written into when the database's free pages run out;
//   - about 48 MiB for what is already under way when the space runs low:
//     writes accepted an instant earlier (each at most 1.5 MiB), and the
//     compactions, lease expiries and elections that write without going
//     through the API, which go on while writes are refused.
//
// etcd's snapshots take little besides: in etcd 3.7 a snapshot file holds
// the membership only, the data being in the database itself.
const DefaultMinFreeBytes = 128 << 20

// MinimumMinFreeBytes is the lowest threshold accepted: below it etcd may
// not find room for its next WAL segment.
const MinimumMinFreeBytes = 80 << 20

// diskSpacePoll is how often the free space is measured when nothing
// writes (each write also measures it).
const diskSpacePoll = time.Second

// resumeMargin is how far above the threshold the free space must be before
// refused writes resume, so that writes do not flap on and off at the edge.
const resumeMargin = 16 << 20

var (
	diskAvailable = metrics.NewGauge(&metrics.GaugeOpts{
		Name:           "flagpole_embedded_etcd_disk_available_bytes",
		Help:           "Bytes available to unprivileged users on the file system of embedded etcd's data.",
		StabilityLevel: metrics.ALPHA,
	})
	diskMinFree = metrics.NewGauge(&metrics.GaugeOpts{
		Name:           "flagpole_embedded_etcd_disk_min_free_bytes",
		Help:           "The free space below which writes are refused (--embedded-etcd-min-free-space); a warning is logged below twice this.",
		StabilityLevel: metrics.ALPHA,
	})
	writesRefused = metrics.NewGauge(&metrics.GaugeOpts{
		Name:           "flagpole_embedded_etcd_writes_refused",
		Help:           "1 while writes are refused because embedded etcd's file system is nearly full, 0 otherwise.",
		StabilityLevel: metrics.ALPHA,
	})
	refusedWrites = metrics.NewCounter(&metrics.CounterOpts{
		Name:           "flagpole_embedded_etcd_refused_writes_total",
		Help:           "Writes answered 507 because embedded etcd's file system was nearly full.",
		StabilityLevel: metrics.ALPHA,
	})
	registerDiskMetrics sync.Once
)

// diskLevel is how full embedded etcd's file system is.
type diskLevel int

const (
	diskOK diskLevel = iota
	// diskLow: below twice the threshold; a warning.
	diskLow
	// diskFull: below the threshold; writes are refused.
	diskFull
)

// DiskSpace watches the free space of the file system embedded etcd writes
// to, logs when it runs low, exports it as metrics, and tells the API
// server's stores to refuse writes (WritesRefused) while it is below the
// threshold, so that etcd — which ends the process when a write fails —
// keeps room for what it must write. Reads and evaluations are served from
// the watch cache as usual.
type DiskSpace struct {
	dir string
	min uint64
	// free measures the space available in a directory.
	free func(dir string) (uint64, error)

	mu        sync.Mutex
	level     diskLevel
	available uint64
	// statfsErr is the last error measuring, logged once.
	statfsErr string
}

// NewDiskSpace watches the file system of dir; minFree 0 means
// DefaultMinFreeBytes.
func NewDiskSpace(dir string, minFree int64) *DiskSpace {
	if minFree <= 0 {
		minFree = DefaultMinFreeBytes
	}
	registerDiskMetrics.Do(func() { legacyregistry.MustRegister(diskAvailable, diskMinFree, writesRefused, refusedWrites) })
	diskMinFree.Set(float64(minFree))
	return &DiskSpace{dir: dir, min: uint64(minFree), free: availableBytes}
}

// availableBytes is the space unprivileged users may still use on dir's
// file system (what df shows as available), of dir or, before it exists,
// of its nearest parent.
func availableBytes(dir string) (uint64, error) {
	for {
		var st syscall.Statfs_t
		err := syscall.Statfs(dir, &st)
		if err == nil {
			return st.Bavail * uint64(st.Bsize), nil
		}
		parent := filepath.Dir(dir)
		if !errors.Is(err, syscall.ENOENT) || parent == dir {
			return 0, &os.PathError{Op: "statfs", Path: dir, Err: err}
		}
		dir = parent
	}
}

// Check measures the free space now, logs and exports what changed, and
// returns the error writes get while they are refused.
func (d *DiskSpace) Check() error {
	available, err := d.free(d.dir)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		// Unknown is not full: refusing every write because statfs failed
		// would be an outage of its own. The last measure stands.
		if err.Error() != d.statfsErr {
			klog.ErrorS(err, "Cannot measure embedded etcd's free disk space", "dir", d.dir)
			d.statfsErr = err.Error()
		}
		return d.refusedLocked()
	}
	d.statfsErr = ""
	d.available = available
	diskAvailable.Set(float64(available))
	level := diskOK
	switch {
	case available < d.min || (d.level == diskFull && available < d.min+resumeMargin):
		level = diskFull
	case available < 2*d.min:
		level = diskLow
	}
	if level != d.level {
		d.logLevel(level)
		d.level = level
	}
	if level == diskFull {
		writesRefused.Set(1)
		return d.refusedLocked()
	}
	writesRefused.Set(0)
	return nil
}

func (d *DiskSpace) logLevel(level diskLevel) {
	kv := []any{"dir", d.dir, "available", quantity(d.available), "refuseWritesBelow", quantity(d.min)}
	switch {
	case level == diskFull:
		klog.ErrorS(nil, "Embedded etcd's disk is nearly full: refusing writes (507 Insufficient Storage) until space is freed; reads and evaluations are still served", kv...)
	case d.level == diskFull:
		klog.InfoS("Embedded etcd's disk has room again: accepting writes", append(kv, "low", level == diskLow)...)
	case level == diskLow:
		klog.ErrorS(nil, "Embedded etcd's disk is filling up: writes will be refused when less is available than the threshold", kv...)
	default:
		klog.InfoS("Embedded etcd's disk has room again", kv...)
	}
}

// WritesRefused is nil while writes may go to etcd, and otherwise the reason
// they may not (for the client). It measures the free space each time, so
// a disk filled between two polls is noticed by the next write.
func (d *DiskSpace) WritesRefused() error {
	err := d.Check()
	if err != nil {
		refusedWrites.Inc()
	}
	return err
}

func (d *DiskSpace) refused() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.refusedLocked()
}

func (d *DiskSpace) refusedLocked() error {
	if d.level != diskFull {
		return nil
	}
	return fmt.Errorf("embedded etcd's disk is nearly full (%s available in %s; writes are refused below %s so that etcd keeps room for its write-ahead log): "+
		"free disk space there and retry; reads and evaluations are still served (see docs/operations.md#disk-space)",
		quantity(d.available), d.dir, quantity(d.min))
}

// HealthCheck fails while writes are refused. It belongs on /healthz only:
// /readyz failing would take the replica out of service although it
// serves reads and evaluations, and /livez failing would have it restarted,
// which frees no space.
func (d *DiskSpace) HealthCheck() healthz.HealthChecker {
	return healthz.NamedCheck("embedded-etcd-disk-space", func(*http.Request) error { return d.refused() })
}

// Run measures the free space every second until stop is called.
func (d *DiskSpace) Run() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(diskSpacePoll)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = d.Check()
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// explain adds to an error of etcd's start what the free space says, when
// it is below the threshold: etcd preallocates 128 MB of write-ahead log
// before it serves, and fails without saying the disk is the reason.
func (d *DiskSpace) explain(err error) error {
	available, ferr := d.free(d.dir)
	if ferr != nil || (available >= d.min && !errors.Is(err, syscall.ENOSPC)) {
		return err
	}
	return fmt.Errorf("%w (embedded etcd's file system has %s available, less than the %s etcd needs to start and write: free disk space in %s and start again)",
		err, quantity(available), quantity(d.min), d.dir)
}

// quantity prints a byte count in MiB.
func quantity(n uint64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
