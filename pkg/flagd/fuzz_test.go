package flagd

import (
	"errors"
	"testing"
)

// FuzzImport: any document is imported or refused with Problems, never a
// panic; what imports exports, and the export imports as the same objects.
//
//	go test -run '^$' -fuzz FuzzImport ./pkg/flagd/
func FuzzImport(f *testing.F) {
	for _, name := range []string{"testbed.flagd.json", "operators.flagd.json"} {
		f.Add(readFile(f, name))
	}
	for _, t := range []string{
		`{"if": [{"some_unknown_op": [1]}, "a", "b"]}`,
		`{"fractional": [{"var": "x"}, ["a", 1], ["b", 2]]}`,
		`{"or": [{"var": "c"}, {"and": [{"var": "d"}, "a"]}]}`,
		`{"!": {"in": [{"var": "x"}, [[1, 2], "a"]]}}`,
		`{"sem_ver": [{"cat": [{"var": "v"}, ".0"]}, "^", "1"]}`,
	} {
		f.Add([]byte(flagDoc(t)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Import([]Source{{Name: "fuzz.json", Data: data}}, Options{Namespace: "ns"})
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("an error that is no Problems: %v", err)
			}
			return
		}
		doc, err := Export(res.Flags, res.Segments, ExportOptions{})
		if err != nil {
			t.Fatalf("imported but does not export: %v", err)
		}
		again, err := Import([]Source{{Name: "exported", Data: doc}}, Options{Namespace: "ns"})
		if err != nil {
			t.Fatalf("the export does not import: %v\n%s", err, doc)
		}
		if !sameObjects(t, res, again) {
			t.Fatalf("the round trip changed the objects:\n%s", doc)
		}
	})
}
