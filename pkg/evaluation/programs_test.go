package evaluation

import (
	"strings"
	"testing"
)

func TestProgramsAreShared(t *testing.T) {
	const expr = `has(context.plan) && context.plan == "programs-test"`
	strict, err := CompileExpression(expr, Predicate, false)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := CompileExpression(expr, Predicate, false); err != nil || again != strict {
		t.Errorf("the same expression compiled twice (%p, %p, %v)", strict, again, err)
	}
	if stored, err := CompileExpression(expr, Predicate, true); err != nil || stored != strict {
		t.Errorf("a stored expression compiled anew although it compiled strictly (%p, %p, %v)", strict, stored, err)
	}
	// The kind is part of what was checked.
	if _, err := CompileExpression(expr, BucketKey, false); err == nil {
		t.Error("a boolean expression served as a bucket key")
	}
}

// An expression over the cost limit compiles only as a stored expression;
// having compiled it so must not let it pass as a new one.
func TestStoredProgramIsNotStrict(t *testing.T) {
	const expr = `context.xs.all(a, context.xs.all(b, context.xs.all(c, a == b && b == c && c == "programs-test")))`
	if _, err := CompileExpression(expr, Predicate, true); err != nil {
		t.Fatalf("stored: %v", err)
	}
	for range 2 {
		if _, err := CompileExpression(expr, Predicate, false); err == nil || !strings.Contains(err.Error(), "exceeds the limit") {
			t.Fatalf("new expression after a stored compile: %v, want the cost error", err)
		}
	}
}

// Compiling checks; planning the evaluable program waits for the first
// evaluation, so flags nobody evaluates hold no planned program.
func TestProgramPlannedOnFirstEvaluation(t *testing.T) {
	p, err := CompileExpression(`context.plan == "planned-on-first-use"`, Predicate, false)
	if err != nil {
		t.Fatal(err)
	}
	if p.prog != nil {
		t.Fatal("compiling planned the program")
	}
	first, err := p.plan()
	if err != nil || first == nil {
		t.Fatalf("plan: %v", err)
	}
	if again, _ := p.plan(); again != first {
		t.Error("planned twice")
	}
}
