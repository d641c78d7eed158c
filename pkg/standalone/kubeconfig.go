package standalone

import (
	"os"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ContextName is the kubeconfig context the admin kubeconfig selects.
const ContextName = "flagpole"

// WriteAdminKubeconfig writes a kubeconfig for the admin certificate that
// talks to server and trusts the local CA; everything is embedded so the file
// can be copied elsewhere.
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
	return clientcmd.WriteToFile(*cfg, path)
}
