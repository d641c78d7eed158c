package standalone

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"k8s.io/apiserver/pkg/authentication/token/tokenfile"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/klog/v2"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/durable"
)

// EvaluatorsGroup is the group of application identities in standalone
// mode: they may evaluate flags (flags/evaluate, evaluations, and OFREP,
// which is authorized as those) in every namespace, and do nothing else.
const EvaluatorsGroup = "flagpole:evaluators"

// AppUser is the user of the application token written on first start.
const AppUser = "flagpole-app"

// TokensFile is the name, under the data directory, of the static token file
// (upstream's CSV format: token,user,uid,"group1,group2"). Standalone mode
// writes one application token into it on first start; an operator may add
// lines, for example a user with no group (authenticated, allowed nothing).
const TokensFile = "tokens.csv"

// AppTokenFile holds the application token alone, for scripts and SDKs.
const AppTokenFile = "app-token"

// EnsureAppToken creates dir/tokens.csv and dir/app-token with a fresh random
// token for AppUser in EvaluatorsGroup, unless tokens.csv exists. Both files
// are readable by the owner only, and written durably (app-token first: a
// crash in between leaves no tokens.csv, and the next start writes both).
//
// An existing tokens.csv that is empty or that upstream's parser refuses is
// an error naming the file: taking it for a token file with no tokens would
// answer every application 401 with nothing in the log to say why. So is an
// existing app-token that is empty.
func EnsureAppToken(dir string) (tokensFile string, err error) {
	layout := Layout{DataDir: dir}
	tokensFile = layout.TokensFile()
	if _, err := os.Stat(tokensFile); err == nil {
		return tokensFile, checkTokenFiles(layout)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := durable.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", err
	}
	token := base64.RawURLEncoding.EncodeToString(secret)
	if err := durable.WriteFile(layout.AppTokenFile(), []byte(token+"\n"), 0o600); err != nil {
		return "", err
	}
	line := fmt.Sprintf("%s,%s,%s,%q\n", token, AppUser, AppUser, EvaluatorsGroup)
	if err := durable.WriteFile(tokensFile, []byte(line), 0o600); err != nil {
		return "", err
	}
	klog.InfoS("Standalone mode: application token written", "file", layout.AppTokenFile(), "user", AppUser, "group", EvaluatorsGroup)
	return tokensFile, nil
}

// checkTokenFiles checks an existing tokens.csv, and app-token if it is
// there (an operator may remove it once applications have their token).
func checkTokenFiles(layout Layout) error {
	tokensFile, appTokenFile := layout.TokensFile(), layout.AppTokenFile()
	remedy := fmt.Sprintf("restore it from a backup, or remove %s and %s: the next start writes a new application token, "+
		"which applications then need", tokensFile, appTokenFile)
	data, err := os.ReadFile(tokensFile)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return fmt.Errorf("%s is empty (%d bytes; a crash while it was written?): %s", tokensFile, len(data), remedy)
	}
	tokens, err := tokenfile.NewCSV(tokensFile)
	if err != nil {
		return fmt.Errorf("%s is not a valid token file (%v): %s", tokensFile, err, remedy)
	}
	data, err = os.ReadFile(appTokenFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	token := string(bytes.TrimSpace(data))
	if token == "" {
		return fmt.Errorf("%s is empty (%d bytes; a crash while it was written?): write the first field of %s's line for %s into it, or remove it "+
			"(it is only a copy for scripts and SDKs), or remove both files to have new ones written", appTokenFile, len(data), tokensFile, AppUser)
	}
	if _, ok, _ := tokens.AuthenticateToken(context.Background(), token); !ok {
		klog.ErrorS(nil, "The token in app-token is not in tokens.csv: applications given it are refused (401)", "appToken", appTokenFile, "tokens", tokensFile)
	}
	return nil
}

// EvaluatorAuthorizer allows EvaluatorsGroup to create flags/evaluate,
// evaluations and usagereports (what an in-process provider evaluated) in
// flagpole.dev, in any namespace, and has no opinion on anything else (the
// next authorizer in the union denies it).
var EvaluatorAuthorizer authorizer.Authorizer = authorizer.AuthorizerFunc(authorizeEvaluator)

func authorizeEvaluator(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	if a.GetUser() == nil || !a.IsResourceRequest() || a.GetVerb() != "create" || a.GetAPIGroup() != v1beta1.GroupName {
		return authorizer.DecisionNoOpinion, "", nil
	}
	inGroup := false
	for _, g := range a.GetUser().GetGroups() {
		if g == EvaluatorsGroup {
			inGroup = true
			break
		}
	}
	if !inGroup {
		return authorizer.DecisionNoOpinion, "", nil
	}
	switch {
	case a.GetResource() == "flags" && a.GetSubresource() == "evaluate",
		a.GetResource() == "evaluations" && a.GetSubresource() == "",
		a.GetResource() == "usagereports" && a.GetSubresource() == "":
		return authorizer.DecisionAllow, "standalone evaluators may evaluate flags and report evaluations", nil
	}
	return authorizer.DecisionNoOpinion, "", nil
}
