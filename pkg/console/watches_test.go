package console

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func watchQuery(t *testing.T, reqs ...WatchRequest) string {
	t.Helper()
	b, err := json.Marshal(reqs)
	if err != nil {
		t.Fatal(err)
	}
	return watchesPath + "?w=" + url.QueryEscape(string(b))
}

func TestWatchesRefusesWhatIsNotAFlagpoleCollection(t *testing.T) {
	srv, _, _ := start(t)
	many := make([]WatchRequest, maxWatches+1)
	for i := range many {
		many[i] = WatchRequest{Path: "/apis/flagpole.dev/v1beta1/flags", ResourceVersion: "1"}
	}
	manyJSON, _ := json.Marshal(many)
	for _, c := range []struct{ name, query, want string }{
		{"not JSON", watchesPath + "?w=%7B", "w: a JSON array"},
		{"none", watchesPath + "?w=%5B%5D", "1 to 16 watches, not 0"},
		{"too many", watchesPath + "?w=" + url.QueryEscape(string(manyJSON)), "1 to 16 watches, not 17"},
		{"secrets", watchQuery(t, WatchRequest{Path: "/api/v1/namespaces/shop/secrets", ResourceVersion: "1"}), `w[0].path: "/api/v1/namespaces/shop/secrets" is not a collection of flagpole.dev`},
		{"climbing out", watchQuery(t, WatchRequest{Path: "/apis/flagpole.dev/v1beta1/namespaces/../../../api/v1/secrets", ResourceVersion: "1"}), "w[0].path"},
		{"one object", watchQuery(t, WatchRequest{Path: "/apis/flagpole.dev/v1beta1/namespaces/shop/flags/checkout", ResourceVersion: "1"}), "w[0].path"},
		{"a query of its own rv", watchQuery(t, WatchRequest{Path: "/apis/flagpole.dev/v1beta1/namespaces/shop/flags", Query: "resourceVersion=0", ResourceVersion: "1"}), "w[0].query: resourceVersion is the stream's to set"},
		{"a broken query", watchQuery(t, WatchRequest{Path: "/apis/flagpole.dev/v1beta1/namespaces/shop/flags", Query: "a=%zz", ResourceVersion: "1"}), "w[0].query"},
		{"no resourceVersion", watchQuery(t, WatchRequest{Path: "/apis/flagpole.dev/v1beta1/namespaces/shop/flags"}), "w[0].resourceVersion: required"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := do(t, srv, "GET", c.query, SecretHeader, srv.Secret())
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, c.want) {
				t.Errorf("%d %q, want 400 with %q", resp.StatusCode, body, c.want)
			}
		})
	}
	ok := watchQuery(t, WatchRequest{Path: "/apis/flagpole.dev/v1beta1/namespaces/shop/flags", ResourceVersion: "1"})
	if resp, _ := do(t, srv, "GET", ok); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without the secret: %d, want 401", resp.StatusCode)
	}
	if resp, _ := do(t, srv, "POST", ok, SecretHeader, srv.Secret()); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
}

// watchAPI answers watches: flags stream an event per second until the
// client goes; flagoverrides are refused as RBAC would; it records the
// requests.
type watchAPI struct {
	mu   sync.Mutex
	seen []*http.Request
}

func (a *watchAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.seen = append(a.seen, r.Clone(context.Background()))
	a.mu.Unlock()
	if strings.HasSuffix(r.URL.Path, "/flagoverrides") {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"kind":"Status","code":403,"reason":"Forbidden","message":"cannot watch resource \"flagoverrides\""}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	kind := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	for n := 0; ; n++ {
		fmt.Fprintf(w, "{\"type\":\"ADDED\",\"object\":{\"kind\":%q,\"metadata\":{\"name\":\"o%d\",\"resourceVersion\":\"%d\"}}}\n", kind, n, 100+n)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func readLines(t *testing.T, srv *Server, query string, n int) []WatchLine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.BaseURL()+query, nil)
	req.Header.Set(SecretHeader, srv.Secret())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var lines []WatchLine
	sc := bufio.NewScanner(resp.Body)
	for len(lines) < n && sc.Scan() {
		var l WatchLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}

// One response carries several watches, each event tagged with its watch,
// sent to the API with the user's credentials, the page's selectors and
// the resourceVersion it had.
func TestWatchesMultiplexesOneResponse(t *testing.T) {
	api := &watchAPI{}
	srv, _ := startWith(t, api)
	lines := readLines(t, srv, watchQuery(t,
		WatchRequest{Path: "/apis/flagpole.dev/v1beta1/namespaces/shop/flags", Query: "fieldSelector=metadata.name%3Dcheckout", ResourceVersion: "41"},
		WatchRequest{Path: "/apis/flagpole.dev/v1beta1/namespaces/shop/flagrevisions", ResourceVersion: "42"},
	), 6)
	kinds := map[int]map[string]bool{0: {}, 1: {}}
	for _, l := range lines {
		var ev struct{ Object struct{ Kind string } }
		if l.Error != nil || json.Unmarshal(l.Event, &ev) != nil {
			t.Fatalf("line %+v", l)
		}
		kinds[l.Watch][ev.Object.Kind] = true
	}
	if !kinds[0]["flags"] || !kinds[1]["flagrevisions"] || len(kinds[0]) != 1 || len(kinds[1]) != 1 {
		t.Errorf("events by watch: %v", kinds)
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	for _, r := range api.seen {
		q := r.URL.Query()
		if r.Header.Get("Authorization") != "Bearer the-users-token" {
			t.Errorf("%s: Authorization %q", r.URL, r.Header.Get("Authorization"))
		}
		if q.Get("watch") != "1" || q.Get("allowWatchBookmarks") != "true" {
			t.Errorf("%s: not a watch with bookmarks", r.URL)
		}
		switch r.URL.Path {
		case "/apis/flagpole.dev/v1beta1/namespaces/shop/flags":
			if q.Get("resourceVersion") != "41" || q.Get("fieldSelector") != "metadata.name=checkout" {
				t.Errorf("flags watch: %s", r.URL)
			}
		case "/apis/flagpole.dev/v1beta1/namespaces/shop/flagrevisions":
			if q.Get("resourceVersion") != "42" {
				t.Errorf("revisions watch: %s", r.URL)
			}
		default:
			t.Errorf("unexpected %s", r.URL)
		}
	}
}

// A watch the API refuses is reported with its code, Retry-After and
// Status, and ends the stream (the page reconnects the others from where
// they were).
func TestWatchesReportsARefusalAndEnds(t *testing.T) {
	srv, _ := startWith(t, &watchAPI{})
	lines := readLines(t, srv, watchQuery(t,
		WatchRequest{Path: "/apis/flagpole.dev/v1beta1/namespaces/shop/flags", ResourceVersion: "1"},
		WatchRequest{Path: "/apis/flagpole.dev/v1beta1/namespaces/shop/flagoverrides", ResourceVersion: "1"},
	), 1000)
	var refusal *WatchError
	for _, l := range lines {
		if l.Error != nil {
			if l.Watch != 1 || refusal != nil {
				t.Errorf("error line %+v", l)
			}
			refusal = l.Error
		}
	}
	if refusal == nil {
		t.Fatalf("no refusal in %d lines: the stream should have ended with it", len(lines))
	}
	if refusal.Code != 403 || refusal.RetryAfter != 3 || !strings.Contains(string(refusal.Status), `cannot watch resource \"flagoverrides\"`) {
		t.Errorf("refusal %+v (%s)", refusal, refusal.Status)
	}
}
