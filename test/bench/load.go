package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	tcluster "github.com/flagpole-dev/flagpole/test/cluster"
	"github.com/flagpole-dev/flagpole/test/process"
)

// target is one measured path: a URL, an identity and the status it answers.
type target struct {
	name   string
	url    string
	tls    *tls.Config // roots, and the client certificate if any
	bearer string
	want   int
	keyed  bool             // the body carries a fresh targetingKey per request
	body   []byte           // the fixed body when !keyed
	server *process.Process // whose CPU time is measured alongside
	// goal is the target throughput as a multiple of SelfSubjectReview's
	// (0: none); cpuGoal the target server CPU per request (0: none).
	goal    float64
	cpuGoal time.Duration
}

// seq numbers requests across all workers, so every evaluation sees a
// different targetingKey and fractional rollouts hash a new key each time.
var seq atomic.Uint64

func (t *target) newRequest(ctx context.Context) (*http.Request, error) {
	body := t.body
	if t.keyed {
		body = append([]byte(`{"context":{"targetingKey":"user-`), strconv.FormatUint(seq.Add(1), 10)...)
		body = append(body, `"}}`...)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if t.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+t.bearer)
	}
	return req, nil
}

// do sends one request and drains the answer so the connection is reused.
// It returns "" for the expected status, or what went wrong.
func (t *target) do(ctx context.Context, c *http.Client) string {
	req, err := t.newRequest(ctx)
	if err != nil {
		return "request: " + err.Error()
	}
	resp, err := c.Do(req)
	if err != nil {
		return "transport: " + err.Error()
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != t.want {
		return "status " + strconv.Itoa(resp.StatusCode)
	}
	return ""
}

// client builds a client whose connections are TLS HTTP/1.1 keep-alive:
// HTTP/2 would multiplex every worker onto one connection and measure
// something else. dials counts the connections it opens.
func (t *target) client(maxIdle int, maxConns int, dials *atomic.Int64) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     t.tls.Clone(),
			ForceAttemptHTTP2:   false,
			TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
			MaxIdleConns:        maxIdle,
			MaxIdleConnsPerHost: maxIdle,
			MaxConnsPerHost:     maxConns,
			DisableCompression:  true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				dials.Add(1)
				return d.DialContext(ctx, network, addr)
			},
		},
	}
}

// result is one measured window of one path.
type result struct {
	ok       int
	errs     map[string]int
	lat      []time.Duration // of the expected answers
	window   time.Duration
	conns    int64
	latSched []time.Duration // fixed rate only: from the scheduled time, not the send
	// The server's CPU time during the window: with the load generator on
	// the same cores, throughput understates how much cheaper a path is, and
	// CPU per request does not.
	serverCPU time.Duration
}

// cpuPerRequest is the server's CPU time per answered request; 0 if unknown.
func (r *result) cpuPerRequest() time.Duration {
	n := r.ok + r.errCount()
	if r.serverCPU <= 0 || n == 0 {
		return 0
	}
	return r.serverCPU / time.Duration(n)
}

// cores is how many cores the server kept busy on average.
func (r *result) cores() float64 { return r.serverCPU.Seconds() / r.window.Seconds() }

func (r *result) rate() float64 { return float64(r.ok) / r.window.Seconds() }

func (r *result) errCount() int {
	n := 0
	for _, c := range r.errs {
		n += c
	}
	return n
}

func (r *result) add(o *result) {
	r.ok += o.ok
	r.lat = append(r.lat, o.lat...)
	r.latSched = append(r.latSched, o.latSched...)
	r.window += o.window
	r.conns += o.conns
	r.serverCPU += o.serverCPU
	for k, v := range o.errs {
		r.errs[k] += v
	}
}

// percentile of sorted-on-demand latencies; q in (0, 1].
func percentile(lat []time.Duration, q float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[int(math.Ceil(q*float64(len(s))))-1]
}

// closedLoop runs workers that each send the next request as soon as the last
// answered, for warmup then measure. Throughput and latency count the requests
// that ended inside the measured window.
func closedLoop(ctx context.Context, t *target, workers int, warmup, measure time.Duration) *result {
	var dials atomic.Int64
	// One connection per worker: the pool holds exactly workers connections.
	c := t.client(workers, workers, &dials)
	defer c.CloseIdleConnections()
	start := time.Now()
	mStart, mEnd := start.Add(warmup), start.Add(warmup+measure)
	cpu := measureCPU(ctx, t.server, mStart, mEnd)
	total := inWorkers(workers, func(r *result) {
		for ctx.Err() == nil {
			t0 := time.Now()
			if t0.After(mEnd) {
				return
			}
			failure := t.do(ctx, c)
			t1 := time.Now()
			if t1.Before(mStart) || t1.After(mEnd) {
				continue
			}
			if failure != "" {
				r.errs[failure]++
				continue
			}
			r.ok++
			r.lat = append(r.lat, t1.Sub(t0))
		}
	})
	total.window, total.conns, total.serverCPU = measure, dials.Load(), <-cpu
	return total
}

// inWorkers runs loop on workers goroutines, each filling a result of its
// own, and returns them merged once all have returned.
func inWorkers(workers int, loop func(r *result)) *result {
	per := make([]*result, workers)
	var wg sync.WaitGroup
	for w := range workers {
		r := &result{errs: map[string]int{}}
		per[w] = r
		wg.Go(func() { loop(r) })
	}
	wg.Wait()
	total := &result{errs: map[string]int{}}
	for _, r := range per {
		total.add(r)
	}
	return total
}

// maxOutstanding bounds the fixed-rate phase's goroutines if the server falls
// behind; requests over it are counted as errors, not queued.
const maxOutstanding = 2000

// fixedRate sends rate requests per second on a schedule, whatever the
// answers (open loop), for warmup then measure. Every request has its own
// goroutine, so a slow answer never delays the next send (no coordinated
// omission) and latency is taken from the moment the request is handed to the
// client. latSched is taken from the scheduled time instead: the difference is
// the load generator's own timer and goroutine scheduling lag, which is no
// property of the server, shown beside it so that it is visible.
func fixedRate(ctx context.Context, t *target, rate int, warmup, measure time.Duration) *result {
	var dials atomic.Int64
	// No connection limit: an open loop must not queue behind its own pool.
	c := t.client(64, 0, &dials)
	defer c.CloseIdleConnections()
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	mStart := start.Add(warmup)
	cpu := measureCPU(ctx, t.server, mStart, mStart.Add(measure))
	// The schedule ends exactly at warmup+measure.
	total := int((warmup + measure) / interval)

	var mu sync.Mutex
	r := &result{errs: map[string]int{}, window: measure}
	record := func(sched, sent, done time.Time, failure string) {
		if sched.Before(mStart) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if failure != "" {
			r.errs[failure]++
			return
		}
		r.ok++
		r.lat = append(r.lat, done.Sub(sent))
		r.latSched = append(r.latSched, done.Sub(sched))
	}

	var wg sync.WaitGroup
	var outstanding atomic.Int64
	// The ticker only wakes the scheduler; each wake-up launches every request
	// whose time has come, so late or coalesced ticks do not lower the rate.
	tick := time.NewTicker(min(interval, time.Millisecond))
	defer tick.Stop()
	next := 0
	for next < total && ctx.Err() == nil {
		now := <-tick.C
		for ; next < total; next++ {
			sched := start.Add(time.Duration(next) * interval)
			if sched.After(now) {
				break
			}
			if outstanding.Load() >= maxOutstanding {
				record(sched, sched, sched, "dropped: over "+strconv.Itoa(maxOutstanding)+" outstanding")
				continue
			}
			outstanding.Add(1)
			wg.Go(func() {
				defer outstanding.Add(-1)
				sent := time.Now()
				failure := t.do(ctx, c)
				record(sched, sent, time.Now(), failure)
			})
		}
	}
	wg.Wait()
	r.conns = dials.Load()
	r.serverCPU = <-cpu
	return r
}

// waitAnswering waits until every path gives its expected answer, before
// anything is measured: a wrong set-up fails here instead of yielding a
// table of errors. It also waits for the evaluator to see flags just
// created.
func waitAnswering(ctx context.Context, paths []*target) error {
	for _, t := range paths {
		c := t.client(1, 1, new(atomic.Int64))
		err := tcluster.WaitFor(ctx, nil, 30*time.Second, func() error {
			if failure := t.do(ctx, c); failure != "" {
				return errors.New(t.name + ": " + failure)
			}
			return nil
		})
		c.CloseIdleConnections()
		if err != nil {
			return err
		}
	}
	return nil
}
