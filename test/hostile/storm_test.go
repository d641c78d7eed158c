//go:build hostile

package hostile

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// TestChangeStorm: 1,000 OFREP event-stream listeners on a namespace of
// 5,000 flags, each re-fetching the bulk evaluation (gzip, as providers
// ask) when told of a change. One change reaches them all and their
// re-fetches are answered (shared, compressed), none shed; a storm of 200
// overrides created in a burst is told as a handful of events, not one
// each.
func TestChangeStorm(t *testing.T) {
	const flags, listeners, perConn = 5000, 1000, 100
	s := startServer(t)
	admin := s.client(s.admin)
	var created atomic.Int32
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < flags; i += 8 {
				body := fmt.Sprintf(`{"apiVersion":"flagpole.dev/v1beta1","kind":"Flag","metadata":{"name":"f-%04d"},"spec":{"type":"String","state":"Enabled","variants":[{"name":"a","value":"value-a-%04d"},{"name":"b","value":"value-b"}],"defaultVariant":"a"}}`, i, i)
				resp, err := admin.Post("https://"+s.addr+"/apis/flagpole.dev/v1beta1/namespaces/storm/flags", "application/json", strings.NewReader(body))
				if err == nil {
					if resp.StatusCode == http.StatusCreated {
						created.Add(1)
					}
					resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()
	if created.Load() != flags {
		t.Fatalf("created %d of %d flags", created.Load(), flags)
	}

	// The listeners: an HTTP/2 connection (a transport) for each 100.
	var clients []*http.Client
	for range listeners / perConn {
		tr := &http.Transport{TLSClientConfig: s.app.Clone(), ForceAttemptHTTP2: true, DialContext: (&net.Dialer{}).DialContext}
		clients = append(clients, &http.Client{Transport: tr})
	}
	token := s.appTokens["app-greedy"]
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var connected, events, refetched, shed, failed atomic.Int64
	var bodyBytes atomic.Int64
	refetch := func(c *http.Client) {
		req, _ := http.NewRequestWithContext(ctx, "POST", "https://"+s.addr+"/namespaces/storm/ofrep/v1/evaluate/flags", strings.NewReader(`{"context":{"targetingKey":"u"}}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		// Go's transport asks for gzip and unzips by itself unless told.
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := c.Do(req)
		if err != nil {
			failed.Add(1)
			return
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		bodyBytes.Add(n)
		switch resp.StatusCode {
		case http.StatusOK:
			refetched.Add(1)
		case http.StatusTooManyRequests:
			shed.Add(1)
		default:
			failed.Add(1)
		}
	}
	var lwg sync.WaitGroup
	for i := range listeners {
		c := clients[i%len(clients)]
		lwg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+s.addr+"/namespaces/storm/ofrep/v1/events", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := c.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				body, _ := io.ReadAll(resp.Body)
				t.Errorf("event stream: %d %s", resp.StatusCode, body)
				return
			}
			connected.Add(1)
			r := bufio.NewReader(resp.Body)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if strings.HasPrefix(line, "id: ") {
					events.Add(1)
					go refetch(c)
				}
			}
		})
	}
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		return connected.Load() == listeners, nil
	}); err != nil {
		t.Fatalf("%d of %d listeners connected", connected.Load(), listeners)
	}

	// One change.
	start := time.Now()
	patch, _ := http.NewRequest("PATCH", "https://"+s.addr+"/apis/flagpole.dev/v1beta1/namespaces/storm/flags/f-0000", strings.NewReader(`{"spec":{"defaultVariant":"b"}}`))
	patch.Header.Set("Content-Type", "application/merge-patch+json")
	if resp, err := admin.Do(patch); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("patch: %v %v", resp, err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		return refetched.Load()+shed.Load()+failed.Load() >= listeners, nil
	}); err != nil {
		t.Fatalf("after a change: %d events, %d re-fetched, %d shed, %d failed", events.Load(), refetched.Load(), shed.Load(), failed.Load())
	}
	took := time.Since(start)
	t.Logf("one change in a namespace of %d flags: %d listeners told, %d re-fetches answered, %d shed, %d failed, in %s; %d KiB sent (compressed)",
		flags, events.Load(), refetched.Load(), shed.Load(), failed.Load(), took.Round(time.Millisecond), bodyBytes.Load()>>10)
	if refetched.Load() < listeners*99/100 || failed.Load() > 0 {
		t.Errorf("%d of %d re-fetches answered (%d shed, %d failed), want ≥ 99%% and no failure", refetched.Load(), listeners, shed.Load(), failed.Load())
	}

	// A burst of 200 overrides: a handful of events a listener.
	before := events.Load()
	refetched.Store(0)
	burst := time.Now()
	for i := range 200 {
		body := fmt.Sprintf(`{"apiVersion":"flagpole.dev/v1beta1","kind":"FlagOverride","metadata":{"name":"o-%03d"},"spec":{"flag":"f-%04d","variant":"b","ttl":"1h"}}`, i, i)
		resp, err := admin.Post("https://"+s.addr+"/apis/flagpole.dev/v1beta1/namespaces/storm/flagoverrides", "application/json", strings.NewReader(body))
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("override %d: %v %v", i, resp, err)
		}
		resp.Body.Close()
	}
	elapsed := time.Since(burst)
	// Let the last window end and its event arrive.
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return events.Load() > before && (events.Load()-before)%listeners == 0 && refetched.Load() >= events.Load()-before, nil
	}); err != nil {
		t.Logf("events after the burst: %d", events.Load()-before)
	}
	perListener := float64(events.Load()-before) / listeners
	// At most one event each CoalesceWindow (growing under a storm), plus
	// the one told at once and the last window's.
	maxEvents := elapsed.Seconds()/0.25 + 2
	t.Logf("200 overrides in %s: %.1f events a listener (at most %.0f allowed by the coalescing window)", elapsed.Round(time.Millisecond), perListener, maxEvents)
	if perListener > maxEvents {
		t.Errorf("%.1f events a listener for 200 overrides created in %s, want at most %.0f", perListener, elapsed, maxEvents)
	}
	cancel()
	lwg.Wait()
}
