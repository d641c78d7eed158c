package cmd

import (
	"k8s.io/apiserver/pkg/admission"
	admissionmetrics "k8s.io/apiserver/pkg/admission/metrics"
	genericapiserver "k8s.io/apiserver/pkg/server"

	"github.com/flagpole-dev/flagpole/pkg/admission/flagpoleinitializer"
	"github.com/flagpole-dev/flagpole/pkg/admission/plugin/references"
	informers "github.com/flagpole-dev/flagpole/pkg/generated/informers/externalversions"
)

// flagpoleAdmissionPlugins are Flagpole's own admission plugins, in order.
// In delegated mode they run after upstream's, through RecommendedOptions'
// admission (NewOptions adds them to its plugin order; Config hands them the
// informers through flagpoleinitializer).
var flagpoleAdmissionPlugins = []string{references.PluginName}

// applyStandaloneAdmission builds the admission chain for standalone mode,
// where upstream's AdmissionOptions cannot run (they need a kube client):
// only Flagpole's own plugins, reading factory.
func applyStandaloneAdmission(c *genericapiserver.RecommendedConfig, factory informers.SharedInformerFactory) error {
	plugins := admission.NewPlugins()
	references.Register(plugins)
	provider, err := admission.ReadAdmissionConfiguration(flagpoleAdmissionPlugins, "", nil)
	if err != nil {
		return err
	}
	chain, err := plugins.NewFromPlugins(flagpoleAdmissionPlugins, provider, flagpoleinitializer.New(factory),
		admission.Decorators{admission.DecoratorFunc(admissionmetrics.WithControllerMetrics)})
	if err != nil {
		return err
	}
	c.AdmissionControl = chain
	return nil
}
