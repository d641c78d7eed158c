package guard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// UnavailableRetryAfterSeconds is the Retry-After of a 503 for an etcd that
// cannot serve: long enough for an election (about a second with etcd's
// defaults), short enough that a client soon sees quorum come back.
const UnavailableRetryAfterSeconds = 5

// ReadTimeout bounds one read of storage (get, list). etcd itself gives up
// on a request after 5s plus two election timeouts (7s with its defaults),
// but etcd's client retries a read that failed with "no leader" until the
// request's deadline: without quorum a GET would hang for the whole
// --request-timeout (60s) and end in a 504. A read still running after
// ReadTimeout is answered 503.
const ReadTimeout = 10 * time.Second

// ownCreateTimeout bounds the read that looks for a create's own object
// after an ambiguous error: an etcd election takes about a second.
const ownCreateTimeout = 3 * time.Second

// etcdUnavailable are the errors etcd's client gives (as typed errors,
// rpctypes, which the storage layer passes on) when etcd cannot serve a
// request now but may later, each with whether a write that got it may
// have been committed all the same: only then is a create worth reading
// back. Any other error with gRPC code Unavailable — the connection, or
// an etcd error not listed — is unavailability too, with the write's fate
// unknown.
var etcdUnavailable = []struct {
	err            error
	mayHaveApplied bool
}{
	// Refused before it was proposed: writes carry WithRequireLeader.
	{rpctypes.ErrNoLeader, false},
	// Proposed; the answer was lost to an election or a timeout.
	{rpctypes.ErrLeaderChanged, true},
	{rpctypes.ErrTimeout, true},
	{rpctypes.ErrTimeoutDueToLeaderFail, true},
	{rpctypes.ErrTimeoutDueToConnectionLost, true},
}

// readContext bounds a read by ReadTimeout.
func readContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, ReadTimeout)
}

// writeContext asks etcd to refuse a write at once when the member it
// reaches has no leader ("etcdserver: no leader"), rather than proposing it
// to a cluster that cannot commit it: upstream's requests carry no such
// requirement, and such a create hangs until its deadline (34s) and ends in
// a 504. A write to a member that still believes in a leader which lost
// quorum ends within etcd's request timeout with "etcdserver: request timed
// out"; both become 503s.
func writeContext(ctx context.Context) context.Context {
	return clientv3.WithRequireLeader(ctx)
}

// etcdUnavailability tells whether err says etcd cannot serve now, and if
// so whether a write that got it may have been applied.
func etcdUnavailability(err error) (unavailable, mayHaveApplied bool) {
	for _, u := range etcdUnavailable {
		if errors.Is(err, u.err) {
			return true, u.mayHaveApplied
		}
	}
	var etcdErr rpctypes.EtcdError
	if errors.As(err, &etcdErr) {
		unavailable := etcdErr.Code() == codes.Unavailable
		return unavailable, unavailable
	}
	if s, ok := status.FromError(err); ok {
		unavailable := s.Code() == codes.Unavailable
		return unavailable, unavailable
	}
	return false, false
}

// MayHaveApplied tells an etcd error after which a write may have been
// committed (its answer lost to a leader change or a timeout) from one
// etcd gives before accepting it (no leader).
func MayHaveApplied(err error) bool {
	_, applied := etcdUnavailability(err)
	return applied
}

// Unavailable turns a storage error that means "etcd cannot serve now" into
// a 503 ServiceUnavailable with Retry-After, where upstream answers 500 (the
// raw etcd error) or, once the request's deadline passes, 504. ctx is the
// request's own context: a deadline that expired in a context derived from
// it (ReadTimeout) is etcd's unavailability; the request's own expiring is
// left to upstream's 504. etcd's "database space exceeded" (its quota, the
// NOSPACE alarm) is a 507 Insufficient Storage instead. Errors that already
// carry a status, and nil, are returned unchanged.
func Unavailable(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var apiStatus apierrors.APIStatus
	if errors.As(err, &apiStatus) {
		return err
	}
	if errors.Is(err, rpctypes.ErrNoSpace) {
		// Not unavailability: etcd refuses writes until an operator acts.
		return InsufficientStorage(fmt.Sprintf("etcd refuses writes: its database has reached its space quota (etcd's NOSPACE alarm: %s). "+
			"An operator must compact and defragment etcd and disarm the alarm (docs/operations.md#disk-space); reads and evaluations are still served", err))
	}
	var msg string
	switch unavailable, _ := etcdUnavailability(err); {
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		// Only the time is known: etcd may be slow to answer, or this
		// server too busy to read its answer (a starved process looks the
		// same from here). etcd's own errors say when it is etcd.
		msg = fmt.Sprintf("the read did not finish within %s: the datastore (etcd) or this server is overloaded", ReadTimeout)
	case unavailable:
		msg = "the datastore (etcd) is unavailable: " + err.Error()
	default:
		return err
	}
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure,
		Code:   503,
		Reason: metav1.StatusReasonServiceUnavailable,
		Message: msg + "; retry later. A write refused this way may or may not have been applied (a create " +
			"that was is answered as created when etcd can say so in time): a retried create may find the object exists",
		Details: &metav1.StatusDetails{RetryAfterSeconds: UnavailableRetryAfterSeconds},
	}}
}

// OwnCreate returns the object that created obj when it is stored after
// all: when etcd loses its leader, the answer to a write it committed can be
// lost, and a 503 would have the client retry (client-go does, on its own,
// for a 503 with Retry-After) into a 409 for its own object. The stored
// object is this request's when it has the UID the request gave obj, which
// no other create can have. get reads from etcd (no resourceVersion: a
// quorum read); nil when it fails or finds another object or none.
func OwnCreate(ctx context.Context, obj runtime.Object, get func(context.Context, string, *metav1.GetOptions) (runtime.Object, error)) runtime.Object {
	m, err := meta.Accessor(obj)
	if err != nil || m.GetUID() == "" || m.GetName() == "" {
		return nil
	}
	stored, err := get(ctx, m.GetName(), &metav1.GetOptions{})
	if err != nil {
		return nil
	}
	if sm, err := meta.Accessor(stored); err != nil || sm.GetUID() != m.GetUID() {
		return nil
	}
	return stored
}
