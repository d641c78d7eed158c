package ofrep

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/flagpole-dev/flagpole/pkg/evaluation"
)

// StreamTickets lets a browser open a namespace's event stream without a
// token in its URL. A browser's EventSource cannot send an Authorization
// header; instead, the bulk evaluation a browser origin asks for (with its
// bearer token, in a header) advertises its event stream with a ticket:
// …/ofrep/v1/events?ticket=T. A ticket
//
//   - opens one stream, once: redeeming it deletes it;
//   - only the events stream of the namespace it was issued for;
//   - only within TicketTTL of being issued;
//   - as the user it was issued to, whose permission is then checked again
//     (authorization runs as for any request), and audited as that user.
//
// So a ticket in a URL, a proxy's access log or Flagpole's audit log is
// worthless by the time anyone reads it: it has been used, or it expires
// within the minute. Tickets live in this replica's memory: a stream opens
// on the replica that issued its ticket (browsers send the stream over the
// bulk request's connection when they can), and where it does not, the
// provider's reconnect fetches a new ticket. TicketTTL bounds how many exist:
// MaxTickets in all.
//
// The bulk answer's ETag carries the ticket's id ("<answer>.<id>", not the
// ticket): a conditional request is 304 only while its ticket is still
// redeemable, so a provider that reconnects after using its ticket (304s
// repeat the cached event stream) gets a fresh one.
type StreamTickets struct {
	clock clock.PassiveClock

	mu sync.Mutex
	// tickets by id (a digest of the ticket, so the map holds no secret).
	tickets map[string]ticket
	// order is the ids in the order they were issued, hence expire.
	order []issued
}

// TicketTTL is how long a ticket can be redeemed after it is issued.
const TicketTTL = time.Minute

// MaxTickets bounds the tickets outstanding on a replica; past it a
// browser's bulk answer advertises no event stream (it still polls, if its
// provider is told to).
const MaxTickets = 100_000

type ticket struct {
	user      user.Info
	namespace string
	expires   time.Time
}

type issued struct {
	id      string
	expires time.Time
}

// NewStreamTickets returns an empty ticket store.
func NewStreamTickets(c clock.PassiveClock) *StreamTickets {
	return &StreamTickets{clock: c, tickets: map[string]ticket{}}
}

var errNoTicket = errors.New("the event stream ticket is unknown, used or expired: fetch the bulk evaluation again for a new one")

// ticketID is what identifies a ticket without being one.
func ticketID(t string) string {
	sum := sha256.Sum256([]byte(t))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// issue makes a ticket for u's stream of namespace, or returns "" when
// MaxTickets are outstanding.
func (st *StreamTickets) issue(u user.Info, namespace string) (t, id string) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", ""
	}
	t = base64.RawURLEncoding.EncodeToString(raw)
	id = ticketID(t)
	now := st.clock.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.expire(now)
	if len(st.tickets) >= MaxTickets {
		return "", ""
	}
	expires := now.Add(TicketTTL)
	st.tickets[id] = ticket{user: u, namespace: namespace, expires: expires}
	st.order = append(st.order, issued{id: id, expires: expires})
	return t, id
}

// redeemable reports whether the ticket with id can still open its stream.
func (st *StreamTickets) redeemable(id string) bool {
	now := st.clock.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	t, ok := st.tickets[id]
	return ok && now.Before(t.expires)
}

// redeem uses the ticket up: its user, if it was valid for namespace.
func (st *StreamTickets) redeem(t, namespace string) (user.Info, bool) {
	id := ticketID(t)
	now := st.clock.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.expire(now)
	tk, ok := st.tickets[id]
	if !ok {
		return nil, false
	}
	delete(st.tickets, id)
	if tk.namespace != namespace || !now.Before(tk.expires) {
		return nil, false
	}
	return tk.user, true
}

// expire forgets expired tickets; the caller holds mu.
func (st *StreamTickets) expire(now time.Time) {
	n := 0
	for n < len(st.order) && !now.Before(st.order[n].expires) {
		delete(st.tickets, st.order[n].id)
		n++
	}
	if n > 0 {
		st.order = append(st.order[:0], st.order[n:]...)
	}
}

// ticketParam is the query parameter of an event stream URL that carries
// its ticket.
const ticketParam = "ticket"

// AuthenticateRequest implements authenticator.Request: a GET of a
// namespace's event stream with a ticket is that ticket's user. A ticket
// that is not valid there is an error (401), never anonymous access; a
// request without one is left to the other authenticators.
func (st *StreamTickets) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	if !strings.Contains(req.URL.RawQuery, ticketParam+"=") {
		return nil, false, nil
	}
	rt := parsePath(req.URL.Path)
	t := req.URL.Query().Get(ticketParam)
	if rt.endpoint != endpointEvents || req.Method != http.MethodGet || t == "" {
		return nil, false, nil
	}
	u, ok := st.redeem(t, rt.namespace)
	if !ok {
		return nil, false, errNoTicket
	}
	return &authenticator.Response{User: u}, true, nil
}

var _ authenticator.Request = &StreamTickets{}

// serveBrowserFlags answers a bulk evaluation from an allowed browser
// origin: resp advertises the event stream with a ticket, and the ETag
// carries the ticket's id after the answer's digest (etag, unquoted). A
// request whose If-None-Match names this answer with a ticket that is still
// redeemable is 304, keeping that ticket.
func (h *Handler) serveBrowserFlags(w http.ResponseWriter, req *http.Request, rt route, resp bulkResponse, etag string) {
	digest := strings.Trim(etag, `"`)
	for _, candidate := range strings.Split(req.Header.Get("If-None-Match"), ",") {
		candidate = strings.Trim(strings.TrimPrefix(strings.TrimSpace(candidate), "W/"), `"`)
		if d, id, ok := strings.Cut(candidate, "."); ok && d == digest && h.Tickets.redeemable(id) {
			w.Header().Set("ETag", `"`+candidate+`"`)
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	u, _ := genericapirequest.UserFrom(req.Context())
	t, id := "", ""
	if u != nil {
		t, id = h.Tickets.issue(u, rt.namespace)
	}
	if t == "" {
		// No ticket (MaxTickets outstanding): no stream the browser can open.
		klog.V(2).InfoS("OFREP: no event stream ticket issued", "namespace", rt.namespace, "outstanding", MaxTickets)
		resp.EventStreams = nil
	} else {
		resp.EventStreams = []eventStream{{Type: "sse", Endpoint: eventStreamEndpoint{RequestURI: rt.eventsPath() + "?" + ticketParam + "=" + t}}}
		digest += "." + id
	}
	body, err := json.Marshal(resp)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, failure{ErrorCode: evaluation.ErrorGeneral, ErrorDetails: "encoding the response failed"})
		return
	}
	w.Header().Set("ETag", `"`+digest+`"`)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
