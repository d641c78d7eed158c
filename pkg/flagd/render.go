package flagd

import (
	"fmt"
	"io"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/printers"
)

// Objects is the result as API objects, Segments first (the Flags name
// them), each with its apiVersion and kind.
func (r *Result) Objects() []runtime.Object {
	var objs []runtime.Object
	for i := range r.Segments {
		objs = append(objs, &r.Segments[i])
	}
	for i := range r.Flags {
		objs = append(objs, &r.Flags[i])
	}
	return objs
}

// Render prints objects as kubectl's -o yaml and -o json print them, with
// kubectl's printers: one object alone, several as a v1 List, which
// `kubectl apply -f` reads back.
func Render(w io.Writer, objs []runtime.Object, format string) error {
	var p printers.ResourcePrinter
	switch format {
	case "yaml":
		p = &printers.YAMLPrinter{}
	case "json":
		p = &printers.JSONPrinter{}
	default:
		return fmt.Errorf("unknown output format %q: yaml or json", format)
	}
	if len(objs) == 1 {
		return p.PrintObj(objs[0], w)
	}
	list := &metav1.List{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}, Items: []runtime.RawExtension{}}
	for _, o := range objs {
		list.Items = append(list.Items, runtime.RawExtension{Object: o})
	}
	return p.PrintObj(list, w)
}
