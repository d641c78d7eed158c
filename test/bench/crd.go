package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	tcluster "github.com/flagpole-dev/flagpole/test/cluster"
	"github.com/flagpole-dev/flagpole/test/process"
)

// Namespaces of the crd bench: the rounds' objects, the 10,000 listed, the
// fan-out target.
const (
	nsRounds = "rounds"
	nsList   = "list"
	nsWatch  = "watch"
)

// Media types of a LIST.
const (
	mediaJSON     = "application/json"
	mediaProtobuf = "application/vnd.kubernetes.protobuf"
)

// crdRun is everything the crd bench measured.
type crdRun struct {
	paths []*apiPath // paths[0] is the CRD, the reference
	// Per path, per round.
	creates, gets, updates map[*apiPath][]*result
	writesPerCreate        map[*apiPath][]float64
	// createCPU is, per path and round, the CPU time each process spent
	// per create (procs order; the last is the bench itself).
	createCPU map[*apiPath][][]time.Duration
	procs     []namedProc
	// flagpoleDebug reaches Flagpole\'s /debug/pprof, for -crd-profile.
	flagpoleDebug     *rest.Config
	lists             map[*apiPath]map[string]*listResult
	fanout            map[*apiPath][]time.Duration
	fanoutMissed      map[*apiPath]int
	mem               []memFigure // kube-apiserver's, then Flagpole's
	heapFile, heapTop string
	evaluation        *report // the evaluation bench of the same run, if it ran
	// delegated is the evaluation phase with ServiceAccount tokens (with
	// -bearer only).
	delegated       *delegatedEvaluation
	flagpoleVersion string
	setup           string // etcd and authentication, as setupLine says
	kubeVersion     string
	etcdVersion     string
	revision        string
	elapsed         time.Duration
	started         time.Time
}

// crdSection is the docs section a crd run rewrites: "crd" for the
// default setup, with -shared-etcd and -bearer in its name otherwise, so
// that each setup keeps its own figures.
func crdSection(cfg config) string {
	section := "crd"
	if cfg.sharedEtcd {
		section += "-shared-etcd"
	}
	if cfg.bearer {
		section += "-bearer"
	}
	return section
}

// setupLine says how the servers store and how clients authenticate.
func setupLine(cfg config) string {
	store := "Flagpole on an etcd of its own"
	if cfg.sharedEtcd {
		store = "Flagpole on kube-apiserver's etcd (one etcd for both)"
	}
	auth := "clients authenticate with client certificates (Flagpole direct: the front-proxy certificate and X-Remote-User)"
	if cfg.bearer {
		auth = "clients authenticate with a ServiceAccount token (Flagpole direct reviews it with kube-apiserver, cached)"
	}
	return store + "; " + auth
}

// benchToken is a token of ServiceAccount rounds/bench, bound to
// cluster-admin, as an operator's client in a cluster would hold one.
func benchToken(ctx context.Context, kube kubernetes.Interface) (string, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: nsRounds}}
	if _, err := kube.CoreV1().ServiceAccounts(nsRounds).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-cluster-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: nsRounds}},
	}
	if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	expiry := int64(2 * 60 * 60)
	tr, err := kube.CoreV1().ServiceAccounts(nsRounds).CreateToken(ctx, sa.Name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return tr.Status.Token, nil
}

// memFigure is a server's memory before and after it stores objects.
type memFigure struct {
	server                string
	objects               string
	rssBefore, rssAfter   int64 // bytes
	heapBefore, heapAfter int64 // bytes; -1 unknown
	liveBefore, liveAfter int64 // bytes; -1 unknown
	heapErr               string
}

func runCRD(ctx context.Context, cfg config, eval *report) error {
	began := time.Now()
	run := &crdRun{
		creates: map[*apiPath][]*result{}, gets: map[*apiPath][]*result{}, updates: map[*apiPath][]*result{},
		writesPerCreate: map[*apiPath][]float64{}, createCPU: map[*apiPath][][]time.Duration{}, lists: map[*apiPath]map[string]*listResult{},
		fanout: map[*apiPath][]time.Duration{}, fanoutMissed: map[*apiPath]int{},
		evaluation: eval, revision: gitRevision(), started: began,
		kubeVersion: commandLine(filepath.Join(cfg.toolsBin, "kube-apiserver"), "--version"),
		etcdVersion: commandLine(filepath.Join(cfg.toolsBin, "etcd"), "--version"),
	}
	e, err := newEnv(cfg)
	if err != nil {
		return err
	}
	defer e.close()
	peer, err := crdKindByID(cfg.crdPeer)
	if err != nil {
		return err
	}
	e.OwnEtcd = !cfg.sharedEtcd
	logf("crd: starting etcd, kube-apiserver, %s and Flagpole delegated and registered (logs in %s)", map[bool]string{true: "no etcd of Flagpole's own (it shares kube-apiserver's)", false: "Flagpole's etcd"}[cfg.sharedEtcd], e.Path("logs"))
	if err := e.Start(ctx); err != nil {
		return err
	}
	run.flagpoleVersion = flagpoleVersion(cfg.flagpoleBin)
	run.setup = setupLine(cfg)
	logf("crd: kube-apiserver %s and Flagpole %s ready, APIService Available; %s", e.KubeHost, e.FlagpoleHost, run.setup)

	admin := e.RestConfig(tcluster.UserAdmin)
	kube, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return err
	}
	for _, ns := range []string{nsRounds, nsList, nsWatch} {
		if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	kinds := []*crdKind{peer}
	if cfg.crdAllKinds {
		for _, k := range crdKinds {
			if k != peer {
				kinds = append(kinds, k)
			}
		}
	}
	for _, k := range kinds {
		if err := installCRD(ctx, admin, k); err != nil {
			return err
		}
	}
	servingCA, err := e.Serving.CAPEM()
	if err != nil {
		return err
	}
	direct := e.DirectConfig(e.FlagpolePort, servingCA, tcluster.UserAdmin, "system:masters")
	clients := admin
	if cfg.bearer {
		token, err := benchToken(ctx, kube)
		if err != nil {
			return err
		}
		clients = rest.AnonymousClientConfig(admin)
		clients.BearerToken = token
		direct = rest.AnonymousClientConfig(direct)
		direct.BearerToken = token
		direct.CAData, direct.ServerName = servingCA, tcluster.FlagpoleService+"."+tcluster.FlagpoleNamespace+".svc"
	}
	kubeProc, fpProc := e.Procs["kube-apiserver"], e.Procs["flagpole-apiserver"]
	crd, err := newCRDPath(peer, "crd", clients, e.EtcdURL, kubeProc)
	if err != nil {
		return err
	}
	agg, err := newAPIPath("Flagpole through kube-apiserver", "agg", clients, "flagpole.dev", e.FlagpoleEtcdURL, fpProc)
	if err != nil {
		return err
	}
	dir, err := newAPIPath("Flagpole direct", "dir", direct, "flagpole.dev", e.FlagpoleEtcdURL, fpProc)
	if err != nil {
		return err
	}
	// The same two Flagpole paths once more with Flagpole's generated
	// clientset, which speaks protobuf: what a typed client gets, which a
	// CRD cannot offer. The targets compare the JSON rows.
	aggTyped, err := agg.withTypedClient()
	if err != nil {
		return err
	}
	dirTyped, err := dir.withTypedClient()
	if err != nil {
		return err
	}
	run.paths = []*apiPath{crd, agg, dir, aggTyped, dirTyped}
	for i, k := range kinds[1:] {
		p, err := newCRDPath(k, fmt.Sprintf("crd%d", i+2), clients, e.EtcdURL, kubeProc)
		if err != nil {
			return err
		}
		run.paths = append(run.paths, p)
	}
	run.flagpoleDebug = direct
	run.procs = []namedProc{{"kube-apiserver", kubeProc}, {"etcd", e.Procs["etcd"]}, {"flagpole-apiserver", fpProc}}
	if !cfg.sharedEtcd {
		run.procs = append(run.procs, namedProc{"Flagpole's etcd", e.Procs["etcd-flagpole"]})
	}
	// Every path must take the same body, strictly (no field dropped),
	// before anything is measured.
	for _, p := range run.paths {
		err := tcluster.WaitFor(ctx, nil, 60*time.Second, func() error {
			_, err := p.flags(nsRounds).Create(ctx, &unstructured.Unstructured{Object: p.object("probe")},
				metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
			return err
		})
		if err != nil {
			return fmt.Errorf("%s refuses the bench's flag: %w", p.name, err)
		}
	}

	// Memory first, on a fresh cluster: kube-apiserver's growth for
	// cfg.listObjects CRs, Flagpole's for as many flags created direct.
	// These objects are then the ones listed.
	if err := measureMemory(ctx, cfg, run, crd, dir, admin, direct); err != nil {
		return err
	}

	// Rounds of creates, gets and updates, the order of the paths rotated
	// each round to spread drift over all of them.
	for round := range cfg.crdRounds {
		for i := range run.paths {
			p := run.paths[(i+round)%len(run.paths)]
			if err := crdRound(ctx, cfg, run, p, round); err != nil {
				return err
			}
		}
	}

	for _, p := range run.paths {
		if p.typed != nil {
			continue // the LIST measures both media types on the JSON rows
		}
		if p.kind != nil && p != crd {
			continue // only the peer's objects were created to be listed
		}
		run.lists[p] = map[string]*listResult{}
		for _, media := range []string{mediaJSON, mediaProtobuf} {
			r, err := list(ctx, p, nsList, media, cfg.listReps)
			if err != nil {
				return fmt.Errorf("LIST %s %s: %w", p.name, media, err)
			}
			run.lists[p][media] = r
			logf("LIST %-32s %-36s status %d, %.1f MB, %s, median %s", p.name, media, r.status, float64(r.bytes)/1e6, itemCount(r), msOrNA(r.times))
		}
	}

	for _, p := range run.paths {
		logf("fan-out: %d watchers through %s", cfg.watchers, p.name)
		lat, missed, err := fanout(ctx, p, nsWatch, cfg.watchers, cfg.watchWrites, 30*time.Second)
		if err != nil {
			return fmt.Errorf("fan-out through %s: %w", p.name, err)
		}
		run.fanout[p], run.fanoutMissed[p] = lat, missed
		logf("fan-out %-42s %d writes: p50 %s, p99 %s, missed %d", p.name, len(lat), ms(percentile(lat, 0.5)), ms(percentile(lat, 0.99)), missed)
	}

	if cfg.bearer {
		logf("evaluation with the ServiceAccount token, Flagpole delegated")
		if run.delegated, err = runDelegatedEvaluation(ctx, cfg, clients, direct, dir, kubeProc, fpProc); err != nil {
			return err
		}
	}

	run.elapsed = time.Since(began)
	out := run.markdown(cfg)
	fmt.Println()
	fmt.Print(out)
	if cfg.docs != "" {
		if err := updateDocs(cfg.docs, crdSection(cfg), out); err != nil {
			return err
		}
		logf("wrote the results into %s", cfg.docs)
	}
	return nil
}

// installCRD creates kind's CRD and waits until it is Established.
func installCRD(ctx context.Context, admin *rest.Config, kind *crdKind) error {
	dyn, err := dynamic.NewForConfig(admin)
	if err != nil {
		return err
	}
	crds := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	obj := &unstructured.Unstructured{Object: kind.definition()}
	if _, err := crds.Create(ctx, obj, metav1.CreateOptions{FieldValidation: "Strict"}); err != nil {
		return fmt.Errorf("create the %s: %w", kind.name, err)
	}
	return tcluster.WaitFor(ctx, nil, 60*time.Second, func() error {
		got, err := crds.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if err != nil {
			return err
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return nil
			}
		}
		return errors.New("CRD not Established yet")
	})
}

// measureMemory reads both servers' RSS and Go heap, creates
// cfg.listObjects CRs and as many flags (direct), waits for the writes to
// settle and reads them again; it saves Flagpole's heap profile.
func measureMemory(ctx context.Context, cfg config, run *crdRun, crd, dir *apiPath, admin, direct *rest.Config) error {
	kubeMem := memFigure{server: "kube-apiserver", objects: fmt.Sprintf("%d %s objects", cfg.listObjects, crd.kind.name)}
	fpMem := memFigure{server: "flagpole-apiserver", objects: fmt.Sprintf("%d flags (created direct)", cfg.listObjects)}
	type side struct {
		m    *memFigure
		p    *apiPath
		cfg  *rest.Config
		proc *process.Process
	}
	sides := []side{{&kubeMem, crd, admin, crd.server}, {&fpMem, dir, direct, dir.server}}
	read := func(s side, rss, heap, live *int64) []byte {
		*rss = -1
		if kib, err := rssKiB(s.proc); err == nil {
			*rss = int64(kib) * 1024
		}
		prof, inuse, alloc, err := heapInUse(ctx, s.cfg)
		*heap, *live = inuse, alloc
		if err != nil {
			*heap, *live = -1, -1
			s.m.heapErr = err.Error()
		}
		return prof
	}
	for _, s := range sides {
		if _, err := settledRevision(ctx, s.p.etcdURL, time.Second, 15*time.Second); err != nil {
			return err
		}
		read(s, &s.m.rssBefore, &s.m.heapBefore, &s.m.liveBefore)
		logf("memory: %s before: RSS %s, heap in use %s, live heap %s", s.m.server, mib(s.m.rssBefore), mib(s.m.heapBefore), mib(s.m.liveBefore))
	}
	for _, s := range sides {
		logf("memory: creating %d objects through %s", cfg.listObjects, s.p.name)
		profiled := make(chan struct{})
		if cfg.createProfile > 0 {
			go func() {
				defer close(profiled)
				saveCreateProfile(ctx, cfg, s.cfg, s.m.server)
			}()
		} else {
			close(profiled)
		}
		r := runOps(ctx, cfg.listObjects, cfg.workers, func(ctx context.Context, i int) error {
			_, err := s.p.flags(nsList).Create(ctx, &unstructured.Unstructured{Object: s.p.object(fmt.Sprintf("flag-%05d", i))}, metav1.CreateOptions{})
			return err
		})
		if err := ctx.Err(); err != nil {
			return err
		}
		<-profiled
		logf("memory: %d created in %.1fs (%.0f/s), errors %s", r.ok, r.window.Seconds(), r.rate(), errSummary(r))
		if r.errCount() > 0 {
			return fmt.Errorf("creating the %d objects to list through %s: %s", cfg.listObjects, s.p.name, errSummary(r))
		}
	}
	for i, s := range sides {
		if _, err := settledRevision(ctx, s.p.etcdURL, 2*time.Second, 60*time.Second); err != nil {
			return err
		}
		prof := read(s, &s.m.rssAfter, &s.m.heapAfter, &s.m.liveAfter)
		logf("memory: %s after %s: RSS %s (%s), heap in use %s (%s), live heap %s (%s)", s.m.server, s.m.objects,
			mib(s.m.rssAfter), mibDelta(growth(s.m.rssBefore, s.m.rssAfter)), mib(s.m.heapAfter), mibDelta(growth(s.m.heapBefore, s.m.heapAfter)),
			mib(s.m.liveAfter), mibDelta(growth(s.m.liveBefore, s.m.liveAfter)))
		if i == 1 && prof != nil {
			if err := saveHeap(ctx, cfg, run, prof); err != nil {
				return err
			}
		}
	}
	run.mem = []memFigure{kubeMem, fpMem}
	return nil
}

// saveHeap keeps Flagpole's heap profile after the objects and prints its
// top functions by in-use space.
func saveHeap(ctx context.Context, cfg config, run *crdRun, prof []byte) error {
	if err := os.MkdirAll(cfg.outDir, 0o755); err != nil {
		return err
	}
	run.heapFile = filepath.Join(cfg.outDir, "flagpole-heap.pprof")
	if err := os.WriteFile(run.heapFile, prof, 0o644); err != nil {
		return err
	}
	top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-sample_index=inuse_space", "-nodecount=20", run.heapFile).Output()
	if err != nil {
		run.heapTop = "go tool pprof failed: " + err.Error()
		return nil
	}
	run.heapTop = pprofRows(string(top))
	logf("Flagpole heap profile after the objects saved to %s; go tool pprof -top:\n%s", run.heapFile, run.heapTop)
	return nil
}

// crdRound creates cfg.crdObjects flags through p, counts the etcd writes
// they caused once the server has settled, then gets and updates each.
func crdRound(ctx context.Context, cfg config, run *crdRun, p *apiPath, round int) error {
	name := func(i int) string { return fmt.Sprintf("%s-r%d-%05d", p.short, round+1, i) }
	before, err := settledRevision(ctx, p.etcdURL, time.Second, 15*time.Second)
	if err != nil {
		return err
	}
	profiled := make(chan struct{})
	if cfg.createProfile > 0 && round == 0 && p.short == "agg" {
		// A round of 1,000 creates is over in about a second: profile at
		// most its first second unless -crd-objects makes it longer.
		profileFor := min(cfg.createProfile, time.Duration(cfg.crdObjects)*time.Millisecond)
		go func() {
			defer close(profiled)
			saveCreateProfile(ctx, config{outDir: cfg.outDir, createProfile: profileFor}, run.flagpoleDebug, "flagpole-apiserver-aggregated")
		}()
	} else {
		close(profiled)
	}
	cpuBefore := run.cpuTimes()
	creates := runOps(ctx, cfg.crdObjects, cfg.workers, func(ctx context.Context, i int) error {
		return p.create(ctx, nsRounds, name(i))
	})
	after, err := settledRevision(ctx, p.etcdURL, time.Second, 30*time.Second)
	if err != nil {
		return err
	}
	// Up to the settled store, so that work the create leaves behind (the
	// watch cache, controllers, a second write) counts too. The settling
	// second's idle CPU is small beside a thousand creates.
	perCreate := run.cpuPerOp(cpuBefore, run.cpuTimes(), creates.ok)
	<-profiled
	run.createCPU[p] = append(run.createCPU[p], perCreate)
	wpc := float64(after-before) / float64(max(creates.ok, 1))
	objs := make([]runtime.Object, cfg.crdObjects)
	gets := runOps(ctx, cfg.crdObjects, cfg.workers, func(ctx context.Context, i int) error {
		o, err := p.get(ctx, nsRounds, name(i))
		objs[i] = o
		return err
	})
	updates := runOps(ctx, cfg.crdObjects, cfg.workers, func(ctx context.Context, i int) error {
		if objs[i] == nil {
			return errors.New("not read")
		}
		return p.updateDescription(ctx, nsRounds, objs[i], fmt.Sprintf("Checkout flow experiment, round %d", round+1))
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	run.creates[p] = append(run.creates[p], creates)
	run.gets[p] = append(run.gets[p], gets)
	run.updates[p] = append(run.updates[p], updates)
	run.writesPerCreate[p] = append(run.writesPerCreate[p], wpc)
	logf("round %d  %-32s create %6.0f/s p50 %s p99 %s | get %6.0f/s p99 %s | update %6.0f/s p99 %s | etcd writes/create %.2f | errors %d/%d/%d | CPU µs/create %s",
		round+1, p.name, creates.rate(), ms(percentile(creates.lat, 0.5)), ms(percentile(creates.lat, 0.99)),
		gets.rate(), ms(percentile(gets.lat, 0.99)), updates.rate(), ms(percentile(updates.lat, 0.99)), wpc,
		creates.errCount(), gets.errCount(), updates.errCount(), run.cpuLine(perCreate))
	return nil
}

// mib is a size in MiB; -1 is unknown.
func mib(b int64) string {
	if b == -1 {
		return "?"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

// mibDelta is a signed change in MiB; -1 is unknown (growth).
func mibDelta(b int64) string {
	if b == -1 {
		return "?"
	}
	return fmt.Sprintf("%+.0f MiB", float64(b)/(1<<20))
}

func itemCount(r *listResult) string {
	if r.items < 0 {
		return "items not counted"
	}
	return fmt.Sprintf("%d items", r.items)
}

func msOrNA(d []time.Duration) string {
	if len(d) == 0 {
		return "n/a"
	}
	return ms(percentile(d, 0.5))
}

type namedProc struct {
	name string
	proc *process.Process
}

// cpuTimes reads the CPU time of every server process and of the bench
// itself (last); -1 where unreadable.
func (r *crdRun) cpuTimes() []time.Duration {
	out := make([]time.Duration, 0, len(r.procs)+1)
	for _, p := range r.procs {
		d, err := cpuTime(p.proc)
		if err != nil {
			d = -1
		}
		out = append(out, d)
	}
	var ru syscall.Rusage
	self := time.Duration(-1)
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return append(out, self)
}

func (r *crdRun) cpuPerOp(before, after []time.Duration, ops int) []time.Duration {
	out := make([]time.Duration, len(before))
	for i := range before {
		out[i] = -1
		if before[i] >= 0 && after[i] >= 0 && ops > 0 {
			out[i] = (after[i] - before[i]) / time.Duration(ops)
		}
	}
	return out
}

// cpuNames names cpuTimes' entries.
func (r *crdRun) cpuNames() []string {
	names := make([]string, 0, len(r.procs)+1)
	for _, p := range r.procs {
		names = append(names, p.name)
	}
	return append(names, "bench (client)")
}

func (r *crdRun) cpuLine(per []time.Duration) string {
	var parts []string
	for i, name := range r.cpuNames() {
		parts = append(parts, fmt.Sprintf("%s %s", name, usOrNA(per[i])))
	}
	return strings.Join(parts, ", ")
}

func usOrNA(d time.Duration) string {
	if d < 0 {
		return "?"
	}
	return fmt.Sprintf("%.0f", us(d))
}

// saveCreateProfile saves a CPU profile of server taken while the memory
// phase creates its objects (-crd-profile), to see where a create's time goes.
func saveCreateProfile(ctx context.Context, cfg config, rc *rest.Config, server string) {
	prof, err := debugGet(ctx, rc, fmt.Sprintf("/debug/pprof/profile?seconds=%d", max(int(cfg.createProfile.Seconds()), 1)))
	if err != nil {
		logf("CPU profile of %s under creates: %v", server, err)
		return
	}
	file := filepath.Join(cfg.outDir, server+"-creates.cpu.pprof")
	if err := os.WriteFile(file, prof, 0o644); err != nil {
		logf("CPU profile of %s under creates: %v", server, err)
		return
	}
	logf("CPU profile of %s under creates saved to %s", server, file)
}
