package pluginsuite

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/exit"
)

// runHistory drives history, diff and rollback against the server's
// FlagRevisions: the suite's earlier commands changed "checkout" several
// times, each a generation the server's history controller records.
func runHistory(t *testing.T, env Env, admin, denied Plugin) {
	ctx := context.Background()
	ns := env.Namespaces[0]
	flags := env.Client.FlagpoleV1beta1().Flags(ns)
	f, err := flags.Get(ctx, "checkout", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if f.Generation < 2 {
		t.Fatalf("checkout has generation %d: the suite's changes before this should have made more", f.Generation)
	}
	revs := waitRevisions(t, admin, f.Generation)
	// The suite's concurrent writers made more generations than the
	// server keeps (--flag-revision-limit): the oldest kept is the base.
	oldest := revs.Items[0].Change.Generation
	if n := int64(len(revs.Items)); n != min(f.Generation, 20) || oldest != f.Generation-n+1 {
		t.Errorf("revisions kept: %d from generation %d, want the newest min(%d, 20)", n, oldest, f.Generation)
	}

	out := admin.Must(t, "history", "checkout")
	if !regexp.MustCompile(`(?m)^REVISION\s+TIME\s+USER\s+STATE\s+DEFAULT\s+RULES\s+CHANGE$`).MatchString(out) ||
		!regexp.MustCompile(fmt.Sprintf(`(?m)^%d\s+\S+\s+\S+\s+Enabled\s+off\s+3\s+\S`, oldest)).MatchString(out) {
		t.Errorf("history: a table from revision %d:\n%s", oldest, out)
	}
	// The change that made the newest generation is the server's diff.
	newest := revs.Items[len(revs.Items)-1]
	if len(newest.Diff) == 0 || !strings.Contains(out, newest.Diff[0]) {
		t.Errorf("history lacks the newest revision's change %q:\n%s", newest.Diff, out)
	}

	base := strconv.FormatInt(oldest, 10)
	out = admin.Must(t, "diff", "checkout", base)
	if !strings.HasPrefix(out, fmt.Sprintf("--- revision %d\n+++ revision %d\n", oldest, f.Generation)) {
		t.Errorf("diff checkout %d (to now):\n%s", oldest, out)
	}
	if out := admin.Must(t, "diff", "checkout", base, strconv.FormatInt(oldest+1, 10)); !strings.HasPrefix(out, fmt.Sprintf("--- revision %d\n+++ revision %d\n", oldest, oldest+1)) {
		t.Errorf("diff checkout %d %d:\n%s", oldest, oldest+1, out)
	}
	admin.Fails(t, exit.Usage, []string{"diff", "checkout", "first"}, "not a revision number")
	admin.Fails(t, exit.NotFound, []string{"diff", "checkout", "999"}, "has no revision 999", "kubectl flagpole history checkout")
	admin.Fails(t, exit.Usage, []string{"history", "checkout", "-o", "bogus"}, "bogus")
	admin.Fails(t, exit.NotFound, []string{"history", "no-such-flag"}, "not found")

	// Without --yes and without a terminal: asked, refused, nothing changed.
	if res := admin.Run(t, "", "rollback", "checkout", base); res.Code != exit.Cancelled || !strings.Contains(res.Stderr, "--- revision") || !strings.Contains(res.Stderr, "hint: pass --yes") {
		t.Errorf("rollback without --yes and without a terminal: exit %d, want %d, the diff and a hint:\n%s", res.Code, exit.Cancelled, res.Stderr)
	}
	if now, _ := flags.Get(ctx, "checkout", metav1.GetOptions{}); now.Generation != f.Generation {
		t.Fatalf("a refused rollback changed the flag: generation %d → %d", f.Generation, now.Generation)
	}
	// The denied user's Role names flags but not flagrevisions (or nothing,
	// an application's token): kube-apiserver authorizes each by its name.
	denied.Fails(t, exit.Forbidden, []string{"history", "checkout"}, "forbidden", `grants "list" on flagrevisions`)
	denied.Fails(t, exit.Forbidden, []string{"rollback", "checkout", base, "--yes"}, "forbidden")

	out = admin.Must(t, "rollback", "checkout", base, "--yes")
	if want := fmt.Sprintf("rolled back to revision %d (now generation %d)", oldest, f.Generation+1); !strings.Contains(out, want) {
		t.Errorf("rollback: %q, want %q", out, want)
	}
	rolled, err := flags.Get(ctx, "checkout", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !apiequality.Semantic.DeepEqual(rolled.Spec, revs.Items[0].Spec) {
		t.Errorf("after rollback the spec is not the oldest revision's:\n%+v\n%+v", rolled.Spec, revs.Items[0].Spec)
	}
	// The rollback is itself a change, recorded as one.
	after := waitRevisions(t, admin, rolled.Generation)
	if last := after.Items[len(after.Items)-1]; last.Change.Generation != rolled.Generation || len(last.Diff) == 0 {
		t.Errorf("the rollback's revision: %+v", last)
	}
	// The newest revision is the spec it has now.
	now := strconv.FormatInt(rolled.Generation, 10)
	if out := admin.Must(t, "rollback", "checkout", now, "--yes"); !strings.Contains(out, "already has the spec of revision "+now) {
		t.Errorf("rolling back to the spec it has: %q", out)
	}
}

// waitRevisions waits until `history checkout -o json` lists revision
// generation (they are written off the request's path, within moments)
// and returns the list.
func waitRevisions(t *testing.T, p Plugin, generation int64) *v1beta1.FlagRevisionList {
	t.Helper()
	var list *v1beta1.FlagRevisionList
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		res := p.Run(t, "", "history", "checkout", "-o", "json")
		last = res.Stdout + res.Stderr
		if res.Code != exit.OK {
			return false, nil
		}
		list = &v1beta1.FlagRevisionList{}
		if err := json.Unmarshal([]byte(res.Stdout), list); err != nil {
			return false, err
		}
		n := len(list.Items)
		return n > 0 && list.Items[n-1].Change.Generation == generation, nil
	})
	if err != nil {
		t.Fatalf("history checkout -o json never listed generation %d: %v\n%s", generation, err, last)
	}
	if list.Kind != "FlagRevisionList" || list.Items[0].Flag.Name != "checkout" {
		t.Errorf("history -o json: kind %q, flag %q", list.Kind, list.Items[0].Flag.Name)
	}
	return list
}
