package evaluation

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// viaJSON is what OFREP makes of the same context: encoding/json, then
// ParseContext.
func viaJSON(values map[string]any) (*Context, error) {
	raw, err := json.Marshal(values)
	if err != nil {
		return nil, err
	}
	return ParseContext(raw)
}

// TestContextFromValuesIsOFREPs: every context converted directly is what
// its JSON encoding parses to; what it does not convert (ok false) is left
// to that path.
func TestContextFromValuesIsOFREPs(t *testing.T) {
	type point struct{ X int }
	cases := []map[string]any{
		{},
		{"targetingKey": "user-1", "plan": "vip", "seats": 12, "ratio": 0.25, "beta": true, "none": nil},
		{"i8": int8(-8), "i16": int16(16), "i32": int32(-32), "i64": int64(math.MaxInt64), "u": uint(7), "u8": uint8(8), "u16": uint16(16), "u32": uint32(32),
			"u64": uint64(math.MaxUint64), "whole": 3.0, "negzero": math.Copysign(0, -1), "big": float64(1 << 53), "tiny": 1e-300},
		{"nested": map[string]any{"a": []any{1, "x", 2.5, map[string]any{"deep": uint16(3)}}, "b": map[string]any{}}},
		{"list": []any{}, "strings": []any{"a", "b"}},
		{"targetingKey": ""},
		// Left to the JSON path:
		{"when": time.Date(2026, 12, 6, 1, 2, 3, 4, time.UTC)},
		{"f32": float32(0.1)},
		{"huge": 1e21},
		{"p": point{1}},
		{"typed": []string{"a"}},
		{"bad": "\xff"},
		{"long": strings.Repeat("x", MaxContextBytes)},
		{"targetingKey": 7},
		{"targetingKey": strings.Repeat("k", 300)},
	}
	// Random flat and nested contexts of the kinds applications send.
	r := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		cases = append(cases, randomObject(r, 0))
	}
	direct := 0
	// One Context reused for every case, as the provider's pool reuses
	// them: a reused attributes map must not carry anything over.
	var reused Context
	for _, values := range cases {
		want, wantErr := viaJSON(values)
		got, ok, err := ContextFromValues(values)
		okAgain, errAgain := reused.SetValues(values)
		if ok != okAgain || (err == nil) != (errAgain == nil) {
			t.Fatalf("%v: SetValues %v %v, ContextFromValues %v %v", values, okAgain, errAgain, ok, err)
		}
		if !ok {
			continue
		}
		direct++
		if (err != nil) != (wantErr != nil) {
			t.Errorf("%v: error %v, OFREP's %v", values, err, wantErr)
			continue
		}
		if err != nil {
			continue
		}
		for _, c := range []*Context{got, &reused} {
			if !reflect.DeepEqual(c.attributes(), want.Attributes) || c.TargetingKey != want.TargetingKey || c.HasTargetingKey != want.HasTargetingKey {
				t.Errorf("%#v:\n got %#v\nwant %#v", values, c, want)
			}
		}
		reused.Release()
		if len(values) > 0 && (reused.Attributes != nil || reused.pending != nil || len(reused.owned) > 0) {
			t.Fatal("Release kept the attributes")
		}
	}
	if direct < len(cases)/2 {
		t.Errorf("only %d of %d contexts converted directly: the comparison proves little", direct, len(cases))
	}
	// The common context is converted directly, not left to JSON.
	for _, values := range cases[:6] {
		if _, ok, _ := ContextFromValues(values); !ok {
			t.Errorf("%v: not converted directly", values)
		}
	}
}

func randomObject(r *rand.Rand, depth int) map[string]any {
	m := map[string]any{}
	for i := range r.IntN(6) {
		m[string(rune('a'+i))] = randomValue(r, depth+1)
	}
	return m
}

func randomValue(r *rand.Rand, depth int) any {
	n := 9
	if depth > 3 {
		n = 7
	}
	switch r.IntN(n) {
	case 0:
		return r.IntN(2) == 0
	case 1:
		return r.Int64() - r.Int64()
	case 2:
		return r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20))
	case 3:
		return float64(r.IntN(1000))
	case 4:
		return "s" + string(rune(r.IntN(0x10000)))
	case 5:
		return r.Uint64()
	case 6:
		return nil
	case 7:
		return randomObject(r, depth)
	default:
		return []any{randomValue(r, depth+1), randomValue(r, depth+1)}
	}
}

// The caller's map is read, never written.
func TestContextFromValuesLeavesTheMap(t *testing.T) {
	values := map[string]any{"seats": 12, "nested": map[string]any{"n": 1}, "list": []any{2}}
	if _, ok, err := ContextFromValues(values); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, isInt := values["seats"].(int); !isInt {
		t.Error("seats changed")
	}
	if _, isInt := values["nested"].(map[string]any)["n"].(int); !isInt {
		t.Error("nested.n changed")
	}
	if _, isInt := values["list"].([]any)[0].(int); !isInt {
		t.Error("list[0] changed")
	}
}

func BenchmarkContextFromValues(b *testing.B) {
	values := map[string]any{"targetingKey": "user-1", "plan": "vip", "seats": 12}
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok, err := ContextFromValues(values); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := viaJSON(values); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Hostile in-process contexts: a map that contains itself, and one too
// large or too deep to convert, are left to the JSON path (which refuses a
// cycle and applies the caps), never walked without end.
func TestContextFromValuesHostile(t *testing.T) {
	cyclic := map[string]any{"targetingKey": "u"}
	cyclic["self"] = cyclic
	if _, ok, _ := ContextFromValues(cyclic); ok {
		t.Error("a cyclic context converted directly")
	}
	if _, err := json.Marshal(cyclic); err == nil {
		t.Error("encoding/json accepted a cycle: the JSON path would not refuse it")
	}
	deep := map[string]any{}
	for i := 0; i < 40; i++ {
		deep = map[string]any{"d": deep}
	}
	if _, ok, _ := ContextFromValues(deep); ok {
		t.Error("a context 40 deep converted directly")
	}
	big := map[string]any{"list": make([]any, 100_000)}
	if _, ok, _ := ContextFromValues(big); ok {
		t.Error("a 100,000-element list converted directly")
	}
}
