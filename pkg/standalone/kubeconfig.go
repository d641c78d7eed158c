package standalone

import (
	"os"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/flagpole-dev/flagpole/pkg/durable"
)

// ContextName is the kubeconfig context the admin kubeconfig selects.
const ContextName = "flagpole"

// WriteAdminKubeconfig writes a kubeconfig for the admin certificate that
// talks to server and trusts the local CA; everything is embedded so the file
// can be copied elsewhere. It is written durably (package durable), readable
// by the owner only, as clientcmd.WriteToFile would make it.
func (p *PKI) WriteAdminKubeconfig(path, server string) error {
	caPEM, err := p.CAPEM()
	if err != nil {
		return err
	}
	certPEM, err := os.ReadFile(p.AdminCertFile())
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(p.AdminKeyFile())
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[ContextName] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[AdminUser] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts[ContextName] = &clientcmdapi.Context{Cluster: ContextName, AuthInfo: AdminUser, Namespace: "default"}
	cfg.CurrentContext = ContextName
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	return durable.WriteFile(path, data, 0o600)
}
