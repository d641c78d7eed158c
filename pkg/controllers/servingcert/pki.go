package servingcert

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strconv"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// newSerial is a random 128-bit serial number (RFC 5280 allows 20 octets).
func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}

// newCA makes a self-signed CA valid for validity from now. Its name
// carries the time it was made, so that the CAs of a bundle can be told
// apart (as kube-apiserver's self-signed CAs do).
func newCA(now time.Time, validity time.Duration) (*x509.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "flagpole-serving-ca@" + strconv.FormatInt(now.Unix(), 10)},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return cert, keyPEM, nil
}

// newServingCert makes a key pair for hosts (DNS names or IP addresses)
// signed by ca, valid for validity from now but never past ca's expiry.
func newServingCert(now time.Time, validity time.Duration, ca *x509.Certificate, caKey crypto.Signer, hosts []string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if tmpl.NotAfter.After(ca.NotAfter) {
		tmpl.NotAfter = ca.NotAfter
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	if certPEM, err = certutil.EncodeCertificates(cert); err != nil {
		return nil, nil, err
	}
	if keyPEM, err = keyutil.MarshalPrivateKeyToPEM(key); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// caCertificates are the CA certificates in a PEM bundle; anything else in
// it (a damaged block, a leaf, a key) is left out.
func caCertificates(bundle []byte) []*x509.Certificate {
	var cas []*x509.Certificate
	for {
		var block *pem.Block
		block, bundle = pem.Decode(bundle)
		if block == nil {
			return cas
		}
		if block.Type != certutil.CertificateBlockType {
			continue
		}
		if c, err := x509.ParseCertificate(block.Bytes); err == nil && c.IsCA {
			cas = append(cas, c)
		}
	}
}

// encodeCertificates is certificates as one PEM bundle.
func encodeCertificates(certs []*x509.Certificate) []byte {
	out, err := certutil.EncodeCertificates(certs...)
	if err != nil {
		// EncodeCertificates fails only on a nil certificate.
		panic(err)
	}
	return out
}

// signerOf is the CA of cas whose key keyPEM is, and that key; nil if none.
func signerOf(cas []*x509.Certificate, keyPEM []byte) (*x509.Certificate, crypto.Signer) {
	if len(keyPEM) == 0 {
		return nil, nil
	}
	key, err := keyutil.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, nil
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil
	}
	for _, ca := range slices.Backward(cas) {
		if pub, ok := ca.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); ok && pub.Equal(signer.Public()) {
			return ca, signer
		}
	}
	return nil, nil
}

// servingCertificate is the certificate of a key pair that belongs
// together, or nil.
func servingCertificate(certPEM, keyPEM []byte) *x509.Certificate {
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil
	}
	return pair.Leaf
}

// signedBy reports whether c was signed by one of cas that is still valid.
func signedBy(c *x509.Certificate, cas []*x509.Certificate, now time.Time) bool {
	for _, ca := range cas {
		if now.Before(ca.NotAfter) && c.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}

// covers reports whether c names exactly hosts.
func covers(c *x509.Certificate, hosts []string) bool {
	var have []string
	have = append(have, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		have = append(have, ip.String())
	}
	want := slices.Clone(hosts)
	for i, h := range want {
		if ip := net.ParseIP(h); ip != nil {
			want[i] = ip.String()
		}
	}
	slices.Sort(have)
	slices.Sort(want)
	return slices.Equal(have, want)
}

// fingerprint names a certificate in annotations: the SHA-256 of its DER.
func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// contains reports whether cas holds c.
func contains(cas []*x509.Certificate, c *x509.Certificate) bool {
	return slices.ContainsFunc(cas, func(ca *x509.Certificate) bool { return bytes.Equal(ca.Raw, c.Raw) })
}

// describe is a certificate as logs name it.
func describe(c *x509.Certificate) string {
	if c == nil {
		return "none"
	}
	return fmt.Sprintf("%s (serial %x, until %s)", c.Subject.CommonName, c.SerialNumber, c.NotAfter.UTC().Format(time.RFC3339))
}
