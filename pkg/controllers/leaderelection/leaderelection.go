// Package leaderelection runs Flagpole's in-server controllers on exactly one
// replica at a time. Replicas campaign in an election on Flagpole's own etcd
// (go.etcd.io/etcd/client/v3/concurrency: a key bound to a lease, the oldest
// key wins), so standalone and delegated modes elect alike and no kube Lease
// or RBAC is needed. The leader's lease lapses TTL after it stops renewing it
// (crash, partition); a replica that shuts down resigns, and another takes
// over at once.
package leaderelection

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
)

const (
	// DefaultTTL is the session lease's time to live: how long a leader that
	// stopped renewing (crashed, cut off from etcd) keeps the election.
	DefaultTTL = 5 * time.Second
	// DefaultRetryPeriod is the pause before campaigning again after a
	// failure (etcd unreachable, a lost session).
	DefaultRetryPeriod = time.Second
	// DefaultResignTimeout bounds the resignation on shutdown.
	DefaultResignTimeout = 3 * time.Second

	// keyRoot holds Flagpole's elections, outside the storage prefix
	// (--etcd-prefix, /registry/flagpole.dev by default) where the API
	// server's objects live.
	keyRoot = "/flagpole-leader-election"
)

// leader is 1 while a controller election of this process is held. Several
// servers in one process (tests) add up: the value is how many of them lead.
var leader = metrics.NewGauge(&metrics.GaugeOpts{
	Name:           "flagpole_leader",
	Help:           "1 while this replica holds the controller election and runs Flagpole's in-server controllers, 0 otherwise.",
	StabilityLevel: metrics.ALPHA,
})

var registerMetrics sync.Once

// Key returns the election key for a Flagpole whose objects live under
// storagePrefix (--etcd-prefix): outside that prefix, and distinct for each
// prefix, so that Flagpoles sharing one etcd under different prefixes elect
// each their own leader.
func Key(storagePrefix string) string {
	return path.Join(keyRoot, path.Clean("/"+storagePrefix), "controllers")
}

// Config configures an Elector.
type Config struct {
	// Client reaches the etcd the replicas share.
	Client *clientv3.Client
	// Key is the election's key prefix (see Key).
	Key string
	// Identity names this candidate in logs and in the election's value.
	// Empty means <hostname>_<random>.
	Identity string
	// TTL of the session lease, rounded to whole seconds; DefaultTTL if zero.
	TTL time.Duration
	// RetryPeriod; DefaultRetryPeriod if zero.
	RetryPeriod time.Duration
	// Lead runs the controllers for one term of leadership: it is called each
	// time this candidate becomes leader, must run until ctx is done and
	// return only once the controllers have stopped. Returning earlier
	// (an error, say) ends the term: the candidate resigns and campaigns again.
	Lead func(ctx context.Context) error
}

// Elector campaigns for one replica and runs Lead while it leads.
type Elector struct {
	cfg     Config
	ttl     int
	leading atomic.Bool
	done    chan struct{}
}

// New checks cfg and fills in defaults.
func New(cfg Config) (*Elector, error) {
	if cfg.Client == nil || cfg.Key == "" || cfg.Lead == nil {
		return nil, errors.New("leader election needs an etcd client, a key and controllers to lead")
	}
	if cfg.Identity == "" {
		cfg.Identity = DefaultIdentity()
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.RetryPeriod == 0 {
		cfg.RetryPeriod = DefaultRetryPeriod
	}
	ttl := int((cfg.TTL + time.Second - 1) / time.Second)
	if ttl < 1 {
		ttl = 1
	}
	registerMetrics.Do(func() { legacyregistry.MustRegister(leader) })
	return &Elector{cfg: cfg, ttl: ttl, done: make(chan struct{})}, nil
}

// DefaultIdentity is the host name and a random suffix, unique per process
// and per elector.
func DefaultIdentity() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "flagpole"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + "_" + hex.EncodeToString(b)
}

// Identity is this candidate's name in the election.
func (e *Elector) Identity() string { return e.cfg.Identity }

// IsLeader reports whether this candidate leads now.
func (e *Elector) IsLeader() bool { return e.leading.Load() }

// Done is closed when Run has returned: the controllers have stopped and, if
// this candidate led, it has resigned.
func (e *Elector) Done() <-chan struct{} { return e.done }

// Run campaigns until ctx is done, running Lead while it leads. When ctx is
// done it stops the controllers, resigns and returns. Call it once.
func (e *Elector) Run(ctx context.Context) {
	defer close(e.done)
	logger := klog.FromContext(ctx).WithValues("election", e.cfg.Key, "identity", e.cfg.Identity)
	for ctx.Err() == nil {
		if err := e.term(ctx, logger); err != nil && ctx.Err() == nil {
			logger.Error(err, "Leader election failed; campaigning again", "retryPeriod", e.cfg.RetryPeriod)
		}
		select {
		case <-ctx.Done():
		case <-time.After(e.cfg.RetryPeriod):
		}
	}
}

// term campaigns with a fresh session and, if elected, leads until the
// session is lost, the election key goes, Lead returns or ctx is done.
func (e *Elector) term(ctx context.Context, logger klog.Logger) error {
	client := e.cfg.Client
	// The session's own context stays the client's: Close must still revoke
	// the lease after ctx is done.
	session, err := newSession(ctx, client, e.ttl)
	if err != nil {
		return fmt.Errorf("creating an etcd session: %w", err)
	}
	defer func() {
		// Revoking the lease deletes this candidate's key, if still there.
		_ = session.Close()
	}()

	campaignCtx, cancelCampaign := context.WithCancel(ctx)
	defer cancelCampaign()
	go func() {
		select {
		case <-session.Done():
			cancelCampaign()
		case <-campaignCtx.Done():
		}
	}()
	election := concurrency.NewElection(session, e.cfg.Key)
	if err := election.Campaign(campaignCtx, e.cfg.Identity); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("campaigning: %w", err)
	}
	// Campaign also returns once the older keys are gone if this
	// candidate's own key went meanwhile (its lease expired): make sure it
	// is still there, and watch it from here on.
	resp, err := client.Get(campaignCtx, election.Key())
	if err != nil {
		return fmt.Errorf("checking the election key: %w", err)
	}
	if len(resp.Kvs) != 1 || resp.Kvs[0].CreateRevision != election.Rev() || clientv3.LeaseID(resp.Kvs[0].Lease) != session.Lease() {
		return errors.New("elected, but the election key is gone: the session expired")
	}

	termCtx, endTerm := context.WithCancel(ctx)
	defer endTerm()
	keyGone := make(chan struct{})
	go func() {
		defer close(keyGone)
		for w := range client.Watch(termCtx, election.Key(), clientv3.WithRev(resp.Header.Revision+1), clientv3.WithFilterPut()) {
			if w.Err() != nil || len(w.Events) > 0 {
				return
			}
		}
	}()

	e.leading.Store(true)
	leader.Inc()
	logger.Info("Became leader")
	leadErr := make(chan error, 1)
	go func() { leadErr <- e.cfg.Lead(termCtx) }()

	var reason string
	var termErr error
	select {
	case <-ctx.Done():
		reason = "shutting down"
	case <-session.Done():
		reason = "etcd session lost"
	case <-keyGone:
		reason = "election key deleted or unwatchable"
	case err := <-leadErr:
		reason = "controllers stopped"
		termErr = err
		leadErr <- err
	}
	endTerm()
	if err := <-leadErr; err != nil && termErr == nil && ctx.Err() == nil {
		termErr = err
	}
	e.leading.Store(false)
	leader.Dec()
	logger.Info("Lost leadership", "reason", reason)

	select {
	case <-session.Done():
		// The lease is gone or cannot be renewed: nothing left to resign.
	default:
		resignCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultResignTimeout)
		defer cancel()
		if err := election.Resign(resignCtx); err != nil {
			logger.Error(err, "Resigning failed; the election lapses with the session's lease", "ttl", e.cfg.TTL)
		} else {
			logger.Info("Resigned")
		}
	}
	if termErr != nil {
		return fmt.Errorf("controllers: %w", termErr)
	}
	return nil
}

// newSession grants a lease and keeps it alive; the grant gives up when ctx is done.
func newSession(ctx context.Context, client *clientv3.Client, ttl int) (*concurrency.Session, error) {
	grantCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	lease, err := client.Grant(grantCtx, int64(ttl))
	if err != nil {
		return nil, err
	}
	s, err := concurrency.NewSession(client, concurrency.WithTTL(ttl), concurrency.WithLease(lease.ID))
	if err != nil {
		revokeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_, _ = client.Revoke(revokeCtx, lease.ID)
		return nil, err
	}
	return s, nil
}
