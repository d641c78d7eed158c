// Package flagstatus is the in-server controller that keeps every Flag's
// status current: observedGeneration, Ready (references resolve and
// expressions compile) and Stale (stale.go: past spec.expiresAt, unused,
// serving a single variant, or past its lifecycle kind's lifetime). It
// writes a flag's status only when it changes: usage changes every flush,
// the Stale condition only when a flag turns stale or fresh.
package flagstatus

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
	"github.com/flagpole-dev/flagpole/pkg/evaluator"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	informers "github.com/flagpole-dev/flagpole/pkg/generated/informers/externalversions"
)

// Reasons of the Ready condition.
const (
	ReasonResolved          = "Resolved"
	ReasonSegmentNotFound   = "SegmentNotFound"
	ReasonExpressionInvalid = "ExpressionInvalid"
)

// DefaultRecheckInterval is how often every flag's staleness is checked
// again: usage moves with every flush, about once a minute.
const DefaultRecheckInterval = time.Minute

// maxRequeueDelay bounds the wake-up for a flag that turns stale later. A far
// expiry is re-checked daily instead of once: the delay then stays far from
// time.Duration's ~292-year range, and a wall-clock jump is noticed within a day.
const maxRequeueDelay = 24 * time.Hour

// Controller reconciles Flag status.
type Controller struct {
	client clientset.Interface
	// source holds the flags and segments and compiles flags.
	source *evaluator.Evaluator
	// usage and policy decide staleness; every flag is checked again each
	// recheck interval.
	usage   UsageSource
	policy  Policy
	recheck time.Duration
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
	clock   clock.WithTicker
	// handlers are the controller's event handlers on the shared informers,
	// removed when Run ends.
	handlers []registration
}

type registration struct {
	informer cache.SharedIndexInformer
	handle   cache.ResourceEventHandlerRegistration
}

// New registers the controller's event handlers with the factory's informers,
// which source reads; the caller starts the factory. A Controller runs once:
// to run the controller again (a new term of leadership), make a new one; the
// informers may already be running, and the new controller's handlers then
// receive every object as added.
func New(client clientset.Interface, factory informers.SharedInformerFactory, source *evaluator.Evaluator, c clock.WithTicker, opts ...Option) (*Controller, error) {
	flagInformer := factory.Flagpole().V1beta1().Flags()
	segmentInformer := factory.Flagpole().V1beta1().Segments()
	ctrl := &Controller{
		client:  client,
		source:  source,
		usage:   NoUsage,
		policy:  DefaultPolicy(),
		recheck: DefaultRecheckInterval,
		synced:  []cache.InformerSynced{flagInformer.Informer().HasSynced, segmentInformer.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "flag-status", Clock: c}),
		clock: c,
	}
	for _, o := range opts {
		o(ctrl)
	}
	if err := ctrl.addHandler(flagInformer.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    ctrl.enqueue,
		UpdateFunc: func(_, obj any) { ctrl.enqueue(obj) },
	}); err != nil {
		return nil, err
	}
	// A segment appearing, changing or going away changes the readiness of
	// the flags in its namespace that name it.
	segmentChanged := func(obj any) {
		if s, ok := evaluator.Unwrap(obj).(*v1beta1.Segment); ok {
			for _, f := range source.FlagsNaming(s) {
				ctrl.enqueue(f)
			}
		}
	}
	if err := ctrl.addHandler(segmentInformer.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    segmentChanged,
		UpdateFunc: func(_, obj any) { segmentChanged(obj) },
		DeleteFunc: segmentChanged,
	}); err != nil {
		ctrl.removeHandlers()
		return nil, err
	}
	return ctrl, nil
}

// Option configures a Controller.
type Option func(*Controller)

// WithUsage decides staleness from usage with policy, checking every flag
// again each recheck interval.
func WithUsage(usage UsageSource, policy Policy, recheck time.Duration) Option {
	return func(c *Controller) {
		c.usage, c.policy = usage, policy
		if recheck > 0 {
			c.recheck = recheck
		}
	}
}

func (c *Controller) addHandler(informer cache.SharedIndexInformer, h cache.ResourceEventHandler) error {
	handle, err := informer.AddEventHandler(h)
	if err != nil {
		return err
	}
	c.handlers = append(c.handlers, registration{informer, handle})
	// Wait for this handler to have seen the informer's objects, not only
	// for the informer to have synced.
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

func (c *Controller) enqueue(obj any) {
	key, err := cache.MetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	c.queue.Add(key)
}

// Run processes flags until ctx is done, and returns once its workers have
// stopped and its event handlers are removed from the shared informers.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	defer c.removeHandlers()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer c.queue.ShutDown()
	logger := klog.FromContext(ctx)
	logger.Info("Starting flag status controller")
	defer logger.Info("Shutting down flag status controller")
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.synced...) {
		return
	}
	for i := 0; i < workers; i++ {
		wg.Go(func() { wait.UntilWithContext(ctx, c.worker, time.Second) })
	}
	// Usage and the time move staleness without any object changing.
	ticker := c.clock.NewTicker(c.recheck)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
			flags, _ := c.source.Flags().List(labels.Everything())
			for _, f := range flags {
				c.enqueue(f)
			}
		}
	}
}

func (c *Controller) worker(ctx context.Context) {
	for c.processNext(ctx) {
	}
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	if err := c.sync(ctx, key); err != nil {
		klog.FromContext(ctx).V(2).Info("Requeuing flag status", "flag", key, "err", err)
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	f, err := c.source.Flags().Flags(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	now := c.clock.Now()
	status := c.policy.Compute(f, c.source.Compile(f), c.usage(f), now)
	if f.Spec.ExpiresAt != nil && now.Before(f.Spec.ExpiresAt.Time) {
		// Wake up a second after the flag turns stale, or after
		// maxRequeueDelay if that is sooner. Sub saturates at the largest
		// Duration, so the second is added only below the bound.
		delay := maxRequeueDelay
		if until := f.Spec.ExpiresAt.Sub(now); until < maxRequeueDelay-time.Second {
			delay = until + time.Second
		}
		c.queue.AddAfter(key, delay)
	}
	if apiequality.Semantic.DeepEqual(status, f.Status) {
		return nil
	}
	updated := f.DeepCopy()
	updated.Status = status
	_, err = c.client.FlagpoleV1beta1().Flags(namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{FieldManager: "flag-status-controller"})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// AtWrite returns what the flag strategy derives a written flag's status
// with (flag.StatusFunc): Compute on the flag as it is about to be stored,
// with the segments source knows then and its usage. That is the same
// watch-fed state the controller reads, so it may lag a segment created a
// moment earlier; the controller then corrects the status when the segment
// arrives, which is the one case a new flag costs a second write. The flag
// is compiled afresh, not through source's cache of stored flags: a write
// may still fail.
func AtWrite(source *evaluator.Evaluator, usage UsageSource, policy Policy, c clock.PassiveClock) func(*flagpole.Flag) flagpole.FlagStatus {
	return func(f *flagpole.Flag) flagpole.FlagStatus {
		var versioned v1beta1.Flag
		var out flagpole.FlagStatus
		// Both conversions are generated field copies that cannot fail.
		_ = v1beta1.Convert_flagpole_Flag_To_v1beta1_Flag(f, &versioned, nil)
		status := policy.Compute(&versioned, evaluation.CompileFlag(&versioned, source.SegmentLookup(f.Namespace)), usage(&versioned), c.Now())
		_ = v1beta1.Convert_v1beta1_FlagStatus_To_flagpole_FlagStatus(&status, &out, nil)
		return out
	}
}

// Compute derives a flag's status from the flag, the flag compiled with its
// segments, its usage and the time. Conditions whose status does not
// change keep their lastTransitionTime. Usage itself is never part of the
// stored status.
func (p Policy) Compute(f *v1beta1.Flag, compiled *evaluation.Compiled, u Usage, now time.Time) v1beta1.FlagStatus {
	status := *f.Status.DeepCopy()
	status.ObservedGeneration = f.Generation
	status.Usage = nil

	ready := metav1.Condition{Type: flagpole.FlagConditionReady, Status: metav1.ConditionTrue, Reason: ReasonResolved,
		Message: "every referenced segment exists and every expression compiles", ObservedGeneration: f.Generation}
	missing, invalid := compiled.Problems()
	switch {
	case len(invalid) > 0:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, ReasonExpressionInvalid, strings.Join(invalid, "; ")
	case len(missing) > 0:
		ready.Status, ready.Reason = metav1.ConditionFalse, ReasonSegmentNotFound
		ready.Message = fmt.Sprintf("segment(s) not found: %s; rules naming them match no one", strings.Join(missing, ", "))
	}
	setCondition(&status.Conditions, ready, now)
	setCondition(&status.Conditions, p.stale(f, u, now), now)
	return status
}

func setCondition(conditions *[]metav1.Condition, c metav1.Condition, now time.Time) {
	c.LastTransitionTime = metav1.NewTime(now)
	meta.SetStatusCondition(conditions, c)
}
