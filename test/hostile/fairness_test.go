//go:build hostile

package hostile

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// createFlag creates a Boolean flag with the admin certificate.
func createFlag(t *testing.T, s *server, ns, name string) {
	t.Helper()
	body := fmt.Sprintf(`{"apiVersion":"flagpole.dev/v1beta1","kind":"Flag","metadata":{"name":%q},
		"spec":{"type":"Boolean","state":"Enabled","variants":[{"name":"on","value":true},{"name":"off","value":false}],"defaultVariant":"off"}}`, name)
	resp, err := s.client(s.admin).Post("https://"+s.addr+"/apis/flagpole.dev/v1beta1/namespaces/"+ns+"/flags", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create flag %s/%s: %d %s", ns, name, resp.StatusCode, answer)
	}
}

// ofrep returns a function that evaluates flag over OFREP as user, on a
// connection of its own.
func ofrep(s *server, user, ns, flag string) func(context.Context) (int, error) {
	c := s.client(s.app)
	url := "https://" + s.addr + "/namespaces/" + ns + "/ofrep/v1/evaluate/flags/" + flag
	return func(ctx context.Context) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(`{"context":{"targetingKey":"u-1"}}`))
		req.Header.Set("Authorization", "Bearer "+s.appTokens[user])
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
}

// answered is the share of a probe's requests answered 200.
func answered(p *probe) (float64, string) {
	n, codes, errs, p50, p99, max := p.summary()
	if n == 0 {
		return 0, "no requests"
	}
	return float64(codes[http.StatusOK]) / float64(n), fmt.Sprintf("%d requests %v, %d errors, p50 %s p99 %s max %s", n, codes, errs, p50, p99, max)
}

// slowBodyArgs are extra server flags (a control run sets them to the
// old behaviour, to see the test fail).
var slowBodyArgs []string

// TestSlowBodies: one application opens 300 OFREP streams, announces a
// 17 KB body on each and drips about 150 bytes a second in all; another
// application's evaluations meanwhile must all be answered. The slow
// streams hold no flow-control seat (their bodies are read first) and are
// answered 408 once the body read timeout passes.
func TestSlowBodies(t *testing.T) {
	s := startServer(t, append([]string{"--request-body-read-timeout", "8s"}, slowBodyArgs...)...)
	createFlag(t, s, "default", "checkout")

	other := ofrep(s, "app-other", "default", "checkout")
	if code, err := other(context.Background()); err != nil || code != http.StatusOK {
		t.Fatalf("evaluation before the attack: %d %v", code, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
	defer cancel()
	pr := runProbe(ctx, 50*time.Millisecond, other)

	var wg sync.WaitGroup
	var conns []*Conn
	for range 3 {
		c, err := Dial(ctx, s.addr, s.app)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		defer c.Close()
		wg.Go(func() {
			_, _ = c.SlowBodies(ctx, Request{Method: "POST", Path: "/namespaces/default/ofrep/v1/evaluate/flags/checkout", Authority: s.addr,
				Header:        map[string]string{"authorization": "Bearer " + s.appTokens["app-greedy"], "content-type": "application/json"},
				ContentLength: 17 * 1024}, 100, 20*time.Millisecond) // 50 bytes/s a connection
		})
	}
	wg.Wait()
	<-ctx.Done()
	share, summary := answered(pr)
	var timedOut int
	for _, c := range conns {
		_, status := c.Answered()
		for _, st := range status {
			if st == "408" {
				timedOut++
			}
		}
	}
	t.Logf("other application during 300 slow bodies: %s; %d slow streams answered 408", summary, timedOut)
	if share < 0.99 {
		t.Errorf("another application's evaluations answered %.1f%% while one dripped its bodies, want ≥ 99%%", 100*share)
	}
	if timedOut < 250 {
		t.Errorf("%d of 300 slow streams answered 408 after the body read timeout, want (nearly) all", timedOut)
	}
}

// TestEvaluationFlood: one application evaluates as hard as 4 connections
// of 100 streams each allow; another application's evaluations meanwhile
// must be answered (priority and fairness queues evaluations by user, in
// standalone mode too).
func TestEvaluationFlood(t *testing.T) {
	s := startServer(t)
	createFlag(t, s, "default", "checkout")
	other := ofrep(s, "app-other", "default", "checkout")
	if code, err := other(context.Background()); err != nil || code != http.StatusOK {
		t.Fatalf("evaluation before the attack: %d %v", code, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pr := runProbe(ctx, 50*time.Millisecond, other)

	var sent, throttled atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		greedy := ofrep(s, "app-greedy", "default", "checkout")
		for range 100 {
			wg.Go(func() {
				for ctx.Err() == nil {
					code, err := greedy(ctx)
					if err == nil {
						sent.Add(1)
						if code == http.StatusTooManyRequests {
							throttled.Add(1)
						}
					}
				}
			})
		}
	}
	wg.Wait()
	share, summary := answered(pr)
	t.Logf("other application during a flood of %d evaluations (%d answered 429): %s", sent.Load(), throttled.Load(), summary)
	if share < 0.99 {
		t.Errorf("another application's evaluations answered %.1f%% during one application's flood, want ≥ 99%%", 100*share)
	}
}
