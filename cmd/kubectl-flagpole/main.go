// Command kubectl-flagpole is the kubectl plugin for Flagpole: on PATH, it
// runs as `kubectl flagpole ...` (docs/kubectl-plugin.md).
package main

import (
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin"
)

func main() {
	os.Exit(kubectlplugin.Main(os.Args[1:], genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}))
}
