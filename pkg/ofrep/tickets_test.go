package ofrep

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestStreamTickets(t *testing.T) {
	clock := clocktesting.NewFakeClock(time.Now())
	st := NewStreamTickets(clock)
	alice := &user.DefaultInfo{Name: "alice", Groups: []string{"apps"}}
	authn := func(method, target string) (user.Info, bool, error) {
		resp, ok, err := st.AuthenticateRequest(httptest.NewRequest(method, target, nil))
		if resp != nil {
			return resp.User, ok, err
		}
		return nil, ok, err
	}
	events := func(ns, ticket string) string {
		return "/namespaces/" + ns + "/ofrep/v1/events?ticket=" + url.QueryEscape(ticket)
	}

	tk, id := st.issue(alice, "apps")
	if tk == "" || id == "" || strings.Contains(tk, id) {
		t.Fatalf("ticket %q, id %q: an id that gives the ticket away", tk, id)
	}
	if !st.redeemable(id) {
		t.Fatal("a fresh ticket is not redeemable")
	}
	u, ok, err := authn("GET", events("apps", tk))
	if !ok || err != nil || u.GetName() != "alice" || u.GetGroups()[0] != "apps" {
		t.Fatalf("redeeming: %v %v %v, want alice", u, ok, err)
	}
	// Single use.
	if _, ok, err := authn("GET", events("apps", tk)); ok || err == nil {
		t.Errorf("a used ticket authenticated again: %v %v", ok, err)
	}
	if st.redeemable(id) {
		t.Error("a used ticket is still redeemable: a 304 would keep it")
	}

	// Only its own namespace's stream; a try elsewhere uses it up.
	tk, _ = st.issue(alice, "apps")
	if _, ok, err := authn("GET", events("other", tk)); ok || err == nil {
		t.Errorf("a ticket of apps opened other's stream: %v %v", ok, err)
	}
	if _, ok, _ := authn("GET", events("apps", tk)); ok {
		t.Error("a ticket tried on another namespace stayed usable")
	}

	// Only the events path and GET; without a ticket the others decide.
	tk, _ = st.issue(alice, "apps")
	for _, target := range []string{
		"/namespaces/apps/ofrep/v1/evaluate/flags?ticket=" + tk,
		"/apis/flagpole.dev/v1beta1/namespaces/apps/flags?ticket=" + tk,
		"/namespaces/apps/ofrep/v1/events",
	} {
		if u, ok, err := authn("GET", target); ok || err != nil || u != nil {
			t.Errorf("GET %s: %v %v %v, want left to the other authenticators", target, u, ok, err)
		}
	}
	if _, ok, err := authn("POST", events("apps", tk)); ok || err != nil {
		t.Errorf("POST with a ticket: %v %v", ok, err)
	}
	if _, ok, _ := authn("GET", events("apps", tk)); !ok {
		t.Error("the ticket was used up by requests that could not redeem it")
	}

	// Expiry.
	tk, id = st.issue(alice, "apps")
	clock.Step(TicketTTL)
	if st.redeemable(id) {
		t.Error("an expired ticket is redeemable")
	}
	if _, ok, err := authn("GET", events("apps", tk)); ok || err == nil {
		t.Error("an expired ticket authenticated")
	}
	if n := len(st.tickets) + len(st.order); n != 0 {
		t.Errorf("%d entries left after every ticket expired or was used", n)
	}
}

// A browser's bulk evaluation advertises a ticketed stream; its ETag names
// the ticket, and a conditional request is 304 only while that ticket can
// still open the stream.
func TestBrowserBulkEvaluation(t *testing.T) {
	clock := clocktesting.NewFakeClock(time.Now())
	changes := &Changes{server: "s", clock: clock, namespaces: map[string]*namespaceChanges{}, closed: make(chan struct{})}
	h := NewHandler(newFake(), changes, http.NotFoundHandler())
	h.Tickets = NewStreamTickets(clock)
	path := "/namespaces/apps/ofrep/v1/evaluate/flags"
	bulk := func(browser bool, ifNoneMatch string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", path, strings.NewReader(`{"context":{"targetingKey":"u"}}`))
		req = req.WithContext(genericapirequest.WithUser(req.Context(), &user.DefaultInfo{Name: "app"}))
		if browser {
			req.Header.Set(allowedOriginHeader, "https://app.example")
		}
		if ifNoneMatch != "" {
			req.Header.Set("If-None-Match", ifNoneMatch)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	streamOf := func(rec *httptest.ResponseRecorder) string {
		var body bulkResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || len(body.EventStreams) != 1 {
			t.Fatalf("bulk answer %d %s: %v", rec.Code, rec.Body, err)
		}
		return body.EventStreams[0].Endpoint.RequestURI
	}

	plain := bulk(false, "")
	if uri := streamOf(plain); uri != "/namespaces/apps/ofrep/v1/events" {
		t.Errorf("a non-browser client's stream: %s, want the plain path", uri)
	}
	first := bulk(true, "")
	uri := streamOf(first)
	if !strings.HasPrefix(uri, "/namespaces/apps/ofrep/v1/events?ticket=") {
		t.Fatalf("a browser's stream: %s, want a ticket", uri)
	}
	etag := first.Header().Get("ETag")
	if !strings.HasPrefix(etag, strings.TrimSuffix(plain.Header().Get("ETag"), `"`)+".") {
		t.Errorf("browser ETag %s does not extend the answer's %s", etag, plain.Header().Get("ETag"))
	}
	if strings.Contains(etag, strings.TrimPrefix(uri, "/namespaces/apps/ofrep/v1/events?ticket=")) {
		t.Error("the ETag carries the ticket itself")
	}
	if rec := bulk(true, etag); rec.Code != http.StatusNotModified || rec.Header().Get("ETag") != etag {
		t.Errorf("unchanged answer, unused ticket: %d %s, want 304 %s", rec.Code, rec.Header().Get("ETag"), etag)
	}
	// The plain ETag does not do for a browser: it has no ticket.
	if rec := bulk(true, plain.Header().Get("ETag")); rec.Code != http.StatusOK {
		t.Errorf("If-None-Match without a ticket id: %d, want 200 with a ticket", rec.Code)
	}

	u, _ := url.Parse(uri)
	if _, ok, err := h.Tickets.AuthenticateRequest(httptest.NewRequest("GET", uri, nil)); !ok || err != nil {
		t.Fatalf("the advertised ticket (%s) does not open the stream: %v", u.RawQuery, err)
	}
	again := bulk(true, etag)
	if again.Code != http.StatusOK || again.Header().Get("ETag") == etag {
		t.Errorf("used ticket: %d %s, want 200 with a new ticket", again.Code, again.Header().Get("ETag"))
	}
	if streamOf(again) == uri {
		t.Error("the same ticket advertised again")
	}
}
