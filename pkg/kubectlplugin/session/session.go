// Package session is what every command of one kubectl-flagpole invocation
// shares: the user's kubeconfig flags (k8s.io/cli-runtime's ConfigFlags:
// --kubeconfig, --context, -n and the rest kubectl has), the clients made
// from them, the terminal, and the clock.
package session

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/moby/term"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/exit"
)

// The plugin's client-side rate limit.
const (
	ClientQPS   = 50
	ClientBurst = 100
)

// FieldManager is the field manager of the plugin's writes: managed fields
// and the audit log say which changes it made.
const FieldManager = "kubectl-flagpole"

// Session holds one invocation's configuration and clients.
type Session struct {
	genericiooptions.IOStreams
	// Config are kubectl's connection flags.
	Config *genericclioptions.ConfigFlags
	// Now is the clock: times left and ages are shown against it.
	Now func() time.Time
	// IsTerminal says whether In is a terminal one may ask a question on.
	IsTerminal func() bool
}

// New returns a session on streams.
func New(streams genericiooptions.IOStreams) *Session {
	return &Session{
		IOStreams: streams,
		Config:    genericclioptions.NewConfigFlags(true).WithWarningPrinter(streams),
		Now:       time.Now,
		IsTerminal: func() bool {
			f, ok := streams.In.(*os.File)
			return ok && term.IsTerminal(f.Fd())
		},
	}
}

// AddFlags adds kubectl's connection flags.
func (s *Session) AddFlags(fs *pflag.FlagSet) {
	s.Config.AddFlags(fs)
}

// RESTConfig is the user's client configuration, as kubectl would use it.
func (s *Session) RESTConfig() (*rest.Config, error) {
	cfg, err := s.Config.ToRESTConfig()
	if err != nil {
		return nil, exit.Wrap(exit.Failed, "check --kubeconfig and --context (kubectl config view)", err)
	}
	cfg.UserAgent = "kubectl-flagpole"
	// An import applies a request per object: client-go's default of 5
	// requests a second would make one of a hundred flags take twenty
	// seconds. The server's own flow control (priority and fairness, or
	// max-in-flight) is what protects it.
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = ClientQPS, ClientBurst
	}
	return cfg, nil
}

// Client is the generated Flagpole clientset with the user's credentials.
func (s *Session) Client() (clientset.Interface, error) {
	cfg, err := s.RESTConfig()
	if err != nil {
		return nil, err
	}
	return clientset.NewForConfig(cfg)
}

// Kube is a Kubernetes clientset with the user's credentials (for access
// reviews and the OpenFeature Operator's objects).
func (s *Session) Kube() (kubernetes.Interface, error) {
	cfg, err := s.RESTConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// Namespace is the namespace the command works in: -n, else the
// kubeconfig context's, else "default".
func (s *Session) Namespace() (string, error) {
	ns, _, err := s.Config.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", exit.Wrap(exit.Failed, "check --kubeconfig and --context (kubectl config view)", err)
	}
	return ns, nil
}

// Scope is what a command working in one namespace needs: the namespace
// and the clientset.
type Scope struct {
	Namespace string
	Client    clientset.Interface
}

// Scope resolves the namespace (Namespace) and makes the client (Client).
func (s *Session) Scope() (Scope, error) {
	ns, err := s.Namespace()
	if err != nil {
		return Scope{}, err
	}
	client, err := s.Client()
	return Scope{Namespace: ns, Client: client}, err
}

// OutputFormat is the -o value of pf, empty when not given.
func OutputFormat(pf *genericclioptions.PrintFlags) string {
	if pf.OutputFormat == nil {
		return ""
	}
	return *pf.OutputFormat
}

// Confirm asks question on the terminal and returns nil for yes. Without a
// terminal it refuses, telling the user to pass --yes: a script never
// blocks on a prompt nobody answers.
func (s *Session) Confirm(question string) error {
	if !s.IsTerminal() {
		return exit.New(exit.Cancelled, "pass --yes to confirm without a terminal", "not confirmed, nothing changed: there is no terminal to ask %q on", question)
	}
	fmt.Fprintf(s.ErrOut, "%s [y/N] ", question)
	answer, err := bufio.NewReader(s.In).ReadString('\n')
	if err != nil && err != io.EOF {
		return err
	}
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return exit.New(exit.Cancelled, "", "not confirmed: nothing changed")
}
