package ofrep

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
	informers "github.com/flagpole-dev/flagpole/pkg/generated/informers/externalversions"
)

// KeepAliveInterval is how often an idle event stream sends a comment, so
// that proxies and load balancers do not close it.
const KeepAliveInterval = 30 * time.Second

// Changes tracks, per namespace, that what an evaluation may answer has
// changed — a Flag, Segment or FlagOverride was added, changed or deleted, or
// an override expired — and tells the namespace's event streams.
//
// Event ids are "<server>.<sequence>": the sequence counts changes of one
// namespace seen by this server process. A client that reconnects with a
// Last-Event-ID other than the current one (an older sequence, or another
// replica's or an earlier process's id) is told to re-fetch at once, so a
// missed change is never lost; at worst a client re-fetches once more than
// needed after switching replicas.
type Changes struct {
	server string
	clock  clock.WithTickerAndDelayedExecution

	mu         sync.Mutex
	namespaces map[string]*namespaceChanges
	// Open event streams, in all and by user, against Limits.
	limits        StreamLimits
	streams       int
	streamsByUser map[string]int

	// closed ends every event stream, so that shutdown does not wait for
	// clients that never hang up.
	closed    chan struct{}
	closeOnce sync.Once
}

// StreamLimits bound the event streams open at once: each holds a
// goroutine and an HTTP/2 stream for as long as the client likes, and
// long-running requests are outside max-in-flight and flow control once
// they start. 0 means no limit.
type StreamLimits struct {
	// Total is the most streams the server keeps open.
	Total int
	// PerUser is the most one authenticated user keeps open: an
	// application's ServiceAccount across all its pods, say.
	PerUser int
}

// DefaultStreamLimits allow a few thousand applications on a replica, and
// an application with a thousand pods under one identity.
var DefaultStreamLimits = StreamLimits{Total: 10000, PerUser: 1000}

// StreamRetryAfterSeconds is the Retry-After of a 429 for a stream over the
// limits.
const StreamRetryAfterSeconds = 10

// CoalesceWindow is the shortest time between two events of a namespace: a
// change after a quiet period is told at once, the changes that follow it
// within the window are told together at its end. While changes keep coming
// the window doubles with each event, up to MaxCoalesceWindow, and it is
// back to CoalesceWindow after a quiet one. A storm of changes (a thousand
// overrides created, and expiring, in seconds) then costs each listener an
// event every few seconds, not one per change — and the server every
// listener's re-fetch of each.
const (
	CoalesceWindow    = 250 * time.Millisecond
	MaxCoalesceWindow = 4 * time.Second
)

type namespaceChanges struct {
	seq      uint64
	modified time.Time
	// sent is when the namespace's last event went out; pending is true
	// while changes wait for the window to end; window is the current one.
	sent    time.Time
	pending bool
	window  time.Duration
	// Each subscriber's channel holds at most one wake-up: bursts coalesce
	// and a slow client never blocks the informers.
	subscribers map[chan struct{}]struct{}
}

// ChangeSource tells of changes of flags and overrides once evaluation
// answers from them (evaluator.Evaluator): a client woken by an event
// stream re-evaluates at once, and must get the new answer.
type ChangeSource interface {
	AddIndexedHandler(flags, overrides cache.ResourceEventHandler)
}

// NewChanges registers event handlers for flags and overrides with source
// and on the factory's Segment informer; the caller starts the factory.
// Event streams are bounded by limits.
func NewChanges(factory informers.SharedInformerFactory, source ChangeSource, c clock.WithTickerAndDelayedExecution, limits StreamLimits) (*Changes, error) {
	id := make([]byte, 6)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	registerMetrics()
	ch := &Changes{server: hex.EncodeToString(id), clock: c, namespaces: map[string]*namespaceChanges{}, closed: make(chan struct{}), limits: limits}
	source.AddIndexedHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    ch.objectChanged,
		UpdateFunc: func(_, obj any) { ch.objectChanged(obj) },
		DeleteFunc: ch.objectChanged,
	}, cache.ResourceEventHandlerFuncs{
		AddFunc:    ch.overrideChanged,
		UpdateFunc: func(_, obj any) { ch.overrideChanged(obj) },
		DeleteFunc: ch.objectChanged,
	})
	// Segments are read through their lister, which the informer updates
	// before any handler runs.
	if _, err := factory.Flagpole().V1beta1().Segments().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    ch.objectChanged,
		UpdateFunc: func(_, obj any) { ch.objectChanged(obj) },
		DeleteFunc: ch.objectChanged,
	}); err != nil {
		return nil, err
	}
	return ch, nil
}

func (ch *Changes) objectChanged(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	if m, err := meta.Accessor(obj); err == nil {
		ch.Notify(m.GetNamespace())
	}
}

// overrideChanged also wakes the namespace when the override expires: the
// engine ignores it from expiresAt on, before its lease deletes it.
func (ch *Changes) overrideChanged(obj any) {
	ch.objectChanged(obj)
	o, ok := obj.(*v1beta1.FlagOverride)
	if !ok || o.Status.ExpiresAt == nil {
		return
	}
	if left := o.Status.ExpiresAt.Sub(ch.clock.Now()); left > 0 {
		namespace := o.Namespace
		ch.clock.AfterFunc(left, func() { ch.Notify(namespace) })
	}
}

// Close ends every event stream and refuses new ones; call it when the
// server starts shutting down. Clients reconnect to another replica.
func (ch *Changes) Close() {
	ch.closeOnce.Do(func() { close(ch.closed) })
}

// Notify records a change in namespace and wakes its event streams, at
// once after a quiet CoalesceWindow, or together with the changes after it
// at the window's end.
func (ch *Changes) Notify(namespace string) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	n := ch.namespace(namespace)
	now := ch.clock.Now()
	n.modified = now
	if n.pending {
		ofrepMetrics.coalescedChanges.Inc()
		return
	}
	if n.window == 0 || now.Sub(n.sent) >= n.window {
		// Quiet for a window: told at once, and the window starts over.
		n.window = CoalesceWindow
	}
	if wait := n.window - now.Sub(n.sent); !n.sent.IsZero() && wait > 0 {
		n.pending = true
		ofrepMetrics.coalescedChanges.Inc()
		at := now.Add(wait)
		ch.clock.AfterFunc(wait, func() {
			ch.mu.Lock()
			defer ch.mu.Unlock()
			n := ch.namespace(namespace)
			n.pending = false
			// Changes kept coming: the next window is longer.
			n.window = min(2*n.window, MaxCoalesceWindow)
			ch.wakeLocked(n, at)
		})
		return
	}
	ch.wakeLocked(n, now)
}

// wakeLocked starts the namespace's next event.
func (ch *Changes) wakeLocked(n *namespaceChanges, now time.Time) {
	n.seq++
	n.sent = now
	ofrepMetrics.events.Inc()
	for sub := range n.subscribers {
		select {
		case sub <- struct{}{}:
		default:
		}
	}
}

func (ch *Changes) namespace(namespace string) *namespaceChanges {
	n := ch.namespaces[namespace]
	if n == nil {
		n = &namespaceChanges{subscribers: map[chan struct{}]struct{}{}}
		ch.namespaces[namespace] = n
	}
	return n
}

func (ch *Changes) subscribe(namespace string) chan struct{} {
	sub := make(chan struct{}, 1)
	ch.mu.Lock()
	ch.namespace(namespace).subscribers[sub] = struct{}{}
	ch.mu.Unlock()
	return sub
}

func (ch *Changes) unsubscribe(namespace string, sub chan struct{}) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	n := ch.namespace(namespace)
	delete(n.subscribers, sub)
	// A namespace that never changed is remembered only while streamed, so
	// streams opened on arbitrary namespace names leave nothing behind.
	if n.seq == 0 && !n.pending && len(n.subscribers) == 0 {
		delete(ch.namespaces, namespace)
	}
}

// current returns the namespace's latest event id and change time.
func (ch *Changes) current(namespace string) (string, time.Time) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	var seq uint64
	var modified time.Time
	if n := ch.namespaces[namespace]; n != nil {
		seq, modified = n.seq, n.modified
	}
	return ch.server + "." + strconv.FormatUint(seq, 10), modified
}

// refetchEvent is the data of an OFREP refetchEvaluation event.
type refetchEvent struct {
	Type         string `json:"type"`
	ETag         string `json:"etag"`
	LastModified int64  `json:"lastModified,omitempty"`
}

// serveEvents streams refetchEvaluation events for the namespace until the
// client goes away or the server shuts down.
func (ch *Changes) serveEvents(w http.ResponseWriter, req *http.Request, rt route) {
	user := ""
	if u, ok := genericapirequest.UserFrom(req.Context()); ok {
		user = u.GetName()
	}
	if over := ch.openStream(user); over != "" {
		w.Header().Set("Retry-After", strconv.Itoa(StreamRetryAfterSeconds))
		writeJSON(w, http.StatusTooManyRequests, failure{ErrorCode: evaluation.ErrorGeneral, ErrorDetails: over})
		return
	}
	defer ch.closeStream(user)
	rc := http.NewResponseController(w)
	sub := ch.subscribe(rt.namespace)
	defer ch.unsubscribe(rt.namespace, sub)

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	// A client resuming from an id that is not the current one missed
	// something: tell it at once.
	if last := req.Header.Get("Last-Event-ID"); last != "" {
		if id, _ := ch.current(rt.namespace); last != id {
			sub <- struct{}{}
		}
	}
	if err := rc.Flush(); err != nil {
		return
	}
	keepAlive := ch.clock.NewTicker(KeepAliveInterval)
	defer keepAlive.Stop()
	for {
		select {
		case <-req.Context().Done():
			return
		case <-ch.closed:
			return
		case <-keepAlive.C():
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case <-sub:
			id, modified := ch.current(rt.namespace)
			data, _ := json.Marshal(refetchEvent{Type: "refetchEvaluation", ETag: strconv.Quote(id), LastModified: unixSeconds(modified)})
			if _, err := fmt.Fprintf(w, "id: %s\ndata: %s\n\n", id, data); err != nil {
				klog.V(4).InfoS("OFREP event stream closed", "namespace", rt.namespace, "err", err)
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// openStream counts a new stream of user, or says which limit it is over.
func (ch *Changes) openStream(user string) string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.limits.Total > 0 && ch.streams >= ch.limits.Total {
		ofrepMetrics.refusedStreams.WithLabelValues("server").Inc()
		return fmt.Sprintf("this server has %d event streams open, its limit; poll, or retry later", ch.streams)
	}
	if ch.limits.PerUser > 0 && ch.streamsByUser[user] >= ch.limits.PerUser {
		ofrepMetrics.refusedStreams.WithLabelValues("user").Inc()
		return fmt.Sprintf("%q has %d event streams open, the limit per user; poll, or retry later", user, ch.streamsByUser[user])
	}
	if ch.streamsByUser == nil {
		ch.streamsByUser = map[string]int{}
	}
	ch.streams++
	ch.streamsByUser[user]++
	ofrepMetrics.openStreams.Inc()
	return ""
}

func (ch *Changes) closeStream(user string) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.streams--
	ofrepMetrics.openStreams.Dec()
	if ch.streamsByUser[user]--; ch.streamsByUser[user] <= 0 {
		delete(ch.streamsByUser, user)
	}
}

func unixSeconds(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
