package standalone

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

func TestEnsureAppToken(t *testing.T) {
	dir := t.TempDir()
	file, err := EnsureAppToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	csv, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	token, err := os.ReadFile(filepath.Join(dir, AppTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(token))
	if len(tok) < 40 || !strings.HasPrefix(string(csv), tok+","+AppUser+","+AppUser+`,"`+EvaluatorsGroup+`"`) {
		t.Errorf("tokens.csv %q does not give token %q to %s in %s", csv, tok, AppUser, EvaluatorsGroup)
	}
	for _, f := range []string{file, filepath.Join(dir, AppTokenFile)} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", f, fi.Mode().Perm(), err)
		}
	}
	// An existing file (an operator may have added users) is kept as it is.
	if err := os.WriteFile(file, append(csv, []byte("t2,mallory,mallory\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureAppToken(dir); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(file); !strings.Contains(string(again), "mallory") || !strings.HasPrefix(string(again), tok) {
		t.Errorf("tokens.csv was rewritten: %q", again)
	}
}

func TestEvaluatorAuthorizer(t *testing.T) {
	app := &user.DefaultInfo{Name: AppUser, Groups: []string{EvaluatorsGroup, user.AllAuthenticated}}
	other := &user.DefaultInfo{Name: "mallory", Groups: []string{user.AllAuthenticated}}
	attrs := func(u user.Info, verb, resource, sub string) authorizer.Attributes {
		return authorizer.AttributesRecord{User: u, Verb: verb, APIGroup: "flagpole.dev", APIVersion: "v1beta1",
			Namespace: "apps", Resource: resource, Subresource: sub, Name: "f", ResourceRequest: true}
	}
	for _, tc := range []struct {
		a    authorizer.Attributes
		want authorizer.Decision
	}{
		{attrs(app, "create", "flags", "evaluate"), authorizer.DecisionAllow},
		{attrs(app, "create", "evaluations", ""), authorizer.DecisionAllow},
		{attrs(app, "create", "usagereports", ""), authorizer.DecisionAllow},
		{attrs(app, "get", "flags", ""), authorizer.DecisionNoOpinion},
		{attrs(app, "create", "flags", ""), authorizer.DecisionNoOpinion},
		{attrs(app, "update", "flags", "status"), authorizer.DecisionNoOpinion},
		{attrs(app, "create", "flagoverrides", ""), authorizer.DecisionNoOpinion},
		{attrs(other, "create", "flags", "evaluate"), authorizer.DecisionNoOpinion},
		{authorizer.AttributesRecord{User: app, Verb: "get", Path: "/metrics"}, authorizer.DecisionNoOpinion},
	} {
		if got, _, _ := EvaluatorAuthorizer.Authorize(context.Background(), tc.a); got != tc.want {
			t.Errorf("%s %s/%s by %s: %v, want %v", tc.a.GetVerb(), tc.a.GetResource(), tc.a.GetSubresource(), tc.a.GetUser().GetName(), got, tc.want)
		}
	}
}

// A tokens.csv or app-token left empty or cut short (a crash while it was
// written, before writes were durable) is an error that names the file and
// says what to do: never a token file without tokens, which answers every
// application 401 and logs nothing.
func TestEnsureAppTokenDamagedFiles(t *testing.T) {
	for _, tc := range []struct {
		name        string
		tokens, app string
		noApp       bool
		file        string
		want        string
	}{
		{name: "empty tokens.csv", tokens: "", app: "x\n", file: TokensFile, want: "is empty (0 bytes; a crash while it was written?)"},
		{name: "blank tokens.csv", tokens: "\n\n", noApp: true, file: TokensFile, want: "is empty (2 bytes"},
		{name: "tokens.csv cut short", tokens: "abcdef,flagpole-a", noApp: true, file: TokensFile, want: "is not a valid token file"},
		{name: "tokens.csv with a broken quote", tokens: `abcdef,flagpole-app,flagpole-app,"flagpole:ev`, noApp: true, file: TokensFile, want: "is not a valid token file"},
		{name: "empty app-token", tokens: "abcdef,flagpole-app,flagpole-app,\"flagpole:evaluators\"\n", app: "", file: AppTokenFile, want: "is empty (0 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, TokensFile), []byte(tc.tokens), 0o600); err != nil {
				t.Fatal(err)
			}
			if !tc.noApp {
				if err := os.WriteFile(filepath.Join(dir, AppTokenFile), []byte(tc.app), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := EnsureAppToken(dir)
			if err == nil {
				t.Fatal("accepted")
			}
			if want := filepath.Join(dir, tc.file) + " " + tc.want; !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
			if !strings.Contains(err.Error(), "remove") {
				t.Errorf("error %q does not say what to do", err)
			}
			if got, _ := os.ReadFile(filepath.Join(dir, TokensFile)); string(got) != tc.tokens {
				t.Errorf("tokens.csv was changed to %q", got)
			}
		})
	}

	// Without app-token (an operator may remove it), a valid tokens.csv is fine.
	dir := t.TempDir()
	if _, err := EnsureAppToken(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, AppTokenFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureAppToken(dir); err != nil {
		t.Errorf("tokens.csv without app-token: %v", err)
	}
}
