package standalone

import "path/filepath"

// Layout is where standalone mode keeps its state under the data directory
// (--data-dir). It is the one description of those paths: the server, the
// tests and the benchmarks all find the files through it.
type Layout struct {
	// DataDir is the data directory itself.
	DataDir string
}

// PKI describes the local CA's files (see PKI); EnsurePKI creates them.
func (l Layout) PKI() *PKI { return &PKI{Dir: filepath.Join(l.DataDir, "pki")} }

// EtcdDir holds embedded etcd's data.
func (l Layout) EtcdDir() string { return filepath.Join(l.DataDir, "etcd") }

// DatastoreRecord records which datastore the data directory holds (see
// StartDatastore).
func (l Layout) DatastoreRecord() string { return filepath.Join(l.DataDir, "datastore.json") }

// EtcdSocketDir holds embedded etcd's client socket.
func (l Layout) EtcdSocketDir() string { return filepath.Join(l.DataDir, "run") }

// Kubeconfig is the admin kubeconfig.
func (l Layout) Kubeconfig() string { return filepath.Join(l.DataDir, "kubeconfig") }

// TokensFile is the static token file (see TokensFile).
func (l Layout) TokensFile() string { return filepath.Join(l.DataDir, TokensFile) }

// AppTokenFile holds the application token alone (see AppTokenFile).
func (l Layout) AppTokenFile() string { return filepath.Join(l.DataDir, AppTokenFile) }

// CertificatesDir is where delegated mode keeps a self-signed serving
// certificate when it is given none (--cert-dir's default).
func (l Layout) CertificatesDir() string { return filepath.Join(l.DataDir, "certificates") }
