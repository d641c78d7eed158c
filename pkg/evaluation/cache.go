package evaluation

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// Cache keeps compiled flags, keyed by the flag's UID and recompiled when the
// flag's generation or the UID or generation of a Segment it names changes.
// It is safe for concurrent use.
type Cache struct {
	mu      sync.RWMutex
	entries map[types.UID]*Compiled
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{entries: map[types.UID]*Compiled{}}
}

// Get returns flag compiled with its current segments.
func (c *Cache) Get(flag *v1beta1.Flag, segments SegmentLookup) *Compiled {
	c.mu.RLock()
	compiled := c.entries[flag.UID]
	c.mu.RUnlock()
	if compiled != nil && compiled.upToDate(flag, segments) {
		return compiled
	}
	compiled = CompileFlag(flag, segments)
	c.mu.Lock()
	c.entries[flag.UID] = compiled
	c.mu.Unlock()
	return compiled
}

// Forget drops a deleted flag.
func (c *Cache) Forget(uid types.UID) {
	c.mu.Lock()
	delete(c.entries, uid)
	c.mu.Unlock()
}

// Len is the number of cached flags.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
