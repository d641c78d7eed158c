package exit

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestFromAPI(t *testing.T) {
	flags := schema.GroupResource{Group: "flagpole.dev", Resource: "flags"}
	target := Target{Verb: "update", Resource: "flags", Namespace: "shop", Name: "f"}
	for _, tc := range []struct {
		err  error
		code Code
		hint string
	}{
		{apierrors.NewNotFound(flags, "f"), NotFound, "kubectl flagpole get -n shop"},
		{apierrors.NewForbidden(flags, "f", errors.New("no")), Forbidden, `grants "update" on flags in this namespace; check with: kubectl auth can-i update flags.flagpole.dev -n shop`},
		{apierrors.NewUnauthorized("who"), Forbidden, "did not accept your credentials"},
		{apierrors.NewConflict(flags, "f", errors.New("x")), Conflict, "changed while this command ran"},
		{apierrors.NewInvalid(schema.GroupKind{Group: "flagpole.dev", Kind: "Flag"}, "f", field.ErrorList{field.Required(field.NewPath("spec"), "")}), Usage, "the fields named above"},
		{apierrors.NewGenericServerResponse(404, "get", flags, "", "", 0, false), NotFound, "is Flagpole installed"},
		{&url.Error{Op: "Get", URL: "https://x", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, Failed, "cannot be reached"},
		{apierrors.NewInternalError(errors.New("boom")), Failed, ""},
	} {
		err := FromAPI(tc.err, target)
		if CodeOf(err) != tc.code || !strings.Contains(err.(*Error).Hint, tc.hint) {
			t.Errorf("%v: exit %d hint %q, want %d and %q", tc.err, CodeOf(err), err.(*Error).Hint, tc.code, tc.hint)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("%v: the API error is lost", tc.err)
		}
	}
	sub := FromAPI(apierrors.NewForbidden(flags, "f", errors.New("no")), Target{Verb: "create", Resource: "flags/evaluate", Namespace: "shop"})
	if !strings.Contains(sub.(*Error).Hint, "kubectl auth can-i create flags.flagpole.dev --subresource=evaluate -n shop") {
		t.Errorf("subresource hint: %s", sub.(*Error).Hint)
	}
	// Codes already given stay.
	inner := New(Cancelled, "", "no")
	if CodeOf(Wrap(Failed, "", fmt.Errorf("wrapped: %w", inner))) != Cancelled || FromAPI(inner, target) != error(inner) {
		t.Error("a code given once was replaced")
	}
	if FromAPI(nil, target) != nil || Wrap(Failed, "", nil) != nil || CodeOf(nil) != OK {
		t.Error("nil")
	}
}
