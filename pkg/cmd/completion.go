package cmd

import (
	"os"
	"slices"

	genericoptions "k8s.io/apiserver/pkg/server/options"
	netutils "k8s.io/utils/net"

	"github.com/flagpole-dev/flagpole/pkg/standalone"
)

// completedOptions is Options with what the flags imply filled in.
type completedOptions struct {
	// Options as parsed, except that RecommendedOptions points at a copy
	// with the mode's defaults applied: the caller's Options are not changed.
	Options

	// embedEtcd is true when etcd runs in this process, under the data
	// directory: no --etcd-servers outside a pod, or --embedded-etcd.
	embedEtcd bool
	// standalone is true when there is no cluster to delegate to (no
	// --kubeconfig, --authentication-kubeconfig or --authorization-kubeconfig,
	// and not in a pod): a local CA authenticates the admin, static tokens
	// the applications, and upstream's admission plugins and
	// priority-and-fairness, which need a kube client, are off.
	standalone bool
	// layout is where standalone state lives under --data-dir.
	layout standalone.Layout
	// standaloneEnabledAdmission records --enable-admission-plugins given in
	// standalone mode, where they cannot run (Validate refuses them).
	standaloneEnabledAdmission []string
	// standaloneFairness is true when a standalone server runs priority and
	// fairness from its own configuration (--enable-priority-and-fairness,
	// true by default) rather than max-in-flight.
	standaloneFairness bool
}

// CompletedOptions are options Complete has filled in. Only Complete makes
// them (the pointer is unexported), so Validate, Config and Run always see
// the mode decided and its defaults applied, as in kube-apiserver.
type CompletedOptions struct {
	*completedOptions
}

func inPod() bool {
	return os.Getenv("KUBERNETES_SERVICE_HOST") != "" && os.Getenv("KUBERNETES_SERVICE_PORT") != ""
}

// Complete chooses the mode from the parsed flags and fills in what it
// implies. It writes nothing: files and processes are Config's business,
// after Validate has passed.
func (o *Options) Complete() (CompletedOptions, error) {
	if err := o.ComponentGlobalsRegistry.Set(); err != nil {
		return CompletedOptions{}, err
	}
	c := &completedOptions{Options: *o, layout: standalone.Layout{DataDir: o.DataDir}}
	rec := copyRecommendedOptions(o.RecommendedOptions)
	c.RecommendedOptions = rec
	if rec.SecureServing.ServerCert.CertDirectory == "" {
		rec.SecureServing.ServerCert.CertDirectory = c.layout.CertificatesDir()
	}

	c.embedEtcd = o.EmbeddedEtcd || (len(rec.Etcd.StorageConfig.Transport.ServerList) == 0 && !inPod())
	c.standalone = !inPod() &&
		rec.CoreAPI.CoreAPIKubeconfigPath == "" &&
		rec.Authentication.RemoteKubeConfigFile == "" &&
		rec.Authorization.RemoteKubeConfigFile == ""
	if rec.SecureServing.BindAddress == nil {
		rec.SecureServing.BindAddress = netutils.ParseIPSloppy("0.0.0.0")
		if c.standalone {
			// Standalone's serving certificate names only this host, and its
			// admin kubeconfig points at 127.0.0.1.
			rec.SecureServing.BindAddress = netutils.ParseIPSloppy("127.0.0.1")
		}
	}
	if !c.standalone {
		return CompletedOptions{c}, nil
	}

	// Standalone: no cluster to delegate to. The CoreAPI options would demand
	// an in-cluster config, so they go; so do upstream's admission plugins
	// (namespace lifecycle, webhooks, admission policies), which need a kube
	// client and informers. Priority and fairness would read its
	// configuration through that client: Config gives it one from memory
	// instead (pkg/fairness), so the options must not ask for a client.
	rec.CoreAPI = nil
	c.standaloneFairness = rec.Features.EnablePriorityAndFairness
	rec.Features.EnablePriorityAndFairness = false
	c.standaloneEnabledAdmission = rec.Admission.EnablePlugins
	rec.Admission = nil
	rec.Authentication.RemoteKubeConfigFileOptional = true
	rec.Authentication.SkipInClusterLookup = true
	rec.Authorization.RemoteKubeConfigFileOptional = true
	rec.Authorization.AlwaysAllowGroups = []string{standalone.AdminGroup}

	// The files are created by Config; only their names are needed here.
	pki := c.layout.PKI()
	rec.Authentication.ClientCert.ClientCA = pki.CACertFile()
	if keyCert := &rec.SecureServing.ServerCert.CertKey; keyCert.CertFile == "" && keyCert.KeyFile == "" {
		keyCert.CertFile, keyCert.KeyFile = pki.ServingCertFile(), pki.ServingKeyFile()
	}
	return CompletedOptions{c}, nil
}

// copyRecommendedOptions copies what Complete and Config change of the
// recommended options, so that the parsed options stay as they were parsed.
func copyRecommendedOptions(in *genericoptions.RecommendedOptions) *genericoptions.RecommendedOptions {
	out := *in
	secureServing := *in.SecureServing
	secureServingOptions := *in.SecureServing.SecureServingOptions
	secureServing.SecureServingOptions = &secureServingOptions
	out.SecureServing = &secureServing
	etcd := *in.Etcd
	out.Etcd = &etcd
	authentication := *in.Authentication
	out.Authentication = &authentication
	authorization := *in.Authorization
	authorization.AlwaysAllowGroups = slices.Clone(in.Authorization.AlwaysAllowGroups)
	out.Authorization = &authorization
	features := *in.Features
	out.Features = &features
	return &out
}

// servingHosts are the names standalone's self-issued serving certificate
// carries.
func (o *completedOptions) servingHosts() []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	for _, h := range o.TLSSANs {
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts
}
