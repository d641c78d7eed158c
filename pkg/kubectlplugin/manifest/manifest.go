// Package manifest is `kubectl flagpole manifest`: the flag manifest the
// OpenFeature CLI reads (`openfeature generate go|react|...` makes typed flag
// accessors from it), written from a namespace's flags, so that developers
// get compile-time flag keys from the cluster.
//
// The format is the OpenFeature CLI's schema v0
// (https://raw.githubusercontent.com/open-feature/cli/refs/heads/main/schema/v0/flag-manifest.json):
// an object "flags" of flag key → {flagType, defaultValue, description},
// flagType one of boolean, string, integer, float, object.
package manifest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/exit"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/session"
)

// SchemaURL is the OpenFeature CLI's manifest schema, which `openfeature
// init` writes as $schema.
const SchemaURL = "https://raw.githubusercontent.com/open-feature/cli/refs/heads/main/schema/v0/flag-manifest.json"

// The manifest's flag types.
const (
	TypeBoolean = "boolean"
	TypeString  = "string"
	TypeInteger = "integer"
	TypeFloat   = "float"
	TypeObject  = "object"
)

// Manifest is the OpenFeature CLI's flag manifest.
type Manifest struct {
	Schema string          `json:"$schema"`
	Flags  map[string]Flag `json:"flags"`
}

// Flag is one flag of a manifest.
type Flag struct {
	FlagType     string          `json:"flagType"`
	DefaultValue json.RawMessage `json:"defaultValue"`
	Description  string          `json:"description,omitempty"`
}

// Options are the options of manifest.
type Options struct {
	names []string
	s     *session.Session
	session.Scope
}

// NewCmdManifest is `manifest [FLAG...]`.
func NewCmdManifest(s *session.Session) *cobra.Command {
	o := &Options{s: s}
	return &cobra.Command{
		Use:   "manifest [FLAG...]",
		Short: "Write the OpenFeature CLI flag manifest of the namespace's flags (or those named)",
		Long: `Write the flag manifest the OpenFeature CLI reads (schema v0: flagType,
defaultValue, description per flag key), so that 'openfeature generate'
makes typed accessors for the flags of the cluster. A Number flag whose
variants are all whole numbers is an integer, otherwise a float. The
defaultValue is the value of the flag's default variant; a flag without
one gets its type's zero value (false, "", 0, {}) and a note.`,
		Example: `  kubectl flagpole manifest -n shop > flags.json && openfeature generate go`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.names = args
			if err := o.Complete(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
}

// Complete fills in the namespace and client.
func (o *Options) Complete() error {
	var err error
	o.Scope, err = o.s.Scope()
	return err
}

// Run reads the flags and writes the manifest.
func (o *Options) Run(ctx context.Context) error {
	flags := o.Client.FlagpoleV1beta1().Flags(o.Namespace)
	var items []v1beta1.Flag
	if len(o.names) == 0 {
		list, err := flags.List(ctx, metav1.ListOptions{})
		if err != nil {
			return exit.FromAPI(err, exit.Target{Verb: "list", Resource: "flags", Namespace: o.Namespace})
		}
		items = list.Items
	}
	for _, name := range o.names {
		f, err := flags.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return exit.FromAPI(err, exit.Target{Verb: "get", Resource: "flags", Namespace: o.Namespace, Name: name})
		}
		items = append(items, *f)
	}
	if len(items) == 0 {
		return exit.New(exit.NotFound, "", "no flags in namespace %s: a manifest needs at least one", o.Namespace)
	}
	m, notes := Build(items)
	for _, n := range notes {
		fmt.Fprintf(o.s.ErrOut, "note: %s\n", n)
	}
	return Write(o.s.Out, m)
}

// Build makes the manifest of flags, with notes on what it had to choose.
func Build(flags []v1beta1.Flag) (Manifest, []string) {
	m := Manifest{Schema: SchemaURL, Flags: map[string]Flag{}}
	var notes []string
	for i := range flags {
		f := &flags[i]
		mf := Flag{FlagType: flagType(f), Description: f.Spec.Description}
		for _, v := range f.Spec.Variants {
			if v.Name == f.Spec.DefaultVariant {
				mf.DefaultValue = json.RawMessage(v.Value.Raw)
			}
		}
		if mf.DefaultValue == nil {
			mf.DefaultValue = zero[mf.FlagType]
			notes = append(notes, fmt.Sprintf("flag %s has no default variant: its defaultValue is %s, the zero %s; set the code default you want in the manifest", f.Name, mf.DefaultValue, mf.FlagType))
		}
		m.Flags[f.Name] = mf
	}
	return m, notes
}

var zero = map[string]json.RawMessage{
	TypeBoolean: json.RawMessage("false"),
	TypeString:  json.RawMessage(`""`),
	TypeInteger: json.RawMessage("0"),
	TypeFloat:   json.RawMessage("0"),
	TypeObject:  json.RawMessage("{}"),
}

// flagType maps a Flag's type to the manifest's: a Number is an integer
// when every variant is a whole number a 64-bit integer holds (generated
// accessors then return int), else a float.
func flagType(f *v1beta1.Flag) string {
	switch f.Spec.Type {
	case v1beta1.FlagTypeBoolean:
		return TypeBoolean
	case v1beta1.FlagTypeString:
		return TypeString
	case v1beta1.FlagTypeNumber:
		for _, v := range f.Spec.Variants {
			var n float64
			if err := json.Unmarshal(v.Value.Raw, &n); err != nil || n != math.Trunc(n) || math.Abs(n) > 1<<53 || strings.ContainsAny(string(v.Value.Raw), ".eE") {
				return TypeFloat
			}
		}
		return TypeInteger
	}
	return TypeObject
}

// Write prints the manifest as indented JSON, flag keys sorted.
func Write(w io.Writer, m Manifest) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}
