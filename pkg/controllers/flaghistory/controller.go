// Package flaghistory is the in-server controller that keeps every flag's
// history and tells its owners what happened to it. It runs on the leader
// and derives everything from the watch, after the change is stored, so
// that no write of a flag waits for it:
//
//   - a FlagRevision for every generation of every flag (its spec, who made
//     it and when — status.lastChange, captured in the write — and a diff
//     against the previous revision), at most --flag-revision-limit per
//     flag (the oldest removed), each lapsing --flag-revision-max-age after
//     its change, all removed with their flag;
//   - Events on the flag: its kill switch flipped, its default variant or a
//     rollout changed, an override created, expired or deleted, the flag
//     turning stale and fresh again.
package flaghistory

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluator"
	"github.com/flagpole-dev/flagpole/pkg/flagevents"
	informers "github.com/flagpole-dev/flagpole/pkg/generated/informers/externalversions"
	listers "github.com/flagpole-dev/flagpole/pkg/generated/listers/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/registry/flagpole/flagrevision"
)

// DefaultRevisionLimit is how many revisions a flag keeps by default.
const DefaultRevisionLimit = 20

// DefaultRevisionMaxAge is how long a revision is kept by default.
const DefaultRevisionMaxAge = 90 * 24 * time.Hour

// Store is what revisions are written through (flagrevision.Writer).
type Store interface {
	rest.Getter
	rest.Creater
	rest.GracefulDeleter
}

// Controller writes revisions and records events.
type Controller struct {
	store    Store
	flags    listers.FlagLister
	recorder flagevents.Recorder
	limit    int64
	clock    clock.PassiveClock
	synced   []cache.InformerSynced
	handlers []registration
	queue    workqueue.TypedRateLimitingInterface[item]

	// pending holds what each queued revision is written from: the flag as
	// the watch saw it at that generation, and the spec before it when the
	// watch saw that too. Revisions are written from these snapshots, not
	// from the lister, so that a generation superseded before its turn
	// still gets one.
	mu      sync.Mutex
	pending map[item]snapshot
	// written is the last generation of each flag this term wrote (or
	// found) a revision of.
	written map[types.UID]int64
}

// catchUpWindow: at the start of a term, flags changed this recently get
// their revision written if the last leader had not. A gap between leaders
// lasts seconds (the election's TTL); nothing is written while no replica
// serves. Older generations are assumed written: checking every flag would
// be a read of etcd per flag at every change of leader.
const catchUpWindow = 10 * time.Minute

type registration struct {
	informer cache.SharedIndexInformer
	handle   cache.ResourceEventHandlerRegistration
}

// item is one piece of work: a flag's revision, or the removal of a
// deleted flag's revisions.
type item struct {
	namespace, name string
	uid             types.UID
	generation      int64
	// deleted: remove the revisions of the flag, deleted at generation.
	deleted bool
}

type snapshot struct {
	flag     *v1beta1.Flag
	previous *v1beta1.FlagSpec
}

// New registers the controller's handlers on the factory's informers. A
// Controller runs once (a term of leadership); make a new one for the next.
func New(factory informers.SharedInformerFactory, store Store, recorder flagevents.Recorder, limit int, c clock.PassiveClock) (*Controller, error) {
	v1 := factory.Flagpole().V1beta1()
	ctrl := &Controller{
		store:    store,
		flags:    v1.Flags().Lister(),
		recorder: recorder,
		limit:    int64(limit),
		clock:    c,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[item](),
			workqueue.TypedRateLimitingQueueConfig[item]{Name: "flag-history"}),
		pending: map[item]snapshot{},
		written: map[types.UID]int64{},
	}
	if err := ctrl.addHandler(v1.Flags().Informer(), cache.ResourceEventHandlerDetailedFuncs{
		// A new flag, or every flag at the start of a term: those changed
		// lately may have missed their revision while no replica led (no
		// events: nothing happened just now).
		AddFunc: func(obj any, isInInitialList bool) {
			f, ok := obj.(*v1beta1.Flag)
			if !ok {
				return
			}
			if isInInitialList {
				changed := f.CreationTimestamp.Time
				if f.Status.LastChange != nil {
					changed = f.Status.LastChange.Time.Time
				}
				if c.Now().Sub(changed) > catchUpWindow {
					return
				}
			}
			ctrl.queueRevision(f, nil)
		},
		UpdateFunc: func(oldObj, newObj any) {
			old, ok1 := oldObj.(*v1beta1.Flag)
			f, ok2 := newObj.(*v1beta1.Flag)
			if !ok1 || !ok2 {
				return
			}
			if f.Generation != old.Generation {
				var previous *v1beta1.FlagSpec
				if old.Generation == f.Generation-1 {
					previous = &old.Spec
					// The generation it replaces, unless written this term:
					// the first change after an upgrade, or after a gap.
					ctrl.mu.Lock()
					known := ctrl.written[f.UID] >= old.Generation
					ctrl.mu.Unlock()
					if !known {
						ctrl.queueRevision(old, nil)
					}
				}
				ctrl.queueRevision(f, previous)
				ctrl.specEvents(old, f)
			}
			ctrl.staleEvents(old, f)
		},
		DeleteFunc: func(obj any) {
			if f, ok := evaluator.Unwrap(obj).(*v1beta1.Flag); ok {
				ctrl.queue.Add(item{namespace: f.Namespace, name: f.Name, uid: f.UID, generation: f.Generation, deleted: true})
			}
		},
	}); err != nil {
		return nil, err
	}
	if err := ctrl.addHandler(v1.FlagOverrides().Informer(), cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, isInInitialList bool) {
			if o, ok := obj.(*v1beta1.FlagOverride); ok && !isInInitialList {
				ctrl.overrideCreated(o)
			}
		},
		DeleteFunc: func(obj any) {
			if o, ok := evaluator.Unwrap(obj).(*v1beta1.FlagOverride); ok {
				ctrl.overrideGone(o)
			}
		},
	}); err != nil {
		ctrl.removeHandlers()
		return nil, err
	}
	return ctrl, nil
}

func (c *Controller) addHandler(informer cache.SharedIndexInformer, h cache.ResourceEventHandler) error {
	handle, err := informer.AddEventHandler(h)
	if err != nil {
		return err
	}
	c.handlers = append(c.handlers, registration{informer, handle})
	c.synced = append(c.synced, handle.HasSynced)
	return nil
}

func (c *Controller) removeHandlers() {
	for _, h := range c.handlers {
		if err := h.informer.RemoveEventHandler(h.handle); err != nil {
			utilruntime.HandleError(err)
		}
	}
	c.handlers = nil
}

func (c *Controller) queueRevision(f *v1beta1.Flag, previous *v1beta1.FlagSpec) {
	it := item{namespace: f.Namespace, name: f.Name, uid: f.UID, generation: f.Generation}
	c.mu.Lock()
	if _, queued := c.pending[it]; !queued || previous != nil {
		c.pending[it] = snapshot{flag: f, previous: previous}
	}
	c.mu.Unlock()
	c.queue.Add(it)
}

// Run writes revisions until ctx is done, and returns once its workers have
// stopped and its handlers are removed.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	defer c.removeHandlers()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer c.queue.ShutDown()
	logger := klog.FromContext(ctx)
	logger.Info("Starting flag history controller")
	defer logger.Info("Shutting down flag history controller")
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.synced...) {
		return
	}
	for i := 0; i < workers; i++ {
		wg.Go(func() { wait.UntilWithContext(ctx, c.worker, time.Second) })
	}
	<-ctx.Done()
}

func (c *Controller) worker(ctx context.Context) {
	for {
		it, quit := c.queue.Get()
		if quit {
			return
		}
		err := c.sync(ctx, it)
		c.queue.Done(it)
		if err != nil {
			klog.FromContext(ctx).V(2).Info("Requeuing flag history", "flag", it.namespace+"/"+it.name, "generation", it.generation, "err", err)
			c.queue.AddRateLimited(it)
			continue
		}
		c.queue.Forget(it)
	}
}

func (c *Controller) sync(ctx context.Context, it item) error {
	ctx = genericapirequest.WithNamespace(ctx, it.namespace)
	if it.deleted {
		c.mu.Lock()
		delete(c.written, it.uid)
		c.mu.Unlock()
		return c.removeRevisions(ctx, it)
	}
	c.mu.Lock()
	snap, ok := c.pending[it]
	c.mu.Unlock()
	if !ok {
		return nil
	}
	if err := c.writeRevision(ctx, snap); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.pending, it)
	c.written[it.uid] = max(c.written[it.uid], it.generation)
	c.mu.Unlock()
	// Keep the newest limit revisions: the one limit generations back goes
	// (older ones went the same way, or lapse with their lease).
	if old := it.generation - c.limit; old >= 1 {
		_, _, err := c.store.Delete(ctx, flagrevision.Name(it.name, old), rest.ValidateAllObjectFunc, &metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// writeRevision creates the revision of a flag's generation, unless it
// exists. A revision of the same name left by a deleted flag of the same
// name is replaced. The create is tried first: it is the common case, and
// costs no read.
func (c *Controller) writeRevision(ctx context.Context, snap snapshot) error {
	f := snap.flag
	// A flag deleted since has its revisions removed: write none for it.
	if current, err := c.flags.Flags(f.Namespace).Get(f.Name); err != nil || current.UID != f.UID {
		return nil
	}
	name := flagrevision.Name(f.Name, f.Generation)
	var versioned v1beta1.FlagRevision
	versioned.Name, versioned.Namespace = name, f.Namespace
	versioned.Flag = v1beta1.FlagReference{Name: f.Name, UID: f.UID}
	versioned.Spec = *f.Spec.DeepCopy()
	versioned.Change = v1beta1.FlagChange{Generation: f.Generation, Time: f.CreationTimestamp}
	if lc := f.Status.LastChange; lc != nil && lc.Generation == f.Generation {
		versioned.Change = *lc.DeepCopy()
	}
	previous := snap.previous
	if previous == nil && f.Generation > 1 {
		if r := c.revision(ctx, flagrevision.Name(f.Name, f.Generation-1), f.UID); r != nil {
			var spec v1beta1.FlagSpec
			_ = v1beta1.Convert_flagpole_FlagSpec_To_v1beta1_FlagSpec(&r.Spec, &spec, nil)
			previous = &spec
		}
	}
	if previous != nil {
		versioned.Diff = Diff(previous, &f.Spec)
	}
	var revision flagpole.FlagRevision
	if err := v1beta1.Convert_v1beta1_FlagRevision_To_flagpole_FlagRevision(&versioned, &revision, nil); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		_, err := c.store.Create(ctx, revision.DeepCopy(), rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) || attempt > 0 {
			return err
		}
		if c.revision(ctx, name, f.UID) != nil {
			return nil
		}
		// Another flag's, of the same name, deleted before: replace it.
		if _, _, err := c.store.Delete(ctx, name, rest.ValidateAllObjectFunc, &metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
}

// revision reads a revision of the flag uid; nil when there is none.
func (c *Controller) revision(ctx context.Context, name string, uid types.UID) *flagpole.FlagRevision {
	obj, err := c.store.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil
	}
	if r := obj.(*flagpole.FlagRevision); r.Flag.UID == uid {
		return r
	}
	return nil
}

// removeRevisions removes the revisions of a deleted flag (of that uid:
// a flag created again under the name keeps its own). They are the newest
// --flag-revision-limit generations, by name: a read and a delete each,
// however many revisions the namespace holds (a field selector would read
// them all). Older ones went when they fell out of the limit, or lapse.
func (c *Controller) removeRevisions(ctx context.Context, it item) error {
	for g := it.generation; g >= 1 && g > it.generation-c.limit; g-- {
		r := c.revision(ctx, flagrevision.Name(it.name, g), it.uid)
		if r == nil {
			continue
		}
		uid := r.UID
		if _, _, err := c.store.Delete(ctx, r.Name, rest.ValidateAllObjectFunc, &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// by names who made a generation, for a note.
func by(f *v1beta1.Flag) string {
	if lc := f.Status.LastChange; lc != nil && lc.Generation == f.Generation && lc.User != "" {
		return fmt.Sprintf(" (by %s, generation %d)", lc.User, f.Generation)
	}
	return fmt.Sprintf(" (generation %d)", f.Generation)
}

// specEvents records what an owner must hear of a spec change.
func (c *Controller) specEvents(old, f *v1beta1.Flag) {
	if old.Spec.State != f.Spec.State {
		reason, note := flagevents.ReasonFlagEnabled, "the kill switch is off: the flag evaluates its overrides, rules and default again"
		if f.Spec.State == v1beta1.FlagStateDisabled {
			reason, note = flagevents.ReasonFlagDisabled, "the kill switch is on: every evaluation answers DISABLED with the default variant"
		}
		c.recorder.Eventf(f, nil, corev1.EventTypeNormal, reason, flagevents.ActionUpdate, "spec.state %s → %s%s: %s", old.Spec.State, f.Spec.State, by(f), note)
	}
	if old.Spec.DefaultVariant != f.Spec.DefaultVariant {
		c.recorder.Eventf(f, nil, corev1.EventTypeNormal, flagevents.ReasonDefaultVariantChanged, flagevents.ActionUpdate,
			"spec.defaultVariant %s → %s%s", quoted(string(old.Spec.DefaultVariant)), quoted(string(f.Spec.DefaultVariant)), by(f))
	}
	for _, r := range f.Spec.Rules {
		if r.Rollout == nil {
			continue
		}
		i := slices.IndexFunc(old.Spec.Rules, func(o v1beta1.Rule) bool { return o.Name == r.Name })
		before := "none"
		if i >= 0 && old.Spec.Rules[i].Rollout != nil {
			if slices.Equal(old.Spec.Rules[i].Rollout.Distribution, r.Rollout.Distribution) {
				continue
			}
			before = split(old.Spec.Rules[i].Rollout)
		}
		c.recorder.Eventf(f, nil, corev1.EventTypeNormal, flagevents.ReasonRolloutChanged, flagevents.ActionUpdate,
			"rule %q rollout %s → %s%s", r.Name, before, split(r.Rollout), by(f))
	}
}

func quoted(s string) string {
	if s == "" {
		return "<none>"
	}
	return fmt.Sprintf("%q", s)
}

// split describes a rollout's distribution as percentages.
func split(r *v1beta1.Rollout) string {
	var total int64
	for _, w := range r.Distribution {
		total += int64(w.Weight)
	}
	parts := make([]string, 0, len(r.Distribution))
	for _, w := range r.Distribution {
		pct := 0.0
		if total > 0 {
			pct = float64(w.Weight) * 100 / float64(total)
		}
		parts = append(parts, fmt.Sprintf("%s %.4g%%", w.Variant, pct))
	}
	return strings.Join(parts, ", ")
}

// staleEvents records the flag turning stale, and fresh again.
func (c *Controller) staleEvents(old, f *v1beta1.Flag) {
	was := meta.IsStatusConditionTrue(old.Status.Conditions, flagpole.FlagConditionStale)
	now := meta.FindStatusCondition(f.Status.Conditions, flagpole.FlagConditionStale)
	switch {
	case now == nil:
	case !was && now.Status == metav1.ConditionTrue:
		c.recorder.Eventf(f, nil, corev1.EventTypeWarning, flagevents.ReasonStale, flagevents.ActionCheck, "%s: %s", now.Reason, now.Message)
	case was && now.Status != metav1.ConditionTrue:
		c.recorder.Eventf(f, nil, corev1.EventTypeNormal, flagevents.ReasonNoLongerStale, flagevents.ActionCheck, "%s: %s", now.Reason, now.Message)
	}
}

// regarding is the flag an override is about, or the override itself when
// that flag does not exist.
func (c *Controller) regarding(o *v1beta1.FlagOverride) (regarding, related runtime.Object) {
	if f, err := c.flags.Flags(o.Namespace).Get(o.Spec.Flag); err == nil {
		return f, o
	}
	return o, nil
}

func whom(o *v1beta1.FlagOverride) string {
	if len(o.Spec.TargetingKeys) == 0 {
		return "everyone"
	}
	return fmt.Sprintf("%d targeting key(s)", len(o.Spec.TargetingKeys))
}

func (c *Controller) overrideCreated(o *v1beta1.FlagOverride) {
	until := "<unknown>"
	if o.Status.ExpiresAt != nil {
		until = o.Status.ExpiresAt.UTC().Format(time.RFC3339)
	}
	reg, rel := c.regarding(o)
	c.recorder.Eventf(reg, rel, corev1.EventTypeNormal, flagevents.ReasonOverrideCreated, flagevents.ActionOverride,
		"override %q forces variant %q for %s until %s", o.Name, o.Spec.Variant, whom(o), until)
}

func (c *Controller) overrideGone(o *v1beta1.FlagOverride) {
	reg, rel := c.regarding(o)
	if o.Status.ExpiresAt != nil && !c.clock.Now().Before(o.Status.ExpiresAt.Time) {
		c.recorder.Eventf(reg, rel, corev1.EventTypeNormal, flagevents.ReasonOverrideExpired, flagevents.ActionOverride,
			"override %q (variant %q for %s) expired at %s", o.Name, o.Spec.Variant, whom(o), o.Status.ExpiresAt.UTC().Format(time.RFC3339))
		return
	}
	c.recorder.Eventf(reg, rel, corev1.EventTypeNormal, flagevents.ReasonOverrideDeleted, flagevents.ActionOverride,
		"override %q (variant %q for %s) was deleted before it expired", o.Name, o.Spec.Variant, whom(o))
}
