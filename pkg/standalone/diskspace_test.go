package standalone

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

func TestDiskSpace(t *testing.T) {
	const min = 100 << 20
	var free atomic.Uint64
	d := NewDiskSpace("/data/etcd", min)
	d.free = func(string) (uint64, error) { return free.Load(), nil }
	health := d.HealthCheck()
	if health.Name() != "embedded-etcd-disk-space" {
		t.Errorf("health check %q", health.Name())
	}

	for _, step := range []struct {
		free    uint64
		refused bool
		level   diskLevel
	}{
		{free: 1 << 30, level: diskOK},
		{free: 2*min - 1, level: diskLow},
		{free: min, level: diskLow},
		{free: min - 1, refused: true, level: diskFull},
		// Refused until the free space is back above the threshold by the
		// margin: no flapping at the edge.
		{free: min + resumeMargin - 1, refused: true, level: diskFull},
		{free: min + resumeMargin, level: diskLow},
		{free: 1 << 30, level: diskOK},
	} {
		free.Store(step.free)
		err := d.WritesRefused()
		if (err != nil) != step.refused || d.level != step.level {
			t.Fatalf("%d bytes free: level %d, refused %v, want level %d, refused %v", step.free, d.level, err, step.level, step.refused)
		}
		if herr := health.Check(httptest.NewRequest("GET", "/healthz", nil)); (herr != nil) != step.refused {
			t.Errorf("%d bytes free: health check %v, want failing %v", step.free, herr, step.refused)
		}
		if err == nil {
			continue
		}
		for _, want := range []string{"embedded etcd's disk is nearly full", fmt.Sprintf("(%s available in /data/etcd;", quantity(step.free)),
			"writes are refused below 100.0 MiB", "reads and evaluations are still served", "docs/operations.md#disk-space"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q does not say %q", err, want)
			}
		}
	}

	// A free space that cannot be measured changes nothing.
	free.Store(min - 1)
	if d.Check() == nil {
		t.Fatal("not refused")
	}
	d.free = func(string) (uint64, error) { return 0, errors.New("statfs: input/output error") }
	if d.WritesRefused() == nil {
		t.Error("a failed measure ended the refusal")
	}
}

// An error of etcd's start is explained when the disk is the reason.
func TestDiskSpaceExplain(t *testing.T) {
	d := NewDiskSpace("/data/etcd", 100<<20)
	startErr := fmt.Errorf("creating WAL: %w", syscall.ENOSPC)
	d.free = func(string) (uint64, error) { return 200 << 20, nil }
	if err := d.explain(errors.New("etcd: bad flag")); err.Error() != "etcd: bad flag" {
		t.Errorf("an error unrelated to the disk became %q", err)
	}
	if err := d.explain(startErr); !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "has 200.0 MiB available") {
		t.Errorf("ENOSPC explained as %q", err)
	}
	d.free = func(string) (uint64, error) { return 10 << 20, nil }
	if err := d.explain(errors.New("did not become ready")); !strings.Contains(err.Error(), "free disk space in /data/etcd and start again") {
		t.Errorf("a failed start on a full disk explained as %q", err)
	}
}

func TestAvailableBytes(t *testing.T) {
	dir := t.TempDir()
	n, err := availableBytes(dir)
	if err != nil || n == 0 {
		t.Fatalf("availableBytes(%s) = %d, %v", dir, n, err)
	}
	// A directory not yet made: its nearest parent's file system.
	if m, err := availableBytes(dir + "/etcd/member"); err != nil || m == 0 {
		t.Errorf("availableBytes of a missing directory = %d, %v", m, err)
	}
}
