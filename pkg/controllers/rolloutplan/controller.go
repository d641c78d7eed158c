// Package rolloutplan is the controller that runs rollout plans, in the
// elected replica's term beside the other in-server controllers: it starts
// a plan written into a flag, ends its steps on time, reads its guards, and
// writes where each plan is to status.rollouts (which evaluation reads),
// with an Event per transition. Everything it knows is in the object, so a
// new leader goes on from the step the last one wrote; a step whose end
// passed while no replica led is ended once, when the next leader looks.
// The state machine is pkg/rolloutplan's.
package rolloutplan

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/flagevents"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	informers "github.com/flagpole-dev/flagpole/pkg/generated/informers/externalversions"
	listers "github.com/flagpole-dev/flagpole/pkg/generated/listers/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/rolloutplan"
)

// DefaultGuardInterval is how often a current step's guard is read.
const DefaultGuardInterval = 15 * time.Second

// FieldManager names the controller's status writes.
const FieldManager = "rollout-plan-controller"

// Controller runs the rollout plans of every flag.
type Controller struct {
	client        clientset.Interface
	flags         listers.FlagLister
	recorder      flagevents.Recorder
	guards        rolloutplan.GuardReader
	guardInterval time.Duration
	clock         clock.PassiveClock
	queue         workqueue.TypedRateLimitingInterface[string]
	synced        []cache.InformerSynced
	informer      cache.SharedIndexInformer
	handle        cache.ResourceEventHandlerRegistration

	// reads remembers each guard's last reading, so that a flag written
	// often (its status) does not make Prometheus read more often than the
	// interval.
	mu    sync.Mutex
	reads map[string]reading
}

type reading struct {
	at    time.Time
	guard rolloutplan.Guard
}

// New makes the controller; Run runs it.
func New(client clientset.Interface, factory informers.SharedInformerFactory, recorder flagevents.Recorder, guards rolloutplan.GuardReader, guardInterval time.Duration, c clock.PassiveClock) (*Controller, error) {
	if guards == nil {
		guards = rolloutplan.NoPrometheus
	}
	if guardInterval <= 0 {
		guardInterval = DefaultGuardInterval
	}
	flags := factory.Flagpole().V1beta1().Flags()
	ctrl := &Controller{
		client:        client,
		flags:         flags.Lister(),
		recorder:      recorder,
		guards:        guards,
		guardInterval: guardInterval,
		clock:         c,
		informer:      flags.Informer(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "rollout-plan"}),
		reads: map[string]reading{},
	}
	enqueue := func(obj any) {
		if f, ok := obj.(*v1beta1.Flag); ok && (hasPlan(f) || len(f.Status.Rollouts) > 0) {
			ctrl.queue.Add(f.Namespace + "/" + f.Name)
		}
	}
	handle, err := ctrl.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	if err != nil {
		return nil, err
	}
	ctrl.handle = handle
	ctrl.synced = []cache.InformerSynced{ctrl.informer.HasSynced, handle.HasSynced}
	return ctrl, nil
}

func hasPlan(f *v1beta1.Flag) bool {
	for _, r := range f.Spec.Rules {
		if r.Rollout != nil && r.Rollout.Plan != nil {
			return true
		}
	}
	return false
}

// Run runs workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	defer func() {
		if err := c.informer.RemoveEventHandler(c.handle); err != nil {
			utilruntime.HandleError(err)
		}
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer c.queue.ShutDown()
	logger := klog.FromContext(ctx)
	logger.Info("Starting rollout plan controller")
	defer logger.Info("Shutting down rollout plan controller")
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.synced...) {
		return
	}
	for range workers {
		wg.Go(func() { wait.UntilWithContext(ctx, c.worker, time.Second) })
	}
	<-ctx.Done()
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
	wake, err := c.sync(ctx, key)
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Requeuing rollout plan", "flag", key, "err", err)
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	if wake >= 0 {
		// A little after the step's end, so that the clock has passed it.
		c.queue.AddAfter(key, wake+50*time.Millisecond)
	}
	return true
}

// sync moves every plan of the flag at key to where it is now, and returns
// when to look again (negative: only when the flag changes).
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return -1, nil
	}
	f, err := c.flags.Flags(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		c.forget(key)
		return -1, nil
	}
	if err != nil {
		return -1, err
	}
	now := c.clock.Now()
	var statuses []v1beta1.RolloutStatus
	var transitions []rolloutplan.Transition
	wake := time.Duration(-1)
	for i := range f.Spec.Rules {
		r := &f.Spec.Rules[i]
		if r.Rollout == nil || r.Rollout.Plan == nil {
			continue
		}
		plan := r.Rollout.Plan
		current := find(f.Status.Rollouts, r.Name)
		guard := rolloutplan.Guard{}
		if current != nil && current.Plan == rolloutplan.Hash(plan) && !rolloutplan.Terminal(current) && int(current.Step) < len(plan.Steps) {
			guard = c.readGuard(ctx, fmt.Sprintf("%s/%s/%d", key, r.Name, current.Step), &plan.Steps[current.Step], now)
		}
		next, tr := rolloutplan.Advance(r.Name, plan, current, guard, now)
		statuses = append(statuses, next)
		transitions = append(transitions, tr...)
		if w, ok := rolloutplan.Wake(plan, &next, c.guardInterval, now); ok && (wake < 0 || w < wake) {
			wake = w
		}
	}
	if apiequality.Semantic.DeepEqual(statuses, f.Status.Rollouts) || (len(statuses) == 0 && len(f.Status.Rollouts) == 0) {
		return wake, nil
	}
	updated := f.DeepCopy()
	updated.Status.Rollouts = statuses
	written, err := c.client.FlagpoleV1beta1().Flags(namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager})
	if apierrors.IsNotFound(err) {
		return -1, nil
	}
	if err != nil {
		// A conflict: someone wrote the flag meanwhile; look again at it.
		return -1, err
	}
	for _, t := range transitions {
		kind := corev1.EventTypeNormal
		if t.Warning {
			kind = corev1.EventTypeWarning
		}
		c.recorder.Eventf(written, nil, kind, "Rollout"+t.Reason, flagevents.ActionRollout, "rule %s: %s", t.Rule, t.Message)
		klog.FromContext(ctx).Info("Rollout plan moved", "flag", klog.KObj(f), "rule", t.Rule, "reason", t.Reason, "message", t.Message)
	}
	return wake, nil
}

// readGuard reads a step's guard at most once per interval.
func (c *Controller) readGuard(ctx context.Context, key string, step *v1beta1.RolloutStep, now time.Time) rolloutplan.Guard {
	if step.Guard == nil {
		return rolloutplan.Guard{}
	}
	c.mu.Lock()
	last, ok := c.reads[key]
	c.mu.Unlock()
	if ok && now.Sub(last.at) < c.guardInterval && now.Sub(last.at) >= 0 {
		return last.guard
	}
	g := rolloutplan.ReadGuard(ctx, c.guards, step)
	c.mu.Lock()
	c.reads[key] = reading{at: now, guard: g}
	c.mu.Unlock()
	return g
}

func (c *Controller) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.reads {
		if len(k) > len(key) && k[:len(key)+1] == key+"/" {
			delete(c.reads, k)
		}
	}
}

func find(statuses []v1beta1.RolloutStatus, rule string) *v1beta1.RolloutStatus {
	for i := range statuses {
		if statuses[i].Rule == rule {
			return &statuses[i]
		}
	}
	return nil
}
