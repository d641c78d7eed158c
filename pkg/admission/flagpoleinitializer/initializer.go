// Package flagpoleinitializer hands Flagpole's informers to the admission
// plugins that want them, as sample-apiserver's initializer does.
package flagpoleinitializer

import (
	"k8s.io/apiserver/pkg/admission"

	informers "github.com/flagpole-dev/flagpole/pkg/generated/informers/externalversions"
)

// WantsFlagpoleInformers is implemented by plugins that read Flagpole objects.
type WantsFlagpoleInformers interface {
	SetFlagpoleInformers(informers.SharedInformerFactory)
	admission.InitializationValidator
}

type initializer struct {
	informers informers.SharedInformerFactory
}

var _ admission.PluginInitializer = initializer{}

// New returns an initializer that gives plugins f.
func New(f informers.SharedInformerFactory) admission.PluginInitializer {
	return initializer{informers: f}
}

// Initialize implements admission.PluginInitializer.
func (i initializer) Initialize(plugin admission.Interface) {
	if wants, ok := plugin.(WantsFlagpoleInformers); ok {
		wants.SetFlagpoleInformers(i.informers)
	}
}
