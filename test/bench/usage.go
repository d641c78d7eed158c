package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/client-go/rest"

	"github.com/flagpole-dev/flagpole/pkg/controllers/leaderelection"
	"github.com/flagpole-dev/flagpole/pkg/standalone"
	tcluster "github.com/flagpole-dev/flagpole/test/cluster"
)

// usageRun is what the usage bench measured.
type usageRun struct {
	began    time.Time
	revision string
	version  string
	interval time.Duration
	flags    int

	// Throughput of OFREP single evaluation, by round, counting off and on.
	off, on []*result

	// Go heap growth for evaluating every one of flags flags twice (two
	// variants), counting off and on; the record's size once written.
	heapOff, heapOn int64
	recordBytes     int64

	phases []writePhase
}

// writePhase is a span of flush intervals under one load, and the etcd
// writes it caused.
type writePhase struct {
	name      string
	requests  int
	flags     int
	intervals float64
	writes    int64
	window    time.Duration
}

func (p writePhase) perInterval() float64 { return float64(p.writes) / p.intervals }

// runUsage measures what counting usage costs: OFREP throughput with
// counting on against off, in alternating rounds of the same run; the heap
// a flag's counts take; and the etcd writes usage causes per flush
// interval, idle, under a trickle on one flag and under full load on every
// flag.
func runUsage(ctx context.Context, cfg config) error {
	run := &usageRun{began: time.Now(), revision: gitRevision(), interval: cfg.usageInterval, flags: cfg.usageFlags}
	e, err := newEnv(cfg)
	if err != nil {
		return err
	}
	defer e.close()
	interval := "--usage-flush-interval=" + cfg.usageInterval.String()

	start := 0
	for round := 0; round < cfg.usageRounds; round++ {
		// Alternate which goes first, so that drift within a round cancels.
		modes := []bool{round%2 == 1, round%2 == 0}
		for _, counting := range modes {
			start++
			name := fmt.Sprintf("flagpole-%d", start)
			fp, err := startFlagpoleAs(ctx, e, cfg.flagpoleBin, name, e.Path(name), "--usage-counting="+strconv.FormatBool(counting), interval)
			if err != nil {
				return err
			}
			run.version = fp.version
			if err := fp.createFlags(); err != nil {
				return err
			}
			t := ofrepTarget(fp, "fractional-flag")
			if err := waitAnswers(ctx, t); err != nil {
				return err
			}
			logf("usage: round %d, counting %v: %d workers for %s", round+1, counting, cfg.workers, cfg.measure)
			res := closedLoop(ctx, t, cfg.workers, cfg.warmup, cfg.measure)
			if counting {
				run.on = append(run.on, res)
			} else {
				run.off = append(run.off, res)
			}
			logf("usage: %.0f req/s, %.0f µs server CPU per request", res.rate(), us(res.cpuPerRequest()))
			if err := fp.server.Stop(30 * time.Second); err != nil {
				return err
			}
		}
	}

	// Memory, counting off then on, then the writes on the server that counts.
	var counting *flagpole
	for _, on := range []bool{false, true} {
		name := "flagpole-memory-" + strconv.FormatBool(on)
		fp, err := startFlagpoleAs(ctx, e, cfg.flagpoleBin, name, e.Path(name), "--usage-counting="+strconv.FormatBool(on), interval)
		if err != nil {
			return err
		}
		growth, err := usageMemory(ctx, cfg, fp, on)
		if err != nil {
			return err
		}
		if on {
			run.heapOn, counting = growth, fp
		} else {
			run.heapOff = growth
			if err := fp.server.Stop(30 * time.Second); err != nil {
				return err
			}
		}
	}
	if run.recordBytes, err = metricInt(ctx, counting, "flagpole_usage_record_bytes"); err != nil {
		return err
	}
	if run.phases, err = usageWrites(ctx, cfg, counting); err != nil {
		return err
	}
	section := run.markdown()
	fmt.Println(section)
	if cfg.docs != "" {
		return updateDocs(cfg.docs, "usage", section)
	}
	return nil
}

func ofrepTarget(fp *flagpole, flag string) *target {
	return &target{
		name: "OFREP single " + flag + " (bearer)", want: http.StatusOK, keyed: true,
		url:    fp.url + "/namespaces/" + benchNamespace + "/ofrep/v1/evaluate/flags/" + flag,
		tls:    &tls.Config{RootCAs: fp.roots},
		bearer: fp.appToken,
		server: fp.server,
	}
}

// waitAnswers waits until t answers as expected (the evaluator has the
// flag).
func waitAnswers(ctx context.Context, t *target) error {
	c := t.client(1, 1, new(atomic.Int64))
	defer c.CloseIdleConnections()
	return tcluster.WaitFor(ctx, nil, 30*time.Second, func() error {
		if failure := t.do(ctx, c); failure != "" {
			return fmt.Errorf("%s: %s", t.name, failure)
		}
		return nil
	})
}

func (f *flagpole) restConfig() *rest.Config {
	pki := standalone.Layout{DataDir: f.dataDir}.PKI()
	return &rest.Config{Host: f.url, TLSClientConfig: rest.TLSClientConfig{CAFile: pki.CACertFile(), CertFile: pki.AdminCertFile(), KeyFile: pki.AdminKeyFile()}}
}

// memoryFlag is flag i of the memory and writes phases: variant on for the
// vip plan, off otherwise.
func memoryFlag(i int) string {
	return fmt.Sprintf(`{"apiVersion":"flagpole.dev/v1beta1","kind":"Flag","metadata":{"name":"flag-%d"},
	  "spec":{"type":"Boolean","variants":[{"name":"on","value":true},{"name":"off","value":false}],"defaultVariant":"off",
	          "rules":[{"name":"vip","when":"context.plan == \"vip\"","variant":"on"}]}}`, i)
}

// usageMemory creates the flags, lets the server settle, and returns how
// much its Go heap grows when every flag is evaluated for both variants
// and the counts are flushed.
func usageMemory(ctx context.Context, cfg config, fp *flagpole, save bool) (int64, error) {
	c := fp.adminClient()
	defer c.CloseIdleConnections()
	if err := inParallel(cfg.workers, cfg.usageFlags, func(i int) error {
		resp, err := c.Post(fp.url+"/apis/flagpole.dev/v1beta1/namespaces/"+benchNamespace+"/flags", "application/json", strings.NewReader(memoryFlag(i)))
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("create flag-%d: %d %s", i, resp.StatusCode, b)
		}
		return nil
	}); err != nil {
		return 0, err
	}
	etcd, err := embeddedEtcd(fp)
	if err != nil {
		return 0, err
	}
	defer etcd.Close()
	// Settled: the history controller's revisions written, nothing but the
	// usage flush (one write an interval) moving.
	if err := settle(ctx, etcd, 3*cfg.usageInterval, 4); err != nil {
		return 0, err
	}
	profBefore, before, err := liveHeap(ctx, fp)
	if err != nil {
		return 0, err
	}
	if _, err := evaluateAll(ctx, fp, cfg.workers, cfg.usageFlags, 2*cfg.usageFlags); err != nil {
		return 0, err
	}
	// Two flush intervals: the counts bucketed and the record written.
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(2*cfg.usageInterval + time.Second):
	}
	profAfter, after, err := liveHeap(ctx, fp)
	if err != nil {
		return 0, err
	}
	logf("usage: heap %d → %d bytes for %d flags", before, after, cfg.usageFlags)
	if save {
		// What the growth is: go tool pprof -top -base usage-heap-before.pprof usage-heap-after.pprof
		for name, prof := range map[string][]byte{"usage-heap-before.pprof": profBefore, "usage-heap-after.pprof": profAfter} {
			if err := os.WriteFile(filepath.Join(cfg.outDir, name), prof, 0o644); err != nil {
				return 0, err
			}
		}
	}
	return after - before, nil
}

// liveHeap forces a GC and returns the heap profile and the bytes of live
// objects (go_memstats_alloc_bytes): exact, where heap in use counts whole
// spans and moves with fragmentation.
func liveHeap(ctx context.Context, fp *flagpole) ([]byte, int64, error) {
	prof, err := debugGet(ctx, fp.restConfig(), "/debug/pprof/heap?gc=1")
	if err != nil {
		return nil, 0, err
	}
	live, err := metricInt(ctx, fp, "go_memstats_alloc_bytes")
	return prof, live, err
}

// evaluateAll sends n OFREP evaluations over the first flags flags, in
// order, half for each variant, from workers connections, and returns how
// many were answered 200.
func evaluateAll(ctx context.Context, fp *flagpole, workers, flags, n int) (int, error) {
	t := ofrepTarget(fp, "")
	c := t.client(workers, workers, new(atomic.Int64))
	defer c.CloseIdleConnections()
	var ok atomic.Int64
	err := inParallel(workers, n, func(i int) error {
		body := `{"context":{"targetingKey":"u-` + strconv.Itoa(i) + `"}}`
		if i%2 == 0 {
			body = `{"context":{"targetingKey":"u-` + strconv.Itoa(i) + `","plan":"vip"}}`
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url+"flag-"+strconv.Itoa((i/2)%flags), strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+fp.appToken)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			ok.Add(1)
		}
		return nil
	})
	return int(ok.Load()), err
}

// usageWrites counts the etcd writes of a few flush intervals under each
// load: none, one flag at a trickle, and every flag as fast as the workers
// go.
func usageWrites(ctx context.Context, cfg config, fp *flagpole) ([]writePhase, error) {
	etcd, err := embeddedEtcd(fp)
	if err != nil {
		return nil, err
	}
	defer etcd.Close()
	span := time.Duration(cfg.usageIntervals) * cfg.usageInterval
	var phases []writePhase
	for _, p := range []struct {
		name  string
		flags int
		load  func(ctx context.Context) int
	}{
		{"idle", 0, func(ctx context.Context) int { <-ctx.Done(); return 0 }},
		{"one flag, 50 req/s", 1, func(ctx context.Context) int {
			n := 0
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return n
				case <-tick.C:
					got, _ := evaluateAll(ctx, fp, 1, 1, 1)
					n += got
				}
			}
		}},
		{fmt.Sprintf("all %d flags, %d workers closed loop", cfg.usageFlags, cfg.workers), cfg.usageFlags, func(ctx context.Context) int {
			n := 0
			for ctx.Err() == nil {
				got, _ := evaluateAll(ctx, fp, cfg.workers, cfg.usageFlags, 2*cfg.usageFlags)
				n += got
			}
			return n
		}},
	} {
		before, err := revision(ctx, etcd)
		if err != nil {
			return nil, err
		}
		began := time.Now()
		pctx, cancel := context.WithTimeout(ctx, span)
		requests := p.load(pctx)
		cancel()
		window := time.Since(began)
		after, err := revision(ctx, etcd)
		if err != nil {
			return nil, err
		}
		ph := writePhase{name: p.name, requests: requests, flags: p.flags, intervals: window.Seconds() / cfg.usageInterval.Seconds(), writes: after - before, window: window}
		logf("usage: %s: %d requests, %d etcd writes in %.1f intervals", p.name, requests, ph.writes, ph.intervals)
		phases = append(phases, ph)
	}
	return phases, nil
}

// embeddedEtcd connects to a standalone Flagpole's embedded etcd.
func embeddedEtcd(fp *flagpole) (*clientv3.Client, error) {
	socket := "unix://" + filepath.Join(standalone.Layout{DataDir: fp.dataDir}.EtcdSocketDir(), "etcd.sock")
	return leaderelection.NewClient(storagebackend.TransportConfig{ServerList: []string{socket}})
}

func revision(ctx context.Context, c *clientv3.Client) (int64, error) {
	resp, err := c.Get(ctx, "/flagpole-bench-revision")
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}

// settle waits until etcd's revision moves by at most slack over quiet.
func settle(ctx context.Context, c *clientv3.Client, quiet time.Duration, slack int64) error {
	return tcluster.WaitFor(ctx, nil, 5*time.Minute, func() error {
		a, err := revision(ctx, c)
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(quiet):
		}
		b, err := revision(ctx, c)
		if err != nil {
			return err
		}
		if b-a > slack {
			return fmt.Errorf("etcd moved %d revisions in %s", b-a, quiet)
		}
		return nil
	})
}

// inParallel runs fn(0..n-1) on workers goroutines; the first error wins.
func inParallel(workers, n int, fn func(i int) error) error {
	var next atomic.Int64
	var first error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// metricInt reads an unlabelled metric from a server's /metrics.
func metricInt(ctx context.Context, fp *flagpole, name string) (int64, error) {
	b, err := debugGet(ctx, fp.restConfig(), "/metrics")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f), err
		}
	}
	return 0, fmt.Errorf("no %s in /metrics", name)
}

func (r *usageRun) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s; this bench took %.0f s.\n\n", hostLine(r.began, r.version, r.revision), time.Since(r.began).Seconds())
	fmt.Fprintf(&b, "**Throughput**: OFREP single evaluation of `fractional-flag` (a new targeting key each request), %d rounds; in each a fresh standalone server with `--usage-counting=false` and one with counting on (the order alternating), closed loop as in the evaluation bench. On/off is the round's counting-on rate over its counting-off rate.\n\n", len(r.on))
	b.WriteString("| Round | Counting off req/s | Counting on req/s | On / off | Server CPU/req off | Server CPU/req on |\n|---:|---:|---:|---:|---:|---:|\n")
	var ratios []float64
	for i := range r.on {
		ratio := r.on[i].rate() / r.off[i].rate()
		ratios = append(ratios, ratio)
		fmt.Fprintf(&b, "| %d | %.0f | %.0f | %.3f | %.0f µs | %.0f µs |\n", i+1, r.off[i].rate(), r.on[i].rate(), ratio, us(r.off[i].cpuPerRequest()), us(r.on[i].cpuPerRequest()))
	}
	med := median(ratios)
	offCPU, onCPU := us(pooled(r.off).cpuPerRequest()), us(pooled(r.on).cpuPerRequest())
	fmt.Fprintf(&b, "| **median** | %.0f | %.0f | **%.3f** | %.0f µs | %.0f µs |\n\n", medianRateOf(r.off), medianRateOf(r.on), med, offCPU, onCPU)

	perFlag := float64(r.heapOn-r.heapOff) / float64(r.flags)
	fmt.Fprintf(&b, "**Memory**: %d flags, each evaluated once for each of its two variants, the counts then flushed (two %s intervals); live heap (go_memstats_alloc_bytes) after a forced GC, before and after, on a server counting and on one not. Bytes per flag is the difference of the two growths over the flags: what counting itself keeps.\n\n", r.flags, r.interval)
	fmt.Fprintf(&b, "| Heap growth, counting off | Heap growth, counting on | Counting's bytes per flag | Usage record as stored (gzip) | Record bytes per flag |\n|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| %s | %s | %.0f B | %s | %.0f B |\n\n", mibDelta(r.heapOff), mibDelta(r.heapOn), perFlag, kib(r.recordBytes), float64(r.recordBytes)/float64(r.flags))

	fmt.Fprintf(&b, "**etcd writes**: the revision of the server's etcd over %s of flush intervals under each load (nothing else writes meanwhile: no spec changes, no stale transitions), divided by the intervals.\n\n", r.interval)
	b.WriteString("| Load | Flags evaluated | Requests | Flush intervals | etcd writes | Writes per replica per interval |\n|---|---:|---:|---:|---:|---:|\n")
	for _, p := range r.phases {
		fmt.Fprintf(&b, "| %s | %d | %d | %.1f | %d | %.2f |\n", p.name, p.flags, p.requests, p.intervals, p.writes, p.perInterval())
	}
	b.WriteString("\n**Targets**\n\n| Target | Measured | Result |\n|---|---:|---|\n")
	fmt.Fprintf(&b, "| throughput with counting on ≥ 95%% of off | %.1f%% | %s |\n", med*100, check(med >= 0.95))
	fmt.Fprintf(&b, "| memory per flag bounded (stated) | %.0f B | measured |\n", perFlag)
	var most float64
	for _, p := range r.phases {
		most = max(most, p.perInterval())
	}
	grew := slices.ContainsFunc(r.phases, func(p writePhase) bool { return p.perInterval() > 1.5 })
	fmt.Fprintf(&b, "| etcd writes per replica per interval constant (1, whatever the rate and the flags) | at most %.2f | %s |\n", most, check(!grew))
	return b.String()
}

func check(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func kib(b int64) string { return fmt.Sprintf("%.1f KiB", float64(b)/1024) }
