// Package fairness is Flagpole's API Priority and Fairness configuration:
// evaluations (flags/evaluate, evaluations, and OFREP, which is authorized
// as those) get a priority level of their own, queued fairly by user, so
// that one application evaluating as hard as it can gets its share and no
// more, and never the seats writers and readers of the API need.
//
// In a cluster the configuration is the cluster's (FlowSchema and
// PriorityLevelConfiguration objects, read through the kube client; the
// install adds Flagpole's, artifacts/deploy/base/flowcontrol.yaml). A
// standalone server has no cluster to read them from, so Standalone serves
// upstream's mandatory configuration, its global default and Flagpole's
// from memory to the same upstream APF implementation.
package fairness

import (
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/apis/flowcontrol/bootstrap"
	"k8s.io/apiserver/pkg/authentication/user"
	utilflowcontrol "k8s.io/apiserver/pkg/util/flowcontrol"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
)

// EvaluationName names the FlowSchema and the PriorityLevelConfiguration of
// evaluations.
const EvaluationName = "flagpole-evaluation"

// EvaluationPriorityLevel is the priority level of evaluations: as many
// nominal shares as upstream's workload-low (the level ServiceAccounts'
// requests land in), half of them lendable to the API's other levels when
// evaluations are quiet, and queues chosen by user, so that one
// application's flood waits in its own queues. A flow's hand of 8 queues
// of 128 holds 1,024 requests: an application of a thousand pods (one
// ServiceAccount, one flow) re-fetching at once after a change event is
// queued, not shed; its answers are shared (pkg/ofrep) and come fast.
func EvaluationPriorityLevel() *flowcontrolv1.PriorityLevelConfiguration {
	return &flowcontrolv1.PriorityLevelConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: flowcontrolv1.SchemeGroupVersion.String(), Kind: "PriorityLevelConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: EvaluationName},
		Spec: flowcontrolv1.PriorityLevelConfigurationSpec{
			Type: flowcontrolv1.PriorityLevelEnablementLimited,
			Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{
				NominalConcurrencyShares: ptr.To(int32(100)),
				LendablePercent:          ptr.To(int32(50)),
				LimitResponse: flowcontrolv1.LimitResponse{
					Type: flowcontrolv1.LimitResponseTypeQueue,
					Queuing: &flowcontrolv1.QueuingConfiguration{
						Queues:           128,
						HandSize:         8,
						QueueLengthLimit: 128,
					},
				},
			},
		},
	}
}

// EvaluationFlowSchema sends evaluations of every authenticated user to
// EvaluationPriorityLevel, distinguished by user. Its precedence (1000) puts
// it ahead of upstream's service-accounts (9000) and global-default (9900)
// schemas, and behind the exempt and system ones.
func EvaluationFlowSchema() *flowcontrolv1.FlowSchema {
	return &flowcontrolv1.FlowSchema{
		TypeMeta:   metav1.TypeMeta{APIVersion: flowcontrolv1.SchemeGroupVersion.String(), Kind: "FlowSchema"},
		ObjectMeta: metav1.ObjectMeta{Name: EvaluationName},
		Spec: flowcontrolv1.FlowSchemaSpec{
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: EvaluationName},
			MatchingPrecedence:         1000,
			DistinguisherMethod:        &flowcontrolv1.FlowDistinguisherMethod{Type: flowcontrolv1.FlowDistinguisherMethodByUserType},
			Rules: []flowcontrolv1.PolicyRulesWithSubjects{{
				Subjects: []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindGroup, Group: &flowcontrolv1.GroupSubject{Name: user.AllAuthenticated}}},
				ResourceRules: []flowcontrolv1.ResourcePolicyRule{{
					Verbs:      []string{"create"},
					APIGroups:  []string{flagpole.GroupName},
					Resources:  []string{"flags/evaluate", "evaluations"},
					Namespaces: []string{flowcontrolv1.NamespaceEvery},
				}},
			}},
		},
	}
}

// standaloneObjects is the whole configuration of a standalone server:
// upstream's mandatory levels and schemas (exempt for system:masters, the
// admin; catch-all), its probes and global-default schemas, and Flagpole's.
func standaloneObjects() []runtime.Object {
	var objs []runtime.Object
	for _, pl := range append(append([]*flowcontrolv1.PriorityLevelConfiguration{}, bootstrap.MandatoryPriorityLevelConfigurations...),
		bootstrap.SuggestedPriorityLevelConfigurationGlobalDefault, EvaluationPriorityLevel()) {
		objs = append(objs, pl.DeepCopy())
	}
	for _, fs := range append(append([]*flowcontrolv1.FlowSchema{}, bootstrap.MandatoryFlowSchemas...),
		bootstrap.SuggestedFlowSchemaProbes, bootstrap.SuggestedFlowSchemaGlobalDefault, EvaluationFlowSchema()) {
		objs = append(objs, fs.DeepCopy())
	}
	return objs
}

// Standalone returns upstream's priority and fairness, for a server with
// serverConcurrencyLimit seats, configured from memory, and the informer
// factory it reads that configuration through; the server must start the
// factory (genericapiserver.Config.SharedInformerFactory does).
func Standalone(serverConcurrencyLimit int) (utilflowcontrol.Interface, kubeinformers.SharedInformerFactory) {
	client := fake.NewClientset(standaloneObjects()...)
	factory := kubeinformers.NewSharedInformerFactory(client, 0)
	return utilflowcontrol.New(factory, client.FlowcontrolV1(), serverConcurrencyLimit), factory
}
