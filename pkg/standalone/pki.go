// Package standalone holds what Flagpole needs to run without a cluster: an
// embedded etcd, a local certificate authority with serving and admin
// certificates, and the admin kubeconfig.
package standalone

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
	"k8s.io/klog/v2"

	"github.com/flagpole-dev/flagpole/pkg/durable"
)

// AdminGroup is the group the admin certificate carries. Standalone
// authorization allows it, and only it, everything.
const AdminGroup = "system:masters"

// AdminUser is the user name of the admin certificate.
const AdminUser = "flagpole-admin"

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
	// A leaf certificate this close to expiry is issued anew at start-up.
	renewBefore = 30 * 24 * time.Hour
)

// PKI is the local certificate authority and the files it issued.
type PKI struct {
	Dir string

	caCert *x509.Certificate
	caKey  crypto.Signer
}

// File names under PKI.Dir.
func (p *PKI) CACertFile() string      { return filepath.Join(p.Dir, "ca.crt") }
func (p *PKI) CAKeyFile() string       { return filepath.Join(p.Dir, "ca.key") }
func (p *PKI) ServingCertFile() string { return filepath.Join(p.Dir, "serving.crt") }
func (p *PKI) ServingKeyFile() string  { return filepath.Join(p.Dir, "serving.key") }
func (p *PKI) AdminCertFile() string   { return filepath.Join(p.Dir, "admin.crt") }
func (p *PKI) AdminKeyFile() string    { return filepath.Join(p.Dir, "admin.key") }

// EnsurePKI loads the CA under dir, creating it on first use, and makes sure
// a serving certificate covering hosts and an admin client certificate exist.
// Certificates still valid for the same names are reused across restarts, so
// a kubeconfig written earlier keeps working.
func EnsurePKI(dir string, hosts []string) (*PKI, error) {
	if err := durable.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &PKI{Dir: dir}
	if err := p.loadOrCreateCA(); err != nil {
		return nil, err
	}
	if !p.leafUsable(p.ServingCertFile(), p.ServingKeyFile(), hosts) {
		certPEM, keyPEM, err := p.Issue(x509.ExtKeyUsageServerAuth, pkix.Name{CommonName: "flagpole-apiserver"}, hosts)
		if err != nil {
			return nil, err
		}
		if err := writePair(p.ServingCertFile(), p.ServingKeyFile(), certPEM, keyPEM); err != nil {
			return nil, err
		}
		klog.InfoS("Issued serving certificate", "file", p.ServingCertFile(), "hosts", hosts)
	}
	if !p.leafUsable(p.AdminCertFile(), p.AdminKeyFile(), nil) {
		certPEM, keyPEM, err := p.Issue(x509.ExtKeyUsageClientAuth, pkix.Name{CommonName: AdminUser, Organization: []string{AdminGroup}}, nil)
		if err != nil {
			return nil, err
		}
		if err := writePair(p.AdminCertFile(), p.AdminKeyFile(), certPEM, keyPEM); err != nil {
			return nil, err
		}
		klog.InfoS("Issued admin client certificate", "file", p.AdminCertFile(), "user", AdminUser, "group", AdminGroup)
	}
	return p, nil
}

func (p *PKI) loadOrCreateCA() error {
	certPEM, certErr := readPEM(p.CACertFile())
	keyPEM, keyErr := readPEM(p.CAKeyFile())
	if errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist) {
		return p.createCA()
	}
	// A half-written, damaged or unreadable CA is not silently replaced:
	// every certificate and kubeconfig issued from it would stop working.
	unusable := func(problem string) error {
		return fmt.Errorf("local CA in %s is unusable: %s. Restore %s and %s from a backup, or remove both to start a new CA "+
			"(certificates and kubeconfigs issued by the old one then stop working; the server writes a new admin kubeconfig)",
			p.Dir, problem, filepath.Base(p.CACertFile()), filepath.Base(p.CAKeyFile()))
	}
	if certErr != nil || keyErr != nil {
		return unusable(errors.Join(certErr, keyErr).Error())
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return unusable(fmt.Sprintf("%s and %s: %v", p.CACertFile(), p.CAKeyFile(), err))
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return unusable(p.CAKeyFile() + " is not a signing key")
	}
	p.caCert, p.caKey = pair.Leaf, signer
	return nil
}

func (p *PKI) createCA() error {
	signer, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caCert, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: "flagpole-ca"}, signer)
	if err != nil {
		return err
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(signer)
	if err != nil {
		return err
	}
	certPEM, err := certutil.EncodeCertificates(caCert)
	if err != nil {
		return err
	}
	if err := writePair(p.CACertFile(), p.CAKeyFile(), certPEM, keyPEM); err != nil {
		return err
	}
	p.caCert, p.caKey = caCert, signer
	klog.InfoS("Created local certificate authority", "file", p.CACertFile())
	return nil
}

// readPEM reads a PEM file, and says so when it is empty — what a file
// written without fsync is after a power cut — rather than leaving a parser
// to report "no PEM data".
func readPEM(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%s is empty (0 bytes)", path)
	}
	return data, nil
}

// leafUsable reports whether a certificate and its key exist, match, were
// issued by this CA, are not close to expiry and cover every host asked
// for. A pair that exists but cannot be used (empty, damaged, not matching)
// is logged: it is issued anew, which loses nothing, since the CA vouches
// for the new one as it did for the old.
func (p *PKI) leafUsable(certFile, keyFile string, hosts []string) bool {
	certPEM, certErr := readPEM(certFile)
	keyPEM, keyErr := readPEM(keyFile)
	if errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist) {
		return false
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err := errors.Join(certErr, keyErr, err); err != nil {
		klog.InfoS("Certificate or key unusable; issuing a new pair", "certificate", certFile, "key", keyFile, "err", err)
		return false
	}
	c := pair.Leaf
	if c.CheckSignatureFrom(p.caCert) != nil || time.Until(c.NotAfter) < renewBefore {
		return false
	}
	for _, h := range hosts {
		if c.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// Issue signs a new leaf certificate for subject with the given usage; hosts
// become DNS or IP subject alternative names. It returns PEM certificate and key.
func (p *PKI) Issue(usage x509.ExtKeyUsage, subject pkix.Name, hosts []string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).SetInt64(math.MaxInt64))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(leafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if !slices.Contains(tmpl.DNSNames, h) {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, key.Public(), p.caKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	if certPEM, err = certutil.EncodeCertificates(cert, p.caCert); err != nil {
		return nil, nil, err
	}
	if keyPEM, err = keyutil.MarshalPrivateKeyToPEM(key); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// CAPEM returns the CA certificate in PEM form.
func (p *PKI) CAPEM() ([]byte, error) {
	return certutil.EncodeCertificates(p.caCert)
}

// writePair writes a key and its certificate, each durably, with the modes
// upstream's keyutil.WriteKey and certutil.WriteCert give them: the key first,
// so that a certificate on disk always has its key (a crash in between
// leaves a pair leafUsable refuses, which is issued anew).
func writePair(certFile, keyFile string, certPEM, keyPEM []byte) error {
	if err := durable.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	return durable.WriteFile(certFile, certPEM, 0o644)
}
