package guard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
)

func TestUnavailable(t *testing.T) {
	live := context.Background()
	gone, cancelGone := context.WithTimeout(context.Background(), 0)
	defer cancelGone()
	<-gone.Done()

	notFound := apierrors.NewNotFound(schema.GroupResource{Group: "flagpole.dev", Resource: "flags"}, "x")
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want int // 0: unchanged
	}{
		{"nil", live, nil, 0},
		{"no leader", live, rpctypes.ErrNoLeader, http.StatusServiceUnavailable},
		{"request timed out", live, rpctypes.ErrTimeout, http.StatusServiceUnavailable},
		{"request timed out, leader failure", live, rpctypes.ErrTimeoutDueToLeaderFail, http.StatusServiceUnavailable},
		{"leader changed", live, rpctypes.ErrLeaderChanged, http.StatusServiceUnavailable},
		{"server stopped", live, rpctypes.ErrStopped, http.StatusServiceUnavailable},
		{"grpc unavailable", live, status.Error(codes.Unavailable, "connection refused"), http.StatusServiceUnavailable},
		{"grpc error converted by the client", live, rpctypes.Error(rpctypes.ErrGRPCNoLeader), http.StatusServiceUnavailable},
		{"wrapped", live, fmt.Errorf("list flags: %w", rpctypes.ErrNoLeader), http.StatusServiceUnavailable},
		{"read timeout", live, fmt.Errorf("get: %w", context.DeadlineExceeded), http.StatusServiceUnavailable},
		// The request's own deadline is upstream's 504 to give.
		{"request deadline", gone, context.DeadlineExceeded, 0},
		{"canceled", live, context.Canceled, 0},
		{"status kept", live, notFound, 0},
		{"other", live, rpctypes.ErrCompacted, 0},
		{"other grpc", live, status.Error(codes.InvalidArgument, "bad"), 0},
		// Text that only reads like etcd's is not etcd's error.
		{"text", live, errors.New("etcdserver: no leader"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Unavailable(tc.ctx, tc.err)
			if tc.want == 0 {
				if got != tc.err {
					t.Fatalf("Unavailable(%v) = %v, want it unchanged", tc.err, got)
				}
				return
			}
			var status apierrors.APIStatus
			if !errors.As(got, &status) {
				t.Fatalf("Unavailable(%v) = %v (%T), want a status", tc.err, got, got)
			}
			s := status.Status()
			if s.Code != int32(tc.want) || s.Reason != metav1.StatusReasonServiceUnavailable || !apierrors.IsServiceUnavailable(got) {
				t.Errorf("status %d %s, want %d ServiceUnavailable", s.Code, s.Reason, tc.want)
			}
			if s.Details == nil || s.Details.RetryAfterSeconds != UnavailableRetryAfterSeconds {
				t.Errorf("details %+v, want RetryAfterSeconds %d", s.Details, UnavailableRetryAfterSeconds)
			}
			if delay, ok := apierrors.SuggestsClientDelay(got); !ok || delay != UnavailableRetryAfterSeconds {
				t.Errorf("SuggestsClientDelay = %d, %v", delay, ok)
			}
		})
	}
}

// Only a write refused before it was proposed is known not to have been
// applied; after an election or a timeout it may have been.
func TestMayHaveApplied(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{rpctypes.ErrNoLeader, false},
		{fmt.Errorf("create: %w", rpctypes.ErrNoLeader), false},
		{rpctypes.ErrLeaderChanged, true},
		{rpctypes.ErrTimeout, true},
		{rpctypes.ErrTimeoutDueToLeaderFail, true},
		{rpctypes.ErrTimeoutDueToConnectionLost, true},
		{status.Error(codes.Unavailable, "transport is closing"), true},
		{rpctypes.ErrCompacted, false},
		{errors.New("boom"), false},
	} {
		if got := MayHaveApplied(tc.err); got != tc.want {
			t.Errorf("MayHaveApplied(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestWriteContextRequiresLeader(t *testing.T) {
	// clientv3.WithRequireLeader marks the outgoing gRPC metadata; the
	// context must keep the request's values and deadline.
	type key struct{}
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), key{}, "v"), 1<<40)
	defer cancel()
	w := writeContext(ctx)
	if w.Value(key{}) != "v" {
		t.Error("writeContext lost the request's values")
	}
	if _, ok := w.Deadline(); !ok {
		t.Error("writeContext lost the request's deadline")
	}
	if w == ctx {
		t.Error("writeContext returned the context unchanged")
	}
}

// A create whose answer was lost is the request's own when the stored
// object carries the UID the request gave it; anything else is not.
func TestOwnCreate(t *testing.T) {
	mine := &flagpole.Flag{ObjectMeta: metav1.ObjectMeta{Name: "f", Namespace: "ns", UID: "mine"}}
	stored := func(uid types.UID, err error) func(context.Context, string, *metav1.GetOptions) (runtime.Object, error) {
		return func(_ context.Context, name string, opts *metav1.GetOptions) (runtime.Object, error) {
			if name != "f" || opts.ResourceVersion != "" {
				t.Errorf("read %q at resourceVersion %q, want f from etcd", name, opts.ResourceVersion)
			}
			if err != nil {
				return nil, err
			}
			return &flagpole.Flag{ObjectMeta: metav1.ObjectMeta{Name: "f", Namespace: "ns", UID: uid, ResourceVersion: "7"}}, nil
		}
	}
	ctx := context.Background()
	if got := OwnCreate(ctx, mine, stored("mine", nil)); got == nil || got.(*flagpole.Flag).ResourceVersion != "7" {
		t.Errorf("own stored create: %v, want the stored object", got)
	}
	if got := OwnCreate(ctx, mine, stored("someone-else", nil)); got != nil {
		t.Errorf("another request's object was taken for this one's: %v", got)
	}
	if got := OwnCreate(ctx, mine, stored("", apierrors.NewNotFound(flagpole.Resource("flags"), "f"))); got != nil {
		t.Errorf("nothing stored: %v", got)
	}
	if got := OwnCreate(ctx, mine, stored("", rpctypes.ErrNoLeader)); got != nil {
		t.Errorf("unreadable: %v", got)
	}
	noUID := mine.DeepCopy()
	noUID.UID = ""
	if got := OwnCreate(ctx, noUID, stored("", nil)); got != nil {
		t.Errorf("a request without a UID matched: %v", got)
	}
}
