package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/server/v3/storage/datadir"
	"go.etcd.io/etcd/server/v3/storage/schema"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/token/tokenfile"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	"github.com/flagpole-dev/flagpole/pkg/standalone"
	"github.com/flagpole-dev/flagpole/test/etcdwal"
	"github.com/flagpole-dev/flagpole/test/scratchfs"
)

// TestHostileDisk is the hostile suite's disk cases (issue 16, items 5–7),
// each against the built binary: a power cut right after the first start,
// every way the datastore was found damaged or lost, and a disk that fills
// while the server is busy. The power cut and the full disk need file
// systems of their own (scratchfs: root, a loop device, mount); under
// hack/test.sh a missing one fails them.
func TestHostileDisk(t *testing.T) {
	t.Parallel()
	bin := buildServer(t)
	t.Run("power cut after the first start", func(t *testing.T) { t.Parallel(); testPowerCut(t, bin) })
	t.Run("damaged or lost datastore", func(t *testing.T) { t.Parallel(); testDamagedDatastore(t, bin) })
	t.Run("disk fills under load", func(t *testing.T) { t.Parallel(); testDiskFull(t, bin) })
}

// firstStartFiles are the files Flagpole writes itself on its first start.
func firstStartFiles(l standalone.Layout) []string {
	pki := l.PKI()
	return []string{
		pki.CACertFile(), pki.CAKeyFile(), pki.ServingCertFile(), pki.ServingKeyFile(), pki.AdminCertFile(), pki.AdminKeyFile(),
		l.DatastoreRecord(), l.TokensFile(), l.AppTokenFile(), l.Kubeconfig(),
	}
}

// The files of the first start survive a power cut that comes as soon as
// they are all there: on ext4, a file written without fsync is 0 bytes after
// one (its name and size reach the journal before its data), which is what
// every one of them was before they were written durably.
func testPowerCut(t *testing.T, bin string) {
	fs := scratchfs.Ext4(t, 384<<20)
	layout := standalone.Layout{DataDir: filepath.Join(fs.Dir, "data")}
	s := launchBinary(t, bin, layout.DataDir)
	err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) {
		if s.exited() {
			return false, s.exitError()
		}
		for _, f := range firstStartFiles(layout) {
			if _, err := os.Stat(f); err != nil {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("the first start did not write its files: %v\n%s", err, tail(s.Log.String()))
	}
	// The power cut: what the device holds now, nothing synced first.
	image := fs.Snapshot(t)
	_ = s.cmd.Process.Kill()
	<-s.done

	after := scratchfs.MountImage(t, image)
	survived := standalone.Layout{DataDir: filepath.Join(after.Dir, "data")}
	checkFirstStartFiles(t, survived)

	// And the server starts on what survived: the admin kubeconfig and the
	// application token work.
	s2 := startBinaryIn(t, bin, survived.DataDir)
	token, err := os.ReadFile(survived.AppTokenFile())
	if err != nil {
		t.Fatal(err)
	}
	if code, body := ofrepBulk(appConfig(s2.Config, string(token)), "default"); code != http.StatusOK {
		t.Errorf("OFREP with the application token after the power cut: %d %s", code, body)
	}
	if err := s2.stop(t); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// checkFirstStartFiles checks that each file of the first start is there,
// complete, and parses as what it is.
func checkFirstStartFiles(t *testing.T, l standalone.Layout) {
	t.Helper()
	for _, f := range firstStartFiles(l) {
		if fi, err := os.Stat(f); err != nil {
			t.Errorf("after the power cut: %v", err)
		} else if fi.Size() == 0 {
			t.Errorf("%s after the power cut: 0 bytes", f)
		}
	}
	if t.Failed() {
		return
	}
	pki := l.PKI()
	for _, pair := range [][2]string{{pki.CACertFile(), pki.CAKeyFile()}, {pki.ServingCertFile(), pki.ServingKeyFile()}, {pki.AdminCertFile(), pki.AdminKeyFile()}} {
		if _, err := tls.LoadX509KeyPair(pair[0], pair[1]); err != nil {
			t.Errorf("%s and %s after the power cut: %v", pair[0], pair[1], err)
		}
	}
	tokens, err := tokenfile.NewCSV(l.TokensFile())
	if err != nil {
		t.Errorf("%s after the power cut: %v", l.TokensFile(), err)
	} else if token, err := os.ReadFile(l.AppTokenFile()); err != nil {
		t.Error(err)
	} else if resp, ok, _ := tokens.AuthenticateToken(context.Background(), strings.TrimSpace(string(token))); !ok || resp.User.GetName() != standalone.AppUser {
		t.Errorf("the token of %s does not authenticate as %s with %s", l.AppTokenFile(), standalone.AppUser, l.TokensFile())
	}
	if cfg, err := clientcmd.BuildConfigFromFlags("", l.Kubeconfig()); err != nil {
		t.Errorf("%s after the power cut: %v", l.Kubeconfig(), err)
	} else if _, err := tls.X509KeyPair(cfg.CertData, cfg.KeyData); err != nil || len(cfg.CAData) == 0 {
		t.Errorf("%s after the power cut: admin certificate %v, CA %d bytes", l.Kubeconfig(), err, len(cfg.CAData))
	}
	var record struct{ DatastoreID string }
	if data, err := os.ReadFile(l.DatastoreRecord()); err != nil || json.Unmarshal(data, &record) != nil || record.DatastoreID == "" {
		t.Errorf("%s after the power cut: %q %v", l.DatastoreRecord(), data, err)
	}
}

// appConfig authenticates with the application token instead of the admin
// certificate.
func appConfig(admin *rest.Config, token string) *rest.Config {
	return &rest.Config{Host: admin.Host, BearerToken: strings.TrimSpace(token), TLSClientConfig: rest.TLSClientConfig{CAData: admin.CAData}, QPS: -1, Burst: -1}
}

// ofrepBulk asks for an OFREP bulk evaluation of namespace.
func ofrepBulk(cfg *rest.Config, namespace string) (int, string) {
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := client.Post(cfg.Host+"/namespaces/"+namespace+"/ofrep/v1/evaluate/flags", "application/json", strings.NewReader(`{"context":{"targetingKey":"u"}}`))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	return resp.StatusCode, body.String()
}

// diskFlag is a flag of the disk tests.
func diskFlag(name string) *v1beta1.Flag {
	return &v1beta1.Flag{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1beta1.FlagSpec{
			Type:           v1beta1.FlagTypeBoolean,
			Variants:       []v1beta1.Variant{{Name: "on", Value: raw(true)}, {Name: "off", Value: raw(false)}},
			DefaultVariant: "off",
		},
	}
}

// flagNames lists the flags of namespace.
func flagNames(t *testing.T, client clientset.Interface, namespace string) map[string]bool {
	t.Helper()
	list, err := client.FlagpoleV1beta1().Flags(namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range list.Items {
		names[f.Name] = true
	}
	return names
}

// Each way the datastore was found damaged or lost is one line naming the
// file, the problem and the remedy, in seconds — not a panic with every
// goroutine's stack, a SIGBUS crash, a minute's hang, or a start with no
// flags; what etcd repairs or survives still starts, with every flag.
func testDamagedDatastore(t *testing.T, bin string) {
	const ns, flags = "disk", 20
	base := filepath.Join(t.TempDir(), "base")
	s := startBinaryIn(t, bin, base)
	client := clientset.NewForConfigOrDie(s.Config)
	for i := range flags {
		if _, err := client.FlagpoleV1beta1().Flags(ns).Create(context.Background(), diskFlag(fmt.Sprintf("f%02d", i)), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	etcdDir := standalone.Layout{DataDir: base}.EtcdDir()
	db, walDir := datadir.ToBackendFileName(etcdDir), datadir.ToWALDir(etcdDir)
	wals, err := filepath.Glob(filepath.Join(walDir, "*.wal"))
	if err != nil || len(wals) != 1 {
		t.Fatalf("WAL files %v: %v", wals, err)
	}
	walFile := wals[0]
	keysRoot := keyBucketRoot(t, db)
	rel := func(dir, path string) string {
		return filepath.Join(dir, strings.TrimPrefix(path, base))
	}

	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		args   []string
		// want is what the one error line says; none: the server starts
		// with every flag (wantFlags of them).
		want      func(dir string) []string
		wantFlags int
	}{
		{name: "4 KiB of garbage in the database",
			damage: func(t *testing.T, dir string) { overwrite(t, rel(dir, db), int64(keysRoot)*4096, 4096) },
			want: func(dir string) []string {
				return []string{rel(dir, db) + ": assertion failed: Page expected to be: " + fmt.Sprint(keysRoot)}
			}},
		{name: "database truncated",
			damage: func(t *testing.T, dir string) { truncateFile(t, rel(dir, db), 32<<10) },
			want: func(dir string) []string {
				return []string{rel(dir, db) + ": the database is truncated: the file has 32768 bytes, its pages need"}
			}},
		{name: "WAL directory deleted",
			damage: func(t *testing.T, dir string) { removeAll(t, rel(dir, walDir)) },
			want: func(dir string) []string {
				return []string{rel(dir, walDir) + ": the write-ahead log is missing (no *.wal file) although the database " + rel(dir, db) + " exists"}
			}},
		{name: "WAL CRC mismatch",
			damage: func(t *testing.T, dir string) {
				overwrite(t, rel(dir, walFile), etcdwal.EntryPayloadEnd(t, walFile, 10)-4, 4)
			},
			want: func(dir string) []string {
				return []string{rel(dir, walDir) + ": the write-ahead log is damaged: walpb: crc mismatch", "in file '" + filepath.Base(walFile) + "' at position"}
			}},
		{name: "member deleted",
			damage: func(t *testing.T, dir string) { removeAll(t, rel(dir, datadir.ToMemberDir(etcdDir))) },
			want: func(dir string) []string {
				return []string{"the datastore is lost: " + rel(dir, standalone.Layout{DataDir: base}.DatastoreRecord()), "--" + standalone.StartFreshFlag}
			}},
		// What etcd repairs or survives, or what the operator asked for.
		{name: "member deleted, told to start fresh", args: []string{"--" + standalone.StartFreshFlag}, wantFlags: 0,
			damage: func(t *testing.T, dir string) { removeAll(t, rel(dir, datadir.ToMemberDir(etcdDir))) }},
		{name: "torn write at the WAL's end", wantFlags: flags,
			damage: func(t *testing.T, dir string) { truncateFile(t, rel(dir, walFile), dataLength(t, walFile)-64) }},
		{name: "first meta page of the database overwritten", wantFlags: flags,
			damage: func(t *testing.T, dir string) { overwrite(t, rel(dir, db), 0, 4096) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "data")
			if out, err := exec.Command("cp", "-a", base, dir).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v %s", err, out)
			}
			tc.damage(t, dir)
			if tc.want == nil {
				s := startBinaryIn(t, bin, dir, tc.args...)
				if got := flagNames(t, clientset.NewForConfigOrDie(s.Config), ns); len(got) != tc.wantFlags {
					t.Errorf("%d flags after the restart, want %d", len(got), tc.wantFlags)
				}
				if err := s.stop(t); err != nil {
					t.Errorf("stop: %v", err)
				}
				return
			}
			start := time.Now()
			s := launchBinary(t, bin, dir, tc.args...)
			err := s.waitExit(t, 20*time.Second)
			took := time.Since(start)
			log := s.Log.String()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Errorf("exit %v, want status 1", err)
			}
			var lines []string
			for _, l := range strings.Split(log, "\n") {
				if strings.Contains(l, `"command failed"`) {
					lines = append(lines, l)
				}
			}
			if len(lines) != 1 {
				t.Fatalf("%d error lines, want one; log:\n%s", len(lines), tail(log))
			}
			for _, want := range append(tc.want(dir), "Restore "+rel(dir, etcdDir)+" from a backup ("+standalone.RestoreDocs+")") {
				if !strings.Contains(lines[0], want) {
					t.Errorf("the error line does not say %q:\n%s", want, lines[0])
				}
			}
			for _, crash := range []string{"panic", "goroutine ", "SIGBUS", "fatal error"} {
				if strings.Contains(log, crash) {
					t.Errorf("the log shows a crash (%q):\n%s", crash, tail(log))
				}
			}
			t.Logf("refused in %s: %s", took.Round(time.Millisecond), lines[0])
		})
	}
}

// keyBucketRoot is the page of the root of etcd's key bucket in db.
func keyBucketRoot(t *testing.T, db string) uint64 {
	t.Helper()
	bdb, err := bolt.Open(db, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	var root uint64
	err = bdb.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(schema.Key.Name()); b != nil {
			root = uint64(b.Root())
		}
		return nil
	})
	if err != nil || root < 2 {
		t.Fatalf("the key bucket's root page in %s: %d, %v", db, root, err)
	}
	return root
}

// overwrite writes n bytes of garbage into file at off.
func overwrite(t *testing.T, file string, off int64, n int) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	junk := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, (n+3)/4)[:n]
	if _, err := f.WriteAt(junk, off); err != nil {
		t.Fatal(err)
	}
}

func truncateFile(t *testing.T, file string, size int64) {
	t.Helper()
	if err := os.Truncate(file, size); err != nil {
		t.Fatal(err)
	}
}

func removeAll(t *testing.T, path string) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
}

// dataLength is a WAL segment's length without its preallocated zeros.
func dataLength(t *testing.T, file string) int64 {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(bytes.TrimRight(data, "\x00")))
}

// A disk that fills while writers, readers and evaluations run: writes get
// 507 with the reason once the free space is below the threshold, reads and
// evaluations go on answering, the process lives, and every write it
// acknowledged is there once space is freed, and after a restart.
func testDiskFull(t *testing.T, bin string) {
	const ns = "disk"
	const threshold = standalone.DefaultMinFreeBytes
	fs := scratchfs.Tmpfs(t, "512m")
	dataDir := filepath.Join(fs.Dir, "data")
	s := startBinaryIn(t, bin, dataDir)
	admin := clientset.NewForConfigOrDie(s.Config)
	token, err := os.ReadFile(standalone.Layout{DataDir: dataDir}.AppTokenFile())
	if err != nil {
		t.Fatal(err)
	}
	app := appConfig(s.Config, string(token))
	appClient := clientset.NewForConfigOrDie(app)
	createFlag(t, admin, ns, diskFlag("kill-switch"))

	var (
		mu         sync.Mutex
		acked      = map[string]bool{}
		lastPatch  string
		refused    int
		reads      int
		evals      int
		unexpected []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(unexpected) < 20 {
			unexpected = append(unexpected, fmt.Sprintf(format, args...))
		}
	}
	// write handles a write's error: nil (acknowledged), a 507 that says
	// why, or something unexpected.
	write := func(what string, err error) bool {
		if err == nil {
			return true
		}
		if apierrors.ReasonForError(err) == "InsufficientStorage" && strings.Contains(err.Error(), "embedded etcd's disk is nearly full") {
			mu.Lock()
			refused++
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
			return false
		}
		fail("%s: %v", what, err)
		return false
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				name := fmt.Sprintf("w%d-%05d", w, i)
				if _, err := admin.FlagpoleV1beta1().Flags(ns).Create(context.Background(), diskFlag(name), metav1.CreateOptions{}); write("create "+name, err) {
					mu.Lock()
					acked[name] = true
					mu.Unlock()
				}
			}
		})
	}
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			desc := fmt.Sprintf("patch %d", i)
			patch := fmt.Sprintf(`{"spec":{"description":%q}}`, desc)
			if _, err := admin.FlagpoleV1beta1().Flags(ns).Patch(context.Background(), "kill-switch", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); write("patch", err) {
				mu.Lock()
				lastPatch = desc
				mu.Unlock()
			}
		}
	})
	wg.Go(func() {
		for ctx.Err() == nil {
			_, err := admin.FlagpoleV1beta1().Flags(ns).Get(context.Background(), "kill-switch", metav1.GetOptions{})
			if err == nil {
				_, err = admin.FlagpoleV1beta1().Flags(ns).List(context.Background(), metav1.ListOptions{Limit: 50})
			}
			if err != nil {
				fail("read: %v", err)
				continue
			}
			mu.Lock()
			reads++
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	})
	wg.Go(func() {
		for ctx.Err() == nil {
			_, err := appClient.FlagpoleV1beta1().Flags(ns).Evaluate(context.Background(), "kill-switch", &v1beta1.EvaluationRequest{}, metav1.CreateOptions{})
			code, body := ofrepBulk(app, ns)
			if err != nil || code != http.StatusOK {
				fail("evaluate: %v; OFREP: %d %s", err, code, body)
				continue
			}
			mu.Lock()
			evals++
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	})
	counts := func() (int, int, int) {
		mu.Lock()
		defer mu.Unlock()
		return refused, reads, evals
	}

	// The disk fills, 16 MiB at a time, as a growing log would, until
	// half the threshold is left.
	time.Sleep(time.Second)
	for i := 0; available(t, fs.Dir) > threshold/2; i++ {
		if err := os.WriteFile(filepath.Join(fs.Dir, fmt.Sprintf("filler-%03d", i)), make([]byte, 16<<20), 0o600); err != nil {
			t.Fatalf("filling the disk: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	refusedAtFull, readsAtFull, evalsAtFull := counts()
	err = wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		r, rd, ev := counts()
		return r > refusedAtFull+10 && rd > readsAtFull+10 && ev > evalsAtFull+10, nil
	})
	if err != nil {
		r, rd, ev := counts()
		t.Errorf("with the disk full: %d writes refused, %d reads, %d evaluations since (want each to go on)", r-refusedAtFull, rd-readsAtFull, ev-evalsAtFull)
	}
	if s.exited() {
		t.Fatalf("the server died with the disk full: %v\n%s", s.waitErr, tail(s.Log.String()))
	}
	if code, body := get(t, s.Config, "/healthz/embedded-etcd-disk-space"); code != http.StatusInternalServerError || !strings.Contains(body, "nearly full") {
		t.Errorf("/healthz/embedded-etcd-disk-space with the disk full: %d %s", code, body)
	}
	if code, _ := get(t, s.Config, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz with the disk full: %d, want 200 (reads and evaluations are served)", code)
	}
	if metrics := scrape(t, s.Config); !strings.Contains(metrics, "\nflagpole_embedded_etcd_writes_refused 1\n") {
		t.Errorf("metrics with the disk full do not say writes are refused:\n%s", grepLines(metrics, "flagpole_embedded_etcd"))
	}

	// Space is freed: writes resume by themselves.
	fillers, _ := filepath.Glob(filepath.Join(fs.Dir, "filler-*"))
	for _, f := range fillers {
		removeAll(t, f)
	}
	err = wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		_, err := admin.FlagpoleV1beta1().Flags(ns).Create(context.Background(), diskFlag("after"), metav1.CreateOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Errorf("writes did not resume once space was freed: %v", err)
	}
	stop()
	wg.Wait()
	for _, u := range unexpected {
		t.Errorf("unexpected: %s", u)
	}
	t.Logf("%d writes acknowledged, %d refused with 507; %d reads, %d evaluations, none failed", len(acked), refused, reads, evals)
	if len(acked) == 0 || refused == 0 {
		t.Fatalf("%d writes acknowledged, %d refused: the test did not fill the disk under load", len(acked), refused)
	}
	for _, line := range []string{"Embedded etcd's disk is filling up", "Embedded etcd's disk is nearly full: refusing writes", "Embedded etcd's disk has room again: accepting writes"} {
		if !strings.Contains(s.Log.String(), line) {
			t.Errorf("the log does not say %q", line)
		}
	}

	checkAcked := func(when string, client clientset.Interface) {
		t.Helper()
		names := flagNames(t, client, ns)
		for name := range acked {
			if !names[name] {
				t.Errorf("%s: acknowledged flag %s is missing", when, name)
			}
		}
		f, err := client.FlagpoleV1beta1().Flags(ns).Get(context.Background(), "kill-switch", metav1.GetOptions{})
		if err != nil {
			t.Errorf("%s: %v", when, err)
		} else if f.Spec.Description != lastPatch {
			t.Errorf("%s: kill-switch says %q, want the last acknowledged patch, %q", when, f.Spec.Description, lastPatch)
		}
	}
	checkAcked("space freed", admin)
	if err := s.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	s = startBinaryIn(t, bin, dataDir)
	checkAcked("after a restart", clientset.NewForConfigOrDie(s.Config))
	if err := s.stop(t); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// available is the free space of dir's file system.
func available(t *testing.T, dir string) uint64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}

// get GETs path as the admin.
func get(t *testing.T, cfg *rest.Config, path string) (int, string) {
	t.Helper()
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(cfg.Host + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	return resp.StatusCode, body.String()
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
