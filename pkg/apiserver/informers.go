package apiserver

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/cache"
)

// lastApplied is kubectl's client-side apply annotation: a second copy of
// the whole object as the client last wrote it.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// TrimForInformers drops from each object the Flagpole informers hold what
// none of their readers (evaluator, status controller, admission, OFREP
// change events) uses: managed fields and kubectl's last-applied copy. These
// are often half an object's size, and the informers hold one copy of every
// object beside the watch cache's. kube-controller-manager trims managed
// fields the same way. A status write from the controller carries no
// managed fields, which the field manager reads as "keep the live ones",
// and flags/status keeps the live annotations.
var TrimForInformers cache.TransformFunc = func(obj any) (any, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		// Not an object (nothing else reaches an informer): keep it as is.
		return obj, nil
	}
	m.SetManagedFields(nil)
	if a := m.GetAnnotations(); a[lastApplied] != "" {
		trimmed := make(map[string]string, len(a)-1)
		for k, v := range a {
			if k != lastApplied {
				trimmed[k] = v
			}
		}
		m.SetAnnotations(trimmed)
	}
	return obj, nil
}
