//go:build hostile

package hostile

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagpole-dev/flagpole/test/process"
)

// attackDuration bounds each attack.
const attackDuration = 15 * time.Second

// resetCase is one identity and path that streams are opened and reset on.
type resetCase struct {
	name string
	tls  func(*server) *tls.Config
	req  func(*server) Request
}

var resetCases = []resetCase{
	{"admin kube list", func(s *server) *tls.Config { return s.admin }, func(s *server) Request {
		return Request{Method: "GET", Path: "/apis/flagpole.dev/v1beta1/namespaces/default/flags", Authority: s.addr}
	}},
	{"app OFREP bulk", func(s *server) *tls.Config { return s.app }, func(s *server) Request {
		return Request{Method: "POST", Path: "/namespaces/default/ofrep/v1/evaluate/flags", Authority: s.addr,
			Header: map[string]string{"authorization": "Bearer " + s.appToken, "content-type": "application/json"}}
	}},
}

// resetFigures is what a rapid-reset run did to a server.
type resetFigures struct {
	resets           int64
	goaways, conns   int
	probe            *probe
	idleRSS, peakRSS int64
	lines            int
}

func (f resetFigures) String() string {
	n, codes, errs, p50, p99, maxLat := f.probe.summary()
	return fmt.Sprintf("%d resets in %s over %d connections, %d connections saw GOAWAY; a connected client: %d requests %v, %d errors, p50 %s p99 %s max %s; RSS idle %d MiB, peak %d MiB; %d log lines",
		f.resets, attackDuration, f.conns, f.goaways, n, codes, errs, p50, p99, maxLat, f.idleRSS>>20, f.peakRSS>>20, f.lines)
}

// rapidReset attacks the server at addr (process proc) for attackDuration
// from 4 connections with cfg, each resetting streams of req as fast as it
// can and replaced when the server sends it away, while get (a client
// already connected) probes every 50 ms.
func rapidReset(t *testing.T, proc *process.Process, addr string, cfg *tls.Config, req Request, get func(context.Context) (int, error)) resetFigures {
	t.Helper()
	f := resetFigures{conns: 4, idleRSS: rssBytes(proc.Pid())}
	linesBefore := logLines(proc.Log)
	if code, err := get(context.Background()); err != nil || code != http.StatusOK {
		t.Fatalf("probe before the attack: %d %v", code, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), attackDuration)
	defer cancel()
	f.probe = runProbe(ctx, 50*time.Millisecond, get)
	var peakRSS atomic.Int64
	go func() {
		for ctx.Err() == nil {
			if r := rssBytes(proc.Pid()); r > peakRSS.Load() {
				peakRSS.Store(r)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	results := make([]ResetResult, f.conns)
	for i := range results {
		wg.Go(func() {
			// A connection that gets GOAWAY is replaced, as an attacker
			// would, until the time is up.
			for ctx.Err() == nil {
				c, err := Dial(ctx, addr, cfg)
				if err != nil {
					return
				}
				r := c.RapidReset(ctx, req, 1<<40)
				c.Close()
				results[i].Resets += r.Resets
				results[i].GoAway = results[i].GoAway || r.GoAway
			}
		})
	}
	wg.Wait()
	<-ctx.Done()
	for _, r := range results {
		f.resets += r.Resets
		if r.GoAway {
			f.goaways++
		}
	}
	f.peakRSS = peakRSS.Load()
	f.lines = logLines(proc.Log) - linesBefore
	return f
}

// getter is a probe: GET url with client, its status.
func getter(client *http.Client, url string) func(context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
}

// TestRapidReset opens and resets streams as fast as 4 connections can, as
// an authenticated client, and measures what a normal request sees
// meanwhile, the server's memory, and its log.
func TestRapidReset(t *testing.T) {
	for _, tc := range resetCases {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t)
			get := getter(s.client(s.admin), "https://"+s.addr+"/apis/flagpole.dev/v1beta1/namespaces/default/flags")
			f := rapidReset(t, s.proc, s.addr, tc.tls(s), tc.req(s), get)
			t.Log(f)
			n, codes, errs, _, p99, _ := f.probe.summary()
			resets, goaways, peak, idleRSS, lines := f.resets, f.goaways, f.peakRSS, f.idleRSS, f.lines
			if s.proc.Exited() {
				t.Fatalf("the server exited: %v", s.proc.Err())
			}
			// The goals of issue 16.
			if goaways != f.conns {
				t.Errorf("%d of %d connections resetting streams as fast as they could got GOAWAY", goaways, f.conns)
			}
			if codes[http.StatusOK] != n || errs > 0 {
				t.Errorf("a normal request failed meanwhile: %v, %d errors", codes, errs)
			}
			if p99 > 100*time.Millisecond {
				t.Errorf("a normal request's p99 was %s meanwhile, want ≤ 100ms", p99)
			}
			if peak > 2*idleRSS {
				t.Errorf("RSS peaked at %d MiB, more than twice the idle %d MiB", peak>>20, idleRSS>>20)
			}
			if int64(lines)*100 > resets {
				t.Errorf("%d log lines for %d resets, want at most one per 100; the commonest:\n%s", lines, resets, commonLines(s.proc.Tail(64<<20), 5))
			}
			log := s.proc.Tail(64 << 20)
			if strings.Contains(log, "the datastore (etcd) is unavailable") {
				t.Error("a request was answered 503 blaming etcd, which was healthy")
			}
			if strings.Contains(log, "Lost leadership") {
				t.Error("the controllers lost their leadership during the attack")
			}
		})
	}
}
