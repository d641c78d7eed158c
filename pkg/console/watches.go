package console

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
)

// watchesPath serves all of a page's watches on one response. A browser
// opens at most six HTTP/1.1 connections to an origin across all its tabs;
// a watch per connection (a flag's page has three) starved the third tab
// of a flag of every request, its page load included. Multiplexed, a tab
// holds one connection however many watches it shows.
const watchesPath = "/watches"

const (
	// maxWatches bounds the watches of one stream: a page has at most a few.
	maxWatches = 16
	// maxEventBytes bounds one event line read from the API (objects are
	// far smaller: the API refuses requests over 3 MiB).
	maxEventBytes = 16 << 20
)

// watchablePath is what a page may watch: collections of Flagpole's group.
var watchablePath = regexp.MustCompile(`^/apis/flagpole\.dev/v[a-z0-9]+/(namespaces/[a-z0-9.-]+/)?[a-z]+$`)

// WatchRequest is one watch of a stream, as the page asks for it.
type WatchRequest struct {
	// Path is the collection: /apis/flagpole.dev/v1beta1/namespaces/ns/flags.
	Path string `json:"path"`
	// Query is the list's selectors (fieldSelector=..., labelSelector=...).
	Query string `json:"query,omitempty"`
	// ResourceVersion is where the watch starts: the list's, or the last
	// event's the page saw.
	ResourceVersion string `json:"resourceVersion"`
}

// WatchLine is one line of the stream: an event of watch Watch (the index
// in the request), or why that watch ended (then the stream ends: the page
// reconnects every watch from its last resourceVersion, losing nothing).
type WatchLine struct {
	Watch int             `json:"watch"`
	Event json.RawMessage `json:"event,omitempty"`
	Error *WatchError     `json:"error,omitempty"`
}

// WatchError is the API's refusal of a watch.
type WatchError struct {
	Code int `json:"code"`
	// RetryAfter is the answer's Retry-After in seconds (429, 503).
	RetryAfter int `json:"retryAfter,omitempty"`
	// Status is the API's Status object, or its text.
	Status  json.RawMessage `json:"status,omitempty"`
	Message string          `json:"message,omitempty"`
}

// watches streams the watches named by the query's "w" (a JSON array of
// WatchRequest) with the user's credentials.
type watches struct {
	client *http.Client
	base   *url.URL
}

func newWatches(cfg *rest.Config) (*watches, error) {
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, err
	}
	base, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return nil, err
	}
	// No client timeout: a watch lasts as long as the API lets it.
	return &watches{client: &http.Client{Transport: transport}, base: base}, nil
}

// parseWatches checks a stream's request: every watch a Flagpole
// collection, its query a query, nothing the stream sets itself.
func parseWatches(raw string) ([]WatchRequest, []url.Values, error) {
	var reqs []WatchRequest
	if err := json.Unmarshal([]byte(raw), &reqs); err != nil {
		return nil, nil, fmt.Errorf(`w: a JSON array of {"path", "query", "resourceVersion"}: %v`, err)
	}
	if len(reqs) == 0 || len(reqs) > maxWatches {
		return nil, nil, fmt.Errorf("w: 1 to %d watches, not %d", maxWatches, len(reqs))
	}
	queries := make([]url.Values, len(reqs))
	for i, r := range reqs {
		if !watchablePath.MatchString(r.Path) || path.Clean(r.Path) != r.Path {
			return nil, nil, fmt.Errorf("w[%d].path: %q is not a collection of flagpole.dev", i, r.Path)
		}
		q, err := url.ParseQuery(r.Query)
		if err != nil {
			return nil, nil, fmt.Errorf("w[%d].query: %v", i, err)
		}
		for _, k := range []string{"watch", "resourceVersion", "allowWatchBookmarks", "resourceVersionMatch", "sendInitialEvents"} {
			if q.Has(k) {
				return nil, nil, fmt.Errorf("w[%d].query: %s is the stream's to set", i, k)
			}
		}
		if r.ResourceVersion == "" {
			// Without one the API sends every object as ADDED first: the
			// page lists, then watches from the list.
			return nil, nil, fmt.Errorf("w[%d].resourceVersion: required (the list's)", i)
		}
		q.Set("watch", "1")
		q.Set("allowWatchBookmarks", "true")
		q.Set("resourceVersion", r.ResourceVersion)
		queries[i] = q
	}
	return reqs, queries, nil
}

func (s *watches) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		refuse(w, http.StatusMethodNotAllowed, r.Method+" is not allowed here")
		return
	}
	reqs, queries, err := parseWatches(r.URL.Query().Get("w"))
	if err != nil {
		refuse(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()

	var mu sync.Mutex
	write := func(line WatchLine) bool {
		b, err := json.Marshal(line)
		if err != nil {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil {
			return false
		}
		if _, err := w.Write(append(b, '\n')); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	var wg sync.WaitGroup
	for i := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The first watch to end ends the stream.
			defer cancel()
			s.stream(ctx, i, reqs[i].Path, queries[i], write)
		}()
	}
	wg.Wait()
}

// stream relays one watch's events until it ends, or ctx does.
func (s *watches) stream(ctx context.Context, i int, p string, q url.Values, write func(WatchLine) bool) {
	u := s.base.JoinPath(p)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		write(WatchLine{Watch: i, Error: &WatchError{Code: http.StatusBadRequest, Message: err.Error()}})
		return
	}
	req.Header.Set("Accept", "application/json")
	res, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			klog.V(2).InfoS("Console watch failed", "path", p, "err", err)
			write(WatchLine{Watch: i, Error: &WatchError{Code: http.StatusBadGateway, Message: err.Error()}})
		}
		return
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		e := &WatchError{Code: res.StatusCode}
		if n, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && n > 0 {
			e.RetryAfter = n
		}
		if json.Valid(body) {
			e.Status = body
		} else {
			e.Message = strings.TrimSpace(string(body))
		}
		write(WatchLine{Watch: i, Error: e})
		return
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventBytes)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if !json.Valid(line) {
			write(WatchLine{Watch: i, Error: &WatchError{Code: http.StatusBadGateway, Message: "the API sent an event that is not JSON"}})
			return
		}
		if !write(WatchLine{Watch: i, Event: append(json.RawMessage(nil), line...)}) {
			return
		}
	}
}
