//go:build hostile

package hostile

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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

// TestRapidReset opens and resets streams as fast as 4 connections can, as
// an authenticated client, and measures what a normal request sees
// meanwhile, the server's memory, and its log.
func TestRapidReset(t *testing.T) {
	for _, tc := range resetCases {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t)
			idleRSS := rssBytes(s.proc.Pid())
			linesBefore := logLines(s.proc.Log)

			probeClient := s.client(s.admin)
			get := func(ctx context.Context) (int, error) {
				req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+s.addr+"/apis/flagpole.dev/v1beta1/namespaces/default/flags", nil)
				resp, err := probeClient.Do(req)
				if err != nil {
					return 0, err
				}
				resp.Body.Close()
				return resp.StatusCode, nil
			}
			// The probe is a client already connected when the attack
			// starts.
			if code, err := get(context.Background()); err != nil || code != http.StatusOK {
				t.Fatalf("probe before the attack: %d %v", code, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), attackDuration)
			defer cancel()
			pr := runProbe(ctx, 50*time.Millisecond, get)
			var peakRSS atomic.Int64
			go func() {
				for ctx.Err() == nil {
					if r := rssBytes(s.proc.Pid()); r > peakRSS.Load() {
						peakRSS.Store(r)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}()

			var wg sync.WaitGroup
			results := make([]ResetResult, 4)
			for i := range results {
				wg.Go(func() {
					// A connection that gets GOAWAY is replaced, as an
					// attacker would, until the time is up.
					for ctx.Err() == nil {
						c, err := Dial(ctx, s.addr, tc.tls(s))
						if err != nil {
							return
						}
						r := c.RapidReset(ctx, tc.req(s), 1<<40)
						c.Close()
						results[i].Resets += r.Resets
						if r.GoAway && !results[i].GoAway {
							results[i].GoAway, results[i].AfterResets = true, r.AfterResets
						}
					}
				})
			}
			wg.Wait()
			<-ctx.Done()
			var resets int64
			goaways := 0
			for _, r := range results {
				resets += r.Resets
				if r.GoAway {
					goaways++
				}
			}
			n, codes, errs, p50, p99, maxLat := pr.summary()
			peak := peakRSS.Load()
			lines := logLines(s.proc.Log) - linesBefore
			t.Logf("%d resets in %s over 4 connections, %d connections saw GOAWAY (first after %d resets); probe: %d requests %v, %d errors, p50 %s p99 %s max %s; RSS idle %d MiB, peak %d MiB; %d log lines",
				resets, attackDuration, goaways, results[0].AfterResets, n, codes, errs, p50, p99, maxLat, idleRSS>>20, peak>>20, lines)
			if s.proc.Exited() {
				t.Fatalf("the server exited: %v", s.proc.Err())
			}
			// The goals of issue 16.
			if goaways != len(results) {
				t.Errorf("%d of %d connections resetting streams as fast as they could got GOAWAY", goaways, len(results))
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
