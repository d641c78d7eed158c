// Command pause is the real node's sandbox image (hack/node.sh): the first
// process of every Pod sandbox, which holds the Pod's namespaces for its
// containers, reaps the zombies a shared PID namespace hands it, and exits
// on SIGINT or SIGTERM, as the upstream pause container does. A static Go
// program because the node has no registry to pull upstream's from.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		// One SIGCHLD may stand for several exits.
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
