// Package servingcert lets Flagpole keep its own serving certificate, as
// webhook and aggregated API servers commonly do without cert-manager
// (controller-runtime's cert-controller, OpenShift's service CA): a CA and a
// serving key pair in one Secret of the install's namespace.
//
//   - content.go: every replica serves the key pair of that Secret, read
//     through an informer of that one Secret and handed to upstream's
//     dynamic serving certificates, so a new pair is served without a
//     restart;
//   - controller.go: the elected leader creates the Secret, the CA and the
//     key pair when they are missing (taking over a Secret that another
//     tool filled), writes the CA bundle into the caBundle of every
//     Flagpole APIService, renews the key pair and rotates the CA before
//     they expire, trusting old and new CA during the change;
//   - schedule.go: when each of those happens;
//   - pki.go: making and reading the certificates.
//
// The order that keeps every served certificate trusted: a new CA goes into
// ca.crt and every caBundle first; a key pair signed by it is written only
// once every APIService has held it for TrustDelay; a CA leaves the bundle
// only when it has expired, and with it every certificate it signed.
package servingcert

import corev1 "k8s.io/api/core/v1"

// Keys of the Secret.
const (
	// CACertKey holds every CA that is trusted now, oldest first: the
	// APIServices' caBundle, and what applications verify Flagpole with.
	CACertKey = "ca.crt"
	// CAKeyKey holds the private key of the newest CA of ca.crt, which
	// signs the serving certificate.
	CAKeyKey = "ca.key"
	// TLSCertKey and TLSKeyKey hold the serving certificate and its key.
	TLSCertKey = corev1.TLSCertKey
	TLSKeyKey  = corev1.TLSPrivateKeyKey
)

// Annotations the leader records on the Secret: since when every APIService
// has trusted the newest CA, which decides when a certificate it signs may
// be served.
const (
	trustedCAAnnotation    = "servingcert.flagpole.dev/trusted-ca"
	trustedSinceAnnotation = "servingcert.flagpole.dev/trusted-since"
)

// Modes of --serving-cert-mode.
const (
	// ModeSelfManaged: the server keeps its serving certificate in a Secret
	// (this package).
	ModeSelfManaged = "self-managed"
	// ModeFiles: the server serves --tls-cert-file and --tls-private-key-file
	// (cert-manager, hack/deploy-certs.sh, or a self-signed certificate of
	// its own in --cert-dir), reloading them when they change.
	ModeFiles = "files"
)

// Modes are the values of --serving-cert-mode.
var Modes = []string{ModeSelfManaged, ModeFiles}
