// Package evaluations serves flag evaluation through the API: the
// flags/evaluate subresource and the create-only evaluations resource, both
// answered by the evaluator (pkg/evaluator) from watch-fed memory, never from
// an etcd read per request.
package evaluations

import (
	"context"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
	"github.com/flagpole-dev/flagpole/pkg/evaluator"
)

// MaxBulkFlags caps spec.flags of one bulk evaluation.
const MaxBulkFlags = 1000

// parseContext validates a request's context (see evaluation.ParseContext):
// a JSON object of at most MaxContextBytes, nested at most MaxJSONDepth deep,
// with numbers a float64 holds, whose targetingKey, if any, is a string of at
// most MaxTargetingKeyLength. A violation is a 422 with the field path.
func parseContext(raw []byte, fldPath *field.Path) (*evaluation.Context, field.ErrorList) {
	c, err := evaluation.ParseContext(raw)
	if err != nil {
		// ParseContext fails only for contexts the client got wrong.
		return nil, field.ErrorList{field.Invalid(fldPath, "<context>", err.Error())}
	}
	return c, nil
}

func validateExpectedType(t flagpole.FlagType, fldPath *field.Path) field.ErrorList {
	if t == "" || slices.Contains(flagpole.FlagTypes, t) {
		return nil
	}
	return field.ErrorList{field.NotSupported(fldPath, t, flagpole.FlagTypes)}
}

func toInternal(in v1beta1.FlagEvaluation) flagpole.FlagEvaluation {
	var out flagpole.FlagEvaluation
	// Generated, and a plain memory copy: the two types have the same layout.
	_ = v1beta1.Convert_v1beta1_FlagEvaluation_To_flagpole_FlagEvaluation(&in, &out, nil)
	return out
}

// EvaluateREST serves flags/evaluate: POST an EvaluationRequest, get an
// EvaluationResult. Authorized as `create` on `flags/evaluate`, separately
// from writing flags.
type EvaluateREST struct {
	evaluator *evaluator.Evaluator
}

var _ rest.NamedCreater = &EvaluateREST{}

// NewEvaluateREST returns the flags/evaluate storage.
func NewEvaluateREST(e *evaluator.Evaluator) *EvaluateREST { return &EvaluateREST{evaluator: e} }

func (r *EvaluateREST) New() runtime.Object { return &flagpole.EvaluationRequest{} }

func (r *EvaluateREST) Destroy() {}

// Create evaluates the flag named by the path. A missing flag is 404.
func (r *EvaluateREST) Create(ctx context.Context, name string, obj runtime.Object, createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	req, ok := obj.(*flagpole.EvaluationRequest)
	if !ok {
		return nil, apierrors.NewBadRequest("not an EvaluationRequest")
	}
	c, errs := parseContext(req.Context.Raw, field.NewPath("context"))
	errs = append(errs, validateExpectedType(req.Type, field.NewPath("type"))...)
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(flagpole.Kind("EvaluationRequest"), name, errs)
	}
	if createValidation != nil {
		if err := createValidation(ctx, obj); err != nil {
			return nil, err
		}
	}
	res, found := r.evaluator.Evaluate(ctx, genericapirequest.NamespaceValue(ctx), name, c, evaluator.Options{ExpectedType: v1beta1.FlagType(req.Type), Explain: req.Explain})
	if !found {
		return nil, apierrors.NewNotFound(flagpole.Resource("flags"), name)
	}
	return &flagpole.EvaluationResult{FlagEvaluation: toInternal(res)}, nil
}

// BulkREST serves evaluations: create-only and never stored, like
// SelfSubjectAccessReview. Creating one needs `create` on `evaluations` in
// the namespace: a namespace-wide permission, distinct from flags/evaluate.
type BulkREST struct {
	evaluator *evaluator.Evaluator
}

var (
	_ rest.Creater              = &BulkREST{}
	_ rest.Scoper               = &BulkREST{}
	_ rest.SingularNameProvider = &BulkREST{}
)

// NewBulkREST returns the evaluations storage.
func NewBulkREST(e *evaluator.Evaluator) *BulkREST { return &BulkREST{evaluator: e} }

func (r *BulkREST) New() runtime.Object { return &flagpole.Evaluation{} }

func (r *BulkREST) Destroy() {}

func (r *BulkREST) NamespaceScoped() bool { return true }

func (r *BulkREST) GetSingularName() string { return "evaluation" }

// Create evaluates the selected flags and answers with the results in status.
func (r *BulkREST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	ev, ok := obj.(*flagpole.Evaluation)
	if !ok {
		return nil, apierrors.NewBadRequest("not an Evaluation")
	}
	specPath := field.NewPath("spec")
	c, errs := parseContext(ev.Spec.Context.Raw, specPath.Child("context"))
	if len(ev.Spec.Flags) > MaxBulkFlags {
		errs = append(errs, field.TooMany(specPath.Child("flags"), len(ev.Spec.Flags), MaxBulkFlags))
	}
	seen := sets.New[string]()
	for i, key := range ev.Spec.Flags {
		for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(key, false) {
			errs = append(errs, field.Invalid(specPath.Child("flags").Index(i), key, msg))
		}
		if seen.Has(key) {
			errs = append(errs, field.Duplicate(specPath.Child("flags").Index(i), key))
		}
		seen.Insert(key)
	}
	selector := labels.Everything()
	if ev.Spec.Selector != nil {
		errs = append(errs, metav1validation.ValidateLabelSelector(ev.Spec.Selector, metav1validation.LabelSelectorValidationOptions{}, specPath.Child("selector"))...)
		if len(errs) == 0 {
			s, err := metav1.LabelSelectorAsSelector(ev.Spec.Selector)
			if err != nil {
				errs = append(errs, field.Invalid(specPath.Child("selector"), ev.Spec.Selector, err.Error()))
			}
			selector = s
		}
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(flagpole.Kind("Evaluation"), ev.Name, errs)
	}
	if createValidation != nil {
		if err := createValidation(ctx, obj); err != nil {
			return nil, err
		}
	}
	results := r.evaluator.EvaluateAll(ctx, genericapirequest.NamespaceValue(ctx), ev.Spec.Flags, selector, c, evaluator.Options{Explain: ev.Spec.Explain})
	out := ev.DeepCopy()
	// Never stored: no managed fields to report.
	out.ManagedFields = nil
	out.Status.Results = make([]flagpole.FlagEvaluation, len(results))
	for i := range results {
		out.Status.Results[i] = toInternal(results[i])
	}
	return out, nil
}
