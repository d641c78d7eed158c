package standalone

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"
)

func TestEnsurePKI(t *testing.T) {
	dir := t.TempDir()
	p, err := EnsurePKI(dir, []string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	serving := mustCert(t, p.ServingCertFile())
	if err := serving.VerifyHostname("127.0.0.1"); err != nil {
		t.Error(err)
	}
	admin := mustCert(t, p.AdminCertFile())
	if admin.Subject.CommonName != AdminUser || !slices.Equal(admin.Subject.Organization, []string{AdminGroup}) {
		t.Errorf("admin subject = %v", admin.Subject)
	}
	roots := x509.NewCertPool()
	roots.AddCert(mustCert(t, p.CACertFile()))
	if _, err := admin.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("admin certificate does not verify against the CA: %v", err)
	}
	if info, _ := os.Stat(filepath.Join(dir, "ca.key")); info.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode %v", info.Mode().Perm())
	}

	// A restart with the same names reuses everything.
	if _, err := EnsurePKI(dir, []string{"localhost", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if again := mustCert(t, p.ServingCertFile()); !again.Equal(serving) {
		t.Error("serving certificate was reissued although it still covers the hosts")
	}
	if again := mustCert(t, p.AdminCertFile()); !again.Equal(admin) {
		t.Error("admin certificate was reissued, breaking written kubeconfigs")
	}

	// A new --tls-san reissues the serving certificate from the same CA.
	if _, err := EnsurePKI(dir, []string{"localhost", "127.0.0.1", "api.flagpole.svc"}); err != nil {
		t.Fatal(err)
	}
	reissued := mustCert(t, p.ServingCertFile())
	if err := reissued.VerifyHostname("api.flagpole.svc"); err != nil {
		t.Error(err)
	}
	if again := mustCert(t, p.AdminCertFile()); !again.Equal(admin) {
		t.Error("admin certificate changed with the serving names")
	}

	// Another identity issued by the CA (what tests use for a non-admin user).
	certPEM, _, err := p.Issue(x509.ExtKeyUsageClientAuth, pkix.Name{CommonName: "dev", Organization: []string{"developers"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := certutil.ParseCertsPEM(certPEM)
	if err != nil || certs[0].Subject.CommonName != "dev" {
		t.Fatalf("issued %v, %v", certs, err)
	}
}

func TestEnsurePKIRefusesHalfACA(t *testing.T) {
	dir := t.TempDir()
	if _, err := EnsurePKI(dir, []string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsurePKI(dir, []string{"localhost"}); err == nil {
		t.Fatal("a CA certificate without its key must not be silently replaced")
	}
}

// A CA file left empty (a crash while it was written, before writes were
// durable) is an error that names it and says what to do; a damaged leaf
// certificate or key is issued anew from the CA, which loses nothing.
func TestEnsurePKIDamagedFiles(t *testing.T) {
	for _, file := range []string{"ca.crt", "ca.key"} {
		t.Run(file, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := EnsurePKI(dir, []string{"localhost"}); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(filepath.Join(dir, file), 0); err != nil {
				t.Fatal(err)
			}
			_, err := EnsurePKI(dir, []string{"localhost"})
			for _, want := range []string{filepath.Join(dir, file) + " is empty (0 bytes)", "Restore ca.crt and ca.key from a backup, or remove both"} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("EnsurePKI: %v, want an error saying %q", err, want)
				}
			}
		})
	}
	// A key that is not the certificate's.
	dir := t.TempDir()
	p, err := EnsurePKI(dir, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	admin := mustCert(t, p.AdminCertFile())
	otherKey, err := os.ReadFile(p.ServingKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.AdminKeyFile(), otherKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p.ServingCertFile(), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsurePKI(dir, []string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	if again := mustCert(t, p.AdminCertFile()); again.Equal(admin) {
		t.Error("an admin certificate whose key does not match it was kept")
	}
	if _, err := tls.LoadX509KeyPair(p.AdminCertFile(), p.AdminKeyFile()); err != nil {
		t.Errorf("reissued admin pair: %v", err)
	}
	if _, err := tls.LoadX509KeyPair(p.ServingCertFile(), p.ServingKeyFile()); err != nil {
		t.Errorf("reissued serving pair: %v", err)
	}
}

func TestWriteAdminKubeconfig(t *testing.T) {
	dir := t.TempDir()
	p, err := EnsurePKI(dir, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := p.WriteAdminKubeconfig(path, "https://127.0.0.1:8443"); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.1:8443" || len(cfg.CAData) == 0 || len(cfg.CertData) == 0 || len(cfg.KeyData) == 0 {
		t.Errorf("kubeconfig = %+v", cfg)
	}
}

func mustCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	certs, err := certutil.CertsFromFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}
