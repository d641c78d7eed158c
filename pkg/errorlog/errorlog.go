// Package errorlog bounds what requests abandoned by their clients write to
// the log. Upstream's handler chain reports each request whose client went
// away mid-answer through utilruntime.HandleError ("Timeout or abort while
// handling", "apiserver was unable to write ... http: Handler timeout",
// "context canceled"): one to three lines per request, so a client that
// opens and abandons requests as fast as it can (CVE-2023-44487) would turn
// into a log that fills the disk. Those errors are logged at a bounded rate
// and the rest counted into one summary line per interval; every other
// error is logged as before.
package errorlog

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/klog/v2"
)

const (
	// burst abandoned-request errors are logged at once, and perSecond more
	// each second; the rest are counted.
	burst     = 20
	perSecond = 1.0
	// summaryInterval is how often the count of unlogged errors is logged.
	summaryInterval = 10 * time.Second
)

// abandonedMarks are in the errors and messages upstream reports for a
// request whose client went away.
var abandonedMarks = []string{"context canceled", "Handler timeout", "Timeout or abort while handling", "Post-timeout activity", "http2: stream closed"}

func abandoned(err error, msg string) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	text := msg
	if err != nil {
		text += " " + err.Error()
	}
	for _, m := range abandonedMarks {
		if strings.Contains(text, m) {
			return true
		}
	}
	return false
}

type throttle struct {
	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed int
	lastReport time.Time
}

// Install replaces apimachinery's logging error handler (the first of
// utilruntime.ErrorHandlers) with one that throttles abandoned-request
// errors; the others (the global back-off) stay. Call it once, at start.
func Install() {
	if len(utilruntime.ErrorHandlers) == 0 {
		return
	}
	t := &throttle{tokens: burst, last: time.Now(), lastReport: time.Now()}
	logError := utilruntime.ErrorHandlers[0]
	utilruntime.ErrorHandlers = append([]utilruntime.ErrorHandler{func(ctx context.Context, err error, msg string, keysAndValues ...interface{}) {
		if abandoned(err, msg) && !t.allow(time.Now()) {
			return
		}
		logError(ctx, err, msg, keysAndValues...)
	}}, utilruntime.ErrorHandlers[1:]...)
}

// allow spends a token, or counts the error; it logs the summary when due.
func (t *throttle) allow(now time.Time) bool {
	t.mu.Lock()
	t.tokens = min(burst, t.tokens+now.Sub(t.last).Seconds()*perSecond)
	t.last = now
	ok := t.tokens >= 1
	if ok {
		t.tokens--
	} else {
		t.suppressed++
	}
	var report int
	if t.suppressed > 0 && now.Sub(t.lastReport) >= summaryInterval {
		report, t.suppressed, t.lastReport = t.suppressed, 0, now
	}
	t.mu.Unlock()
	if report > 0 {
		klog.InfoS("Requests abandoned by their clients: errors not logged", "count", report, "interval", summaryInterval)
	}
	return ok
}
