package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	flagpoleapiserver "github.com/flagpole-dev/flagpole/pkg/apiserver"
)

func parse(t *testing.T, args ...string) *Options {
	t.Helper()
	o := NewOptions()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return o
}

func complete(t *testing.T, o *Options) CompletedOptions {
	t.Helper()
	c, err := o.Complete()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestModeSelection(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	dir := t.TempDir()

	o := complete(t, parse(t, "--data-dir", dir))
	if !o.embedEtcd || !o.standalone {
		t.Fatalf("no flags outside a pod: embedEtcd=%v localAuth=%v, want standalone", o.embedEtcd, o.standalone)
	}
	if err := o.Validate(); err != nil {
		t.Fatalf("standalone defaults do not validate: %v", err)
	}
	if free := o.EmbeddedEtcdMinFreeSpace.Value(); free != 128<<20 || o.StartFreshIfDatastoreLost {
		t.Errorf("--embedded-etcd-min-free-space defaults to %d, --start-fresh-if-datastore-lost to %v", free, o.StartFreshIfDatastoreLost)
	}
	if o := complete(t, parse(t, "--data-dir", dir, "--embedded-etcd-min-free-space", "1Gi", "--start-fresh-if-datastore-lost")); o.Validate() != nil ||
		o.EmbeddedEtcdMinFreeSpace.Value() != 1<<30 || !o.StartFreshIfDatastoreLost {
		t.Errorf("--embedded-etcd-min-free-space 1Gi --start-fresh-if-datastore-lost: %v, %v, %v", o.Validate(), o.EmbeddedEtcdMinFreeSpace.Value(), o.StartFreshIfDatastoreLost)
	}
	rec := o.RecommendedOptions
	if rec.CoreAPI != nil || rec.Admission != nil || rec.Features.EnablePriorityAndFairness {
		t.Error("standalone must drop CoreAPI, upstream admission and APF")
	}
	if rec.Authentication.ClientCert.ClientCA != filepath.Join(dir, "pki", "ca.crt") {
		t.Errorf("client CA = %q", rec.Authentication.ClientCert.ClientCA)
	}
	if rec.SecureServing.ServerCert.CertKey.CertFile != filepath.Join(dir, "pki", "serving.crt") {
		t.Errorf("serving cert = %q", rec.SecureServing.ServerCert.CertKey.CertFile)
	}
	if rec.SecureServing.BindPort != 8443 {
		t.Errorf("default port = %d", rec.SecureServing.BindPort)
	}

	// --kubeconfig, parsed after the options were built, selects delegated
	// authentication; --etcd-servers selects external storage.
	o = complete(t, parse(t, "--data-dir", dir, "--kubeconfig", "/k", "--etcd-servers", "http://127.0.0.1:2379"))
	if o.embedEtcd || o.standalone {
		t.Fatalf("delegated flags: embedEtcd=%v localAuth=%v", o.embedEtcd, o.standalone)
	}
	if o.RecommendedOptions.CoreAPI == nil || o.RecommendedOptions.Admission == nil {
		t.Error("delegated mode keeps CoreAPI and admission")
	}
	if o.RecommendedOptions.SecureServing.ServerCert.CertDirectory != filepath.Join(dir, "certificates") {
		t.Errorf("cert dir = %q", o.RecommendedOptions.SecureServing.ServerCert.CertDirectory)
	}

	// Either mode axis alone.
	o = complete(t, parse(t, "--data-dir", dir, "--authentication-kubeconfig", "/k"))
	if !o.embedEtcd || o.standalone {
		t.Errorf("--authentication-kubeconfig alone: embedEtcd=%v localAuth=%v", o.embedEtcd, o.standalone)
	}
}

func TestValidateRejects(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--embedded-etcd", "--etcd-servers", "http://127.0.0.1:2379"}, "exclude each other"},
		{[]string{"--enable-admission-plugins", "NamespaceLifecycle"}, "do not run standalone"},
		{[]string{"--goaway-chance", "0.5"}, "--goaway-chance"},
		{[]string{"--storage-media-type", "application/yaml"}, "--storage-media-type"},
		{[]string{"--storage-media-type", "text/plain"}, "--storage-media-type"},
		{[]string{"--secure-port", "0"}, "--secure-port 0"},
		{[]string{"--http1-secure-port", "-1"}, "--http1-secure-port -1: a port from 1 to 65535"},
		{[]string{"--http1-secure-port", "70000"}, "--http1-secure-port 70000"},
		{[]string{"--secure-port", "8443", "--http1-secure-port", "8443"}, "the same as --secure-port"},
		{[]string{"--max-ofrep-event-streams-per-user", "-1"}, "must not be negative"},
		{[]string{"--ofrep-cors-allowed-origins", "shop.example.com"}, `--ofrep-cors-allowed-origins: "shop.example.com": not an origin`},
		{[]string{"--ofrep-cors-allowed-origins", "=https://x.example"}, "empty namespace"},
		{[]string{"--start-fresh-if-datastore-lost", "--etcd-servers", "http://127.0.0.1:2379"}, "applies to embedded etcd only"},
		{[]string{"--embedded-etcd-min-free-space", "64Mi"}, "--embedded-etcd-min-free-space 64Mi: at least 80Mi"},
		{[]string{"--usage-flush-interval", "100ms"}, "--usage-flush-interval 100ms: at least 1s"},
		{[]string{"--stale-unused-period", "-1h"}, "must not be negative"},
		{[]string{"--lifecycle-lifetimes", "Temporary=1h"}, `"Temporary" is not a lifecycle kind`},
		{[]string{"--lifecycle-lifetimes", "Release=soon"}, `Release="soon": a duration`},
		{[]string{"--flag-revision-limit", "0"}, "--flag-revision-limit 0: at least 1"},
		{[]string{"--flag-revision-max-age", "10m"}, "--flag-revision-max-age 10m0s: at least 1h"},
		{[]string{"--serving-cert-mode", "cert-manager"}, `--serving-cert-mode "cert-manager": one of self-managed, files`},
		{[]string{"--serving-cert-mode", "self-managed"}, "--serving-cert-mode=self-managed needs a cluster"},
		{[]string{"--kubeconfig", "/k", "--serving-cert-mode", "self-managed", "--tls-cert-file", "/c", "--tls-private-key-file", "/k"}, "leave out --tls-cert-file"},
		{[]string{"--kubeconfig", "/k", "--serving-cert-mode", "self-managed", "--serving-cert-secret", "flagpole-serving-cert"}, "want <namespace>/<name>"},
		{[]string{"--kubeconfig", "/k", "--serving-cert-mode", "self-managed", "--serving-cert-secret", "Flagpole/x"}, "want <namespace>/<name>"},
		{[]string{"--kubeconfig", "/k", "--serving-cert-mode", "self-managed", "--serving-cert-validity", "10s"}, "at least 30s"},
		{[]string{"--kubeconfig", "/k", "--serving-cert-mode", "self-managed", "--serving-ca-validity", "1h", "--serving-cert-validity", "2h"}, "at least the serving certificate's"},
	} {
		o := complete(t, parse(t, append([]string{"--data-dir", t.TempDir()}, tc.args...)...))
		err := o.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}

// Self-managed mode in delegated mode, as artifacts/deploy runs it.
func TestServingCertModeValidates(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	o := complete(t, parse(t, "--data-dir", t.TempDir(), "--kubeconfig", "/k", "--etcd-servers", "http://127.0.0.1:2379",
		"--serving-cert-mode", "self-managed", "--serving-cert-secret", "flags/flagpole-serving-cert", "--serving-ca-validity", "2m", "--serving-cert-validity", "1m"))
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if ns, name, _ := splitSecretRef(o.ServingCertSecret); ns != "flags" || name != "flagpole-serving-cert" {
		t.Errorf("--serving-cert-secret read as %s/%s", ns, name)
	}
	if d := complete(t, parse(t, "--data-dir", t.TempDir())); d.ServingCertMode != "files" || d.ServingCertSecret != "flagpole-system/flagpole-serving-cert" {
		t.Errorf("defaults: --serving-cert-mode %s, --serving-cert-secret %s", d.ServingCertMode, d.ServingCertSecret)
	}
}

// Inside a pod, two replicas must never silently run two datastores.
func TestInPodNeedsExplicitStorage(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
	t.Setenv("KUBERNETES_SERVICE_PORT", "443")

	o := complete(t, parse(t, "--data-dir", t.TempDir()))
	if o.embedEtcd || o.standalone {
		t.Fatalf("in a pod: embedEtcd=%v localAuth=%v", o.embedEtcd, o.standalone)
	}
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "--etcd-servers is required") {
		t.Errorf("error = %v", err)
	}

	o = complete(t, parse(t, "--data-dir", t.TempDir(), "--embedded-etcd"))
	if !o.embedEtcd {
		t.Error("--embedded-etcd must embed etcd inside a pod")
	}
}

// Standalone's serving certificate names only this host: it listens on
// 127.0.0.1 unless told otherwise. Delegated mode keeps upstream's default.
func TestBindAddressDefault(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "127.0.0.1"},
		{[]string{"--bind-address", "0.0.0.0"}, "0.0.0.0"},
		{[]string{"--bind-address", "::"}, "::"},
		{[]string{"--kubeconfig", "/k"}, "0.0.0.0"},
		{[]string{"--kubeconfig", "/k", "--bind-address", "10.0.0.7"}, "10.0.0.7"},
	} {
		o := complete(t, parse(t, append([]string{"--data-dir", t.TempDir()}, tc.args...)...))
		if got := o.RecommendedOptions.SecureServing.BindAddress.String(); got != tc.want {
			t.Errorf("%v: bind address %s, want %s", tc.args, got, tc.want)
		}
	}
}

// Complete works on a copy: the options stay as parsed, so completing them
// again (or in the other mode) starts from the flags, not from the last
// completion's defaults.
func TestCompleteLeavesOptionsAsParsed(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	o := parse(t, "--data-dir", t.TempDir())
	c := complete(t, o)
	if !c.standalone || c.RecommendedOptions.CoreAPI != nil || c.RecommendedOptions.SecureServing.BindAddress == nil {
		t.Fatalf("standalone not completed: %+v", c.completedOptions)
	}
	rec := o.RecommendedOptions
	if rec.CoreAPI == nil || rec.Admission == nil || !rec.Features.EnablePriorityAndFairness {
		t.Error("Complete dropped CoreAPI, admission or APF from the parsed options")
	}
	if rec.SecureServing.BindAddress != nil || rec.SecureServing.ServerCert.CertDirectory != "" || rec.SecureServing.ServerCert.CertKey.CertFile != "" {
		t.Error("Complete filled serving defaults into the parsed options")
	}
	if rec.Authentication.ClientCert.ClientCA != "" || rec.Authentication.SkipInClusterLookup || len(rec.Authorization.AlwaysAllowGroups) != 1 {
		t.Errorf("Complete changed the parsed authentication/authorization options: client CA %q, skip lookup %v, always allow %v",
			rec.Authentication.ClientCert.ClientCA, rec.Authentication.SkipInClusterLookup, rec.Authorization.AlwaysAllowGroups)
	}
	if again := complete(t, o); again.completedOptions == c.completedOptions || !again.standalone {
		t.Error("a second Complete did not make its own completed options")
	}
}

// Complete and Validate only decide: invalid flags leave the data directory
// untouched (no PKI, no etcd, no lock).
func TestCompleteWritesNothing(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	dir := filepath.Join(t.TempDir(), "data")
	o := complete(t, parse(t, "--data-dir", dir, "--goaway-chance", "0.5"))
	if err := o.Validate(); err == nil {
		t.Fatal("--goaway-chance 0.5 validated")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("data directory after Complete and a failed Validate: %v, want it not created", err)
	}
}

// --storage-media-type chooses what etcd storage writes (protobuf unless
// told otherwise); either codec reads both encodings.
func TestStorageMediaType(t *testing.T) {
	f := &v1beta1.Flag{ObjectMeta: metav1.ObjectMeta{Name: "f", Namespace: "ns"}, Spec: v1beta1.FlagSpec{Type: v1beta1.FlagTypeBoolean}}
	internal := &flagpole.Flag{}
	if err := flagpoleapiserver.Scheme.Convert(f, internal, nil); err != nil {
		t.Fatal(err)
	}
	stored := map[string][]byte{}
	for _, tc := range []struct {
		args   []string
		prefix string
	}{
		{nil, "k8s\x00"},
		{[]string{"--storage-media-type", "application/vnd.kubernetes.protobuf"}, "k8s\x00"},
		{[]string{"--storage-media-type", "application/json"}, `{"kind":"Flag","apiVersion":"flagpole.dev/v1beta1"`},
	} {
		o := parse(t, tc.args...)
		etcd := *o.RecommendedOptions.Etcd
		if err := storageCodec(&etcd); err != nil {
			t.Fatal(err)
		}
		if o.RecommendedOptions.Etcd.StorageConfig.Codec != nil {
			t.Error("storageCodec changed the options it was given a copy of")
		}
		data, err := runtime.Encode(etcd.StorageConfig.Codec, internal)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(data), tc.prefix) {
			t.Errorf("%v: stored as %q, want it to start with %q", tc.args, data, tc.prefix)
		}
		stored[tc.prefix] = data
		for _, data := range stored {
			obj, err := runtime.Decode(etcd.StorageConfig.Codec, data)
			if got, ok := obj.(*flagpole.Flag); err != nil || !ok || got.Name != "f" || got.Spec.Type != flagpole.FlagTypeBoolean {
				t.Errorf("%v: reading %q: %#v, %v", tc.args, data, obj, err)
			}
		}
	}
}

// The lifecycle flags' defaults, and --lifecycle-lifetimes over them.
func TestLifecycleOptions(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	o := complete(t, parse(t, "--data-dir", t.TempDir()))
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	p := o.Lifecycle.stalePolicy()
	if !o.Lifecycle.UsageCounting || o.Lifecycle.UsageFlushInterval != time.Minute || p.UnusedPeriod != 7*24*time.Hour ||
		p.SingleVariantPeriod != 7*24*time.Hour || p.Lifetimes[flagpole.FlagLifecycleRelease] != 40*24*time.Hour ||
		p.Lifetimes[flagpole.FlagLifecycleKillSwitch] != 0 || o.Lifecycle.RevisionLimit != 20 || o.Lifecycle.RevisionMaxAge != 90*24*time.Hour {
		t.Errorf("defaults: %+v, policy %+v", o.Lifecycle, p)
	}
	o = complete(t, parse(t, "--data-dir", t.TempDir(), "--lifecycle-lifetimes", "Release=72h,Permission=1000h", "--usage-counting=false"))
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	p = o.Lifecycle.stalePolicy()
	if p.Lifetimes[flagpole.FlagLifecycleRelease] != 72*time.Hour || p.Lifetimes[flagpole.FlagLifecyclePermission] != 1000*time.Hour ||
		p.Lifetimes[flagpole.FlagLifecycleExperiment] != 40*24*time.Hour || o.Lifecycle.UsageCounting {
		t.Errorf("overridden: %+v, counting %v", p.Lifetimes, o.Lifecycle.UsageCounting)
	}
}
