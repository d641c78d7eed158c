// Package references is the FlagpoleReferences admission plugin. References
// between Flagpole objects are eventually consistent, as in Kubernetes: GitOps
// applies files in any order, so a Flag may name a Segment that does not exist
// yet. The plugin never blocks such a write; it warns, and the flag's Ready
// condition says what is missing. It does reject an override whose variant
// the (existing) flag does not have.
package references

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/warning"

	"github.com/flagpole-dev/flagpole/pkg/admission/flagpoleinitializer"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	informers "github.com/flagpole-dev/flagpole/pkg/generated/informers/externalversions"
	listers "github.com/flagpole-dev/flagpole/pkg/generated/listers/flagpole/v1beta1"
)

// PluginName is the name to enable the plugin by.
const PluginName = "FlagpoleReferences"

// Register registers the plugin.
func Register(plugins *admission.Plugins) {
	plugins.Register(PluginName, func(io.Reader) (admission.Interface, error) {
		return New(), nil
	})
}

// Plugin checks references between flags, segments and overrides.
type Plugin struct {
	*admission.Handler
	flags    listers.FlagLister
	segments listers.SegmentLister
}

var (
	_ admission.ValidationInterface              = &Plugin{}
	_ flagpoleinitializer.WantsFlagpoleInformers = &Plugin{}
)

// New returns the plugin; it needs SetFlagpoleInformers before use.
func New() *Plugin {
	return &Plugin{Handler: admission.NewHandler(admission.Create, admission.Update, admission.Delete)}
}

// SetFlagpoleInformers implements WantsFlagpoleInformers.
func (p *Plugin) SetFlagpoleInformers(f informers.SharedInformerFactory) {
	flags := f.Flagpole().V1beta1().Flags()
	segments := f.Flagpole().V1beta1().Segments()
	p.flags, p.segments = flags.Lister(), segments.Lister()
	p.SetReadyFunc(func() bool { return flags.Informer().HasSynced() && segments.Informer().HasSynced() })
}

// ValidateInitialization implements admission.InitializationValidator.
func (p *Plugin) ValidateInitialization() error {
	if p.flags == nil || p.segments == nil {
		return fmt.Errorf("%s needs the Flagpole informers", PluginName)
	}
	return nil
}

// Validate warns about unresolved references and rejects an override of a
// variant the flag does not have. Subresources (status, evaluate) are skipped:
// evaluation must stay cheap, and status is the controller's.
func (p *Plugin) Validate(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if a.GetResource().Group != flagpole.GroupName || a.GetSubresource() != "" {
		return nil
	}
	resource := a.GetResource().Resource
	switch {
	case resource == "flags" && a.GetOperation() != admission.Delete:
	case resource == "flagoverrides" && a.GetOperation() != admission.Delete:
	case resource == "segments" && a.GetOperation() == admission.Delete:
	default:
		return nil
	}
	if !p.WaitForReady() {
		return admission.NewForbidden(a, fmt.Errorf("%s: not yet ready to check references", PluginName))
	}
	switch resource {
	case "flags":
		if f, ok := a.GetObject().(*flagpole.Flag); ok {
			p.warnMissingSegments(ctx, f)
		}
	case "flagoverrides":
		if o, ok := a.GetObject().(*flagpole.FlagOverride); ok {
			return p.checkOverride(ctx, a, o)
		}
	case "segments":
		p.warnSegmentInUse(ctx, a.GetNamespace(), a.GetName())
	}
	return nil
}

func (p *Plugin) warnMissingSegments(ctx context.Context, f *flagpole.Flag) {
	for i, r := range f.Spec.Rules {
		for j, name := range r.Segments {
			if _, err := p.segments.Segments(f.Namespace).Get(name); apierrors.IsNotFound(err) {
				warning.AddWarning(ctx, "", fmt.Sprintf("spec.rules[%d].segments[%d]: Segment %q does not exist in namespace %q (yet); rule %q matches no one until it does",
					i, j, name, f.Namespace, r.Name))
			}
		}
	}
}

func (p *Plugin) checkOverride(ctx context.Context, a admission.Attributes, o *flagpole.FlagOverride) error {
	f, err := p.flags.Flags(o.Namespace).Get(o.Spec.Flag)
	if apierrors.IsNotFound(err) {
		warning.AddWarning(ctx, "", fmt.Sprintf("spec.flag: Flag %q does not exist in namespace %q (yet); the override has no effect until it does", o.Spec.Flag, o.Namespace))
		return nil
	}
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	var names []string
	for _, v := range f.Spec.Variants {
		if string(v.Name) == o.Spec.Variant {
			return nil
		}
		names = append(names, string(v.Name))
	}
	sort.Strings(names)
	return apierrors.NewInvalid(a.GetKind().GroupKind(), o.Name, field.ErrorList{
		field.Invalid(field.NewPath("spec", "variant"), o.Spec.Variant, fmt.Sprintf("flag %q has no such variant; it has %s", o.Spec.Flag, strings.Join(names, ", "))),
	})
}

func (p *Plugin) warnSegmentInUse(ctx context.Context, namespace, name string) {
	flags, err := p.flags.Flags(namespace).List(labels.Everything())
	if err != nil {
		return
	}
	var users []string
	for _, f := range flags {
		for _, r := range f.Spec.Rules {
			if slices.Contains(r.Segments, name) {
				users = append(users, f.Name)
				break
			}
		}
	}
	if len(users) > 0 {
		sort.Strings(users)
		warning.AddWarning(ctx, "", fmt.Sprintf("Segment %q is used by flag(s) %s; their rules naming it match no one once it is gone", name, strings.Join(users, ", ")))
	}
}
