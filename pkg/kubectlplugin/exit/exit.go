// Package exit gives kubectl-flagpole's failures the exit codes scripts test
// and the hint that says what to do next. Every command returns its errors
// through it; the root command prints "error: <message>" and the hint, and
// exits with the code (docs/kubectl-plugin.md lists them).
package exit

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Code is a process exit code.
type Code int

// The exit codes. They are part of the plugin's interface: scripts test them.
const (
	OK Code = 0
	// Failed is anything else: the server unreachable or failing, a local file unreadable.
	Failed Code = 1
	// Usage: an unknown command or flag, wrong arguments, or input refused
	// (a value the server or the plugin refuses, an import that cannot be translated).
	Usage Code = 2
	// NotFound: the flag (or namespace, segment, revision) does not exist.
	NotFound Code = 3
	// Forbidden: the server refused the credentials (401) or the permission (403).
	Forbidden Code = 4
	// Conflict: a concurrent change that retrying could not get past, or a
	// precondition (--if-resource-version) that no longer holds.
	Conflict Code = 5
	// Unsupported: the server does not offer what the command needs
	// (revisions, for history, diff and rollback).
	Unsupported Code = 6
	// Cancelled: a confirmation was declined or could not be asked.
	Cancelled Code = 7
)

// Error is a failure with its exit code and what to do about it.
type Error struct {
	Code Code
	Err  error
	// Hint says what to do next; printed after the error.
	Hint string
}

func (e *Error) Error() string { return e.Err.Error() }

func (e *Error) Unwrap() error { return e.Err }

// New returns an Error with code for a message.
func New(code Code, hint, format string, args ...any) *Error {
	return &Error{Code: code, Err: fmt.Errorf(format, args...), Hint: hint}
}

// Wrap gives err a code and a hint, unless it already has a code.
func Wrap(code Code, hint string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Code: code, Err: err, Hint: hint}
}

// CodeOf is the exit code for err: its own, else the one its API status
// implies, else Failed.
func CodeOf(err error) Code {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return codeOfAPI(err)
}

func codeOfAPI(err error) Code {
	switch {
	case apierrors.IsNotFound(err):
		return NotFound
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		return Forbidden
	case apierrors.IsConflict(err):
		return Conflict
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err), apierrors.IsAlreadyExists(err):
		return Usage
	}
	return Failed
}

// Target says what a request was about, for the hints of its errors.
type Target struct {
	// Verb is the API verb: get, list, update, create, patch, delete.
	Verb string
	// Resource, e.g. "flags", "flags/evaluate", "flagoverrides".
	Resource string
	// Namespace and Name of the object, when there is one.
	Namespace, Name string
}

// FromAPI gives an error from the API its exit code and a hint that says
// what to do, for a request about t.
func FromAPI(err error, t Target) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	code := codeOfAPI(err)
	hint := ""
	switch {
	case apierrors.IsNotFound(err):
		hint = fmt.Sprintf("list what there is with: kubectl flagpole get -n %s", t.Namespace)
		if t.Resource != "flags" && !strings.HasPrefix(t.Resource, "flags/") {
			hint = fmt.Sprintf("list what there is with: kubectl get %s -n %s", t.Resource, t.Namespace)
		}
		if isMissingAPI(err) {
			hint = "the server does not serve flagpole.dev: is Flagpole installed and its APIService Available? (kubectl get apiservice v1beta1.flagpole.dev)"
		}
	case apierrors.IsUnauthorized(err):
		hint = "the server did not accept your credentials: check the kubeconfig and context (kubectl config current-context) or log in again"
	case apierrors.IsForbidden(err):
		resource, sub, _ := strings.Cut(t.Resource, "/")
		check := fmt.Sprintf("kubectl auth can-i %s %s.flagpole.dev", t.Verb, resource)
		if sub != "" {
			check += " --subresource=" + sub
		}
		if t.Namespace != "" {
			check += " -n " + t.Namespace
		}
		hint = fmt.Sprintf("ask for a Role that grants %q on %s in this namespace; check with: %s", t.Verb, t.Resource, check)
	case apierrors.IsConflict(err):
		hint = "the object changed while this command ran: look at it again (kubectl flagpole get) and re-run"
	case apierrors.IsInvalid(err):
		hint = "the server refused the change; the fields named above say why"
	case isUnreachable(err):
		hint = "the server cannot be reached: is it running, and do --kubeconfig and --context name the right one?"
	}
	return &Error{Code: code, Err: err, Hint: hint}
}

// isMissingAPI tells a 404 for the whole API (a server without
// flagpole.dev: no APIService, or not Flagpole at all) from one for an
// object: without a Status body, client-go's message is the generic one.
func isMissingAPI(err error) bool {
	var status apierrors.APIStatus
	return errors.As(err, &status) && strings.Contains(status.Status().Message, "the server could not find the requested resource")
}

func isUnreachable(err error) bool {
	var urlErr *url.Error
	var opErr *net.OpError
	return errors.As(err, &opErr) || (errors.As(err, &urlErr) && !urlErr.Timeout())
}
