// Package table turns Flagpole objects into metav1.Table rows for kubectl's
// server-side printing: one place for the list walking and list metadata, each
// resource supplying only its columns and cells.
package table

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apiserver/pkg/registry/rest"
)

// Convertor is a rest.TableConvertor for one kind.
type Convertor[T runtime.Object] struct {
	// Columns follow the leading Name column; a priority above 0 shows only with -o wide.
	Columns []metav1.TableColumnDefinition
	// Cells returns the cells after the name, one per column.
	Cells func(obj T) []interface{}
}

var _ rest.TableConvertor = Convertor[runtime.Object]{}

var nameColumn = metav1.TableColumnDefinition{
	Name: "Name", Type: "string", Format: "name",
	Description: "Name must be unique within a namespace.",
}

// AgeColumn is the conventional last column.
var AgeColumn = metav1.TableColumnDefinition{
	Name: "Age", Type: "string",
	Description: "Time since the object was created.",
}

// Age formats a creation timestamp the way kubectl's AGE column does.
func Age(t metav1.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(time.Since(t.Time))
}

// ConvertToTable implements rest.TableConvertor.
func (c Convertor[T]) ConvertToTable(_ context.Context, object runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	table := &metav1.Table{}
	row := func(obj runtime.Object) error {
		typed, ok := obj.(T)
		if !ok {
			return fmt.Errorf("table: unexpected object %T", obj)
		}
		m, err := meta.Accessor(obj)
		if err != nil {
			return err
		}
		cells := append([]interface{}{m.GetName()}, c.Cells(typed)...)
		table.Rows = append(table.Rows, metav1.TableRow{Cells: cells, Object: runtime.RawExtension{Object: obj}})
		return nil
	}
	if meta.IsListType(object) {
		if err := meta.EachListItem(object, row); err != nil {
			return nil, err
		}
		if l, err := meta.ListAccessor(object); err == nil {
			table.ResourceVersion = l.GetResourceVersion()
			table.Continue = l.GetContinue()
			table.RemainingItemCount = l.GetRemainingItemCount()
		}
	} else {
		if err := row(object); err != nil {
			return nil, err
		}
		if m, err := meta.Accessor(object); err == nil {
			table.ResourceVersion = m.GetResourceVersion()
		}
	}
	if opt, ok := tableOptions.(*metav1.TableOptions); !ok || !opt.NoHeaders {
		table.ColumnDefinitions = append([]metav1.TableColumnDefinition{nameColumn}, c.Columns...)
	}
	return table, nil
}
