//go:build node

// Package node holds the e2e tests against the real node (hack/node.sh up):
// Flagpole installed as a user installs it (kubectl apply -k artifacts/deploy
// alone), then what clusters do to it, with reads,
// writes and OFREP evaluations running throughout and every failure counted.
//
// The node's addresses exist only in its own network namespace, so the test
// binary runs there: TestMain starts itself again inside it (nsenter), and
// every request of the tests goes to an address of the node.
package node

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
)

// The node's facts the tests use; hack/node/lib.sh defines them.
const (
	nodeNetNS    = "/run/flagpole-node/netns"
	flagpoleNS   = "flagpole-system"
	apiService   = "v1beta1.flagpole.dev"
	servingHost  = "api.flagpole-system.svc"
	servingCert  = "flagpole-serving-cert"
	deployment   = "flagpole-apiserver"
	appNamespace = "node-e2e"
	appImage     = "localhost/flagpole-node/flagpole-app:dev"
	// nextImage is the second tag hack/node.sh builds of the same source,
	// for the upgrade.
	nextImage = "flagpole-apiserver:next"
)

// env is what every test uses.
var env struct {
	root       string // the repository
	kubeconfig string
	kubectl    string
	config     *rest.Config
	kube       kubernetes.Interface
	flagpole   clientset.Interface
	aggregator aggregator.Interface
}

// inNodeNetwork reports whether this process is in the node's network
// namespace.
func inNodeNetwork() (bool, error) {
	var node, self syscall.Stat_t
	if err := syscall.Stat(nodeNetNS, &node); err != nil {
		return false, fmt.Errorf("the node is not up (%v): run hack/node.sh up", err)
	}
	if err := syscall.Stat("/proc/self/ns/net", &self); err != nil {
		return false, err
	}
	return node.Ino == self.Ino && node.Dev == self.Dev, nil
}

func TestMain(m *testing.M) {
	in, err := inNodeNetwork()
	if err != nil {
		fmt.Fprintln(os.Stderr, "test/node:", err)
		os.Exit(1)
	}
	if !in {
		// Again, in the node's network namespace only (the files and mounts
		// stay the machine's).
		self, err := os.Executable()
		if err != nil {
			fmt.Fprintln(os.Stderr, "test/node:", err)
			os.Exit(1)
		}
		cmd := exec.Command("nsenter", append([]string{"--net=" + nodeNetNS, "--", self}, os.Args[1:]...)...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			if exit, ok := err.(*exec.ExitError); ok {
				os.Exit(exit.ExitCode())
			}
			fmt.Fprintln(os.Stderr, "test/node: nsenter:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "test/node:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func setup() error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	env.root = filepath.Clean(filepath.Join(wd, "..", ".."))
	env.kubeconfig = filepath.Join(env.root, "_output", "node", "kubeconfig")
	env.kubectl = filepath.Join(env.root, "_output", "tools", "bin", "kubectl")
	cfg, err := clientcmd.BuildConfigFromFlags("", env.kubeconfig)
	if err != nil {
		return fmt.Errorf("%v: run hack/node.sh up", err)
	}
	// The load loops pace themselves; client-go's default 5 QPS would
	// throttle them instead.
	cfg.QPS, cfg.Burst = 1000, 1000
	cfg.Timeout = 30 * time.Second
	env.config = cfg
	if env.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	if env.flagpole, err = clientset.NewForConfig(cfg); err != nil {
		return err
	}
	if env.aggregator, err = aggregator.NewForConfig(cfg); err != nil {
		return err
	}
	if _, err := env.kube.Discovery().ServerVersion(); err != nil {
		return fmt.Errorf("the node's kube-apiserver does not answer (%v): hack/node.sh status", err)
	}
	return nil
}

// kubectl runs the pinned kubectl against the node, from the repository's
// root, and returns its combined output.
func kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, env.kubectl, append([]string{"--kubeconfig", env.kubeconfig}, args...)...)
	cmd.Dir = env.root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %v: %v\n%s", args, err, out)
	}
	return string(out), nil
}

// script runs a script of the repository with args, the pinned kubectl and
// the node's kubeconfig.
func script(ctx context.Context, name string, args []string, extraEnv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(env.root, name), args...)
	cmd.Dir = env.root
	cmd.Env = append(os.Environ(), append([]string{"KUBECONFIG=" + env.kubeconfig, "KUBECTL=" + env.kubectl}, extraEnv...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %v\n%s", name, err, out)
	}
	return string(out), nil
}
