package evaluator

import (
	"sync"

	"k8s.io/client-go/tools/cache"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// index holds the flags and each flag's overrides by namespace and name,
// fed by the informers' events, so that the evaluation of one flag looks
// both up without building a key ("ns/name") or a namespace lister per
// call: the in-process provider's hot path allocates nothing for them.
// It trails the informer's own store by the time its handlers take.
type index struct {
	mu        sync.RWMutex
	flags     map[string]map[string]*v1beta1.Flag
	overrides map[string]map[string][]*v1beta1.FlagOverride

	// then are told of each change once the index has it (handlers of the
	// same informer run in no order among themselves).
	thenMu sync.RWMutex
	then   []indexed
}

type indexed struct{ flags, overrides cache.ResourceEventHandler }

func (x *index) each(f func(indexed)) {
	x.thenMu.RLock()
	defer x.thenMu.RUnlock()
	for _, h := range x.then {
		f(h)
	}
}

func newIndex() *index {
	return &index{flags: map[string]map[string]*v1beta1.Flag{}, overrides: map[string]map[string][]*v1beta1.FlagOverride{}}
}

func (x *index) flag(namespace, name string) *v1beta1.Flag {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.flags[namespace][name]
}

// flagOverrides is shared: callers must not modify it.
func (x *index) flagOverrides(namespace, flag string) []*v1beta1.FlagOverride {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.overrides[namespace][flag]
}

func (x *index) putFlag(f *v1beta1.Flag) {
	x.mu.Lock()
	defer x.mu.Unlock()
	ns := x.flags[f.Namespace]
	if ns == nil {
		ns = map[string]*v1beta1.Flag{}
		x.flags[f.Namespace] = ns
	}
	ns[f.Name] = f
}

func (x *index) deleteFlag(f *v1beta1.Flag) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if ns := x.flags[f.Namespace]; ns != nil {
		delete(ns, f.Name)
		if len(ns) == 0 {
			delete(x.flags, f.Namespace)
		}
	}
}

// putOverride replaces the override of the same name (old, if it named
// another flag, is removed from that one's list): each list is rebuilt, so
// a list handed out is never changed under its reader.
func (x *index) putOverride(old, o *v1beta1.FlagOverride) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old != nil {
		x.removeOverrideLocked(old)
	}
	x.removeOverrideLocked(o)
	ns := x.overrides[o.Namespace]
	if ns == nil {
		ns = map[string][]*v1beta1.FlagOverride{}
		x.overrides[o.Namespace] = ns
	}
	list := ns[o.Spec.Flag]
	next := make([]*v1beta1.FlagOverride, 0, len(list)+1)
	next = append(next, list...)
	ns[o.Spec.Flag] = append(next, o)
}

func (x *index) deleteOverride(o *v1beta1.FlagOverride) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeOverrideLocked(o)
}

func (x *index) removeOverrideLocked(o *v1beta1.FlagOverride) {
	ns := x.overrides[o.Namespace]
	list := ns[o.Spec.Flag]
	for i, have := range list {
		if have.Name == o.Name {
			next := make([]*v1beta1.FlagOverride, 0, len(list)-1)
			next = append(append(next, list[:i]...), list[i+1:]...)
			if len(next) == 0 {
				delete(ns, o.Spec.Flag)
			} else {
				ns[o.Spec.Flag] = next
			}
			break
		}
	}
	if ns != nil && len(ns) == 0 {
		delete(x.overrides, o.Namespace)
	}
}

// flagHandler and overrideHandler keep the index.
func (x *index) flagHandler() cache.ResourceEventHandlerDetailedFuncs {
	return cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			x.onFlag(obj, false)
			x.each(func(h indexed) { h.flags.OnAdd(obj, initial) })
		},
		UpdateFunc: func(old, obj any) {
			x.onFlag(obj, false)
			x.each(func(h indexed) { h.flags.OnUpdate(old, obj) })
		},
		DeleteFunc: func(obj any) {
			x.onFlag(obj, true)
			x.each(func(h indexed) { h.flags.OnDelete(obj) })
		},
	}
}

func (x *index) onFlag(obj any, deleted bool) {
	f, ok := Unwrap(obj).(*v1beta1.Flag)
	if !ok {
		return
	}
	if deleted {
		x.deleteFlag(f)
		return
	}
	x.putFlag(f)
}

func (x *index) overrideHandler() cache.ResourceEventHandlerDetailedFuncs {
	return cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if o, ok := obj.(*v1beta1.FlagOverride); ok {
				x.putOverride(nil, o)
			}
			x.each(func(h indexed) { h.overrides.OnAdd(obj, initial) })
		},
		UpdateFunc: func(oldObj, obj any) {
			old, _ := oldObj.(*v1beta1.FlagOverride)
			if o, ok := obj.(*v1beta1.FlagOverride); ok {
				x.putOverride(old, o)
			}
			x.each(func(h indexed) { h.overrides.OnUpdate(oldObj, obj) })
		},
		DeleteFunc: func(obj any) {
			if o, ok := Unwrap(obj).(*v1beta1.FlagOverride); ok {
				x.deleteOverride(o)
			}
			x.each(func(h indexed) { h.overrides.OnDelete(obj) })
		},
	}
}
