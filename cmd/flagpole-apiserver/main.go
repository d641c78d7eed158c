// Command flagpole-apiserver serves the flagpole.dev API. Run without flags it
// starts standalone on embedded etcd and writes an admin kubeconfig.
package main

import (
	"os"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/component-base/cli"

	"github.com/flagpole-dev/flagpole/pkg/cmd"
	"github.com/flagpole-dev/flagpole/pkg/errorlog"
)

func main() {
	// Requests abandoned by their clients are logged at a bounded rate.
	errorlog.Install()
	command := cmd.NewCommand(genericapiserver.SetupSignalContext())
	os.Exit(cli.Run(command))
}
