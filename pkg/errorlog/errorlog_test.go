package errorlog

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/klog/v2"
)

// Abandoned-request errors are logged up to the burst, then counted; other
// errors are always logged.
func TestInstallThrottlesAbandonedRequests(t *testing.T) {
	saved := utilruntime.ErrorHandlers
	t.Cleanup(func() { utilruntime.ErrorHandlers = saved })
	// Without upstream's back-off, which would make the test take 1 ms an error.
	utilruntime.ErrorHandlers = utilruntime.ErrorHandlers[:1]
	Install()

	var logged atomic.Int32
	ctx := klog.NewContext(context.Background(), funcr.New(func(prefix, args string) { logged.Add(1) }, funcr.Options{}))
	for range 1000 {
		utilruntime.HandleErrorWithContext(ctx, context.Canceled, "Unhandled Error")
		utilruntime.HandleErrorWithContext(ctx, errors.New("apiserver was unable to write a JSON response: http: Handler timeout"), "Unhandled Error")
	}
	if n := logged.Load(); n < burst || n > burst+5 {
		t.Errorf("%d of 2,000 abandoned-request errors logged, want about the burst of %d", n, burst)
	}
	before := logged.Load()
	for range 10 {
		utilruntime.HandleErrorWithContext(ctx, errors.New("etcd cluster is down"), "Unhandled Error")
	}
	if n := logged.Load() - before; n != 10 {
		t.Errorf("%d of 10 other errors logged, want all", n)
	}
}

func TestThrottleSummary(t *testing.T) {
	start := time.Now()
	th := &throttle{tokens: burst, last: start, lastReport: start}
	for range burst {
		if !th.allow(start) {
			t.Fatal("refused within the burst")
		}
	}
	if th.allow(start) || th.suppressed != 1 {
		t.Fatalf("past the burst: suppressed %d", th.suppressed)
	}
	if !th.allow(start.Add(2 * time.Second)) {
		t.Error("no token a second later")
	}
	th.allow(start.Add(summaryInterval + time.Second))
	if th.suppressed != 0 {
		t.Errorf("after the summary interval %d are still counted, want them reported", th.suppressed)
	}
}
