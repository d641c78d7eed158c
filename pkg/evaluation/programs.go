package evaluation

import (
	"k8s.io/utils/lru"
)

// ProgramCacheSize bounds how many compiled expressions are kept beyond those
// the evaluator's flags hold: as many as 1,024 flags' worth (a typical
// targeting expression's program takes a few KiB; an expression is at most
// 4 KiB long), whoever writes them.
const ProgramCacheSize = 1024

// programs keeps compiled expressions, least recently used first out. Only
// successful compilations are kept: an error is cheap to find again and
// would let hostile writes crowd out the programs in use.
var programs = programCache{lru.New(ProgramCacheSize)}

type programCache struct {
	cache *lru.Cache
}

type programKey struct {
	expr string
	kind ExpressionKind
	// strict is true for a program compiled as a new expression: within
	// the cost limit, in the environment for new expressions.
	strict bool
}

// get returns a program for expr as CompileExpression(expr, kind, stored)
// would compile it. A strictly compiled program also serves a stored
// expression: what compiles in the environment for new expressions
// compiles to the same program in the one for stored ones, which only
// accepts more.
func (c programCache) get(expr string, kind ExpressionKind, stored bool) *Program {
	if p, ok := c.cache.Get(programKey{expr, kind, true}); ok {
		return p.(*Program)
	}
	if stored {
		if p, ok := c.cache.Get(programKey{expr, kind, false}); ok {
			return p.(*Program)
		}
	}
	return nil
}

func (c programCache) add(expr string, kind ExpressionKind, stored bool, p *Program) {
	c.cache.Add(programKey{expr, kind, !stored}, p)
}
