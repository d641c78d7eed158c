// Command coredns is CoreDNS with the plugins the real node's cluster DNS
// uses (hack/node/coredns.yaml): kubernetes answers for Services and Pods,
// cache, errors, log, and health/ready for the probes. No forward plugin: the
// node has no upstream, so names outside cluster.local get SERVFAIL/NXDOMAIN
// instead of a query leaving the machine.
//
// This is CoreDNS's own way to choose plugins at compile time: its main
// imports every plugin (core/plugin) and sets the directive list from
// plugin.cfg; this one imports six and sets their order, which must be
// plugin.cfg's.
package main

import (
	"fmt"
	"os"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

// directives in plugin.cfg's order (the order a request passes them).
var directives = []string{"ready", "health", "errors", "log", "cache", "kubernetes"}

func main() {
	if err := dnsserver.SetDirectives(directives); err != nil {
		fmt.Fprintln(os.Stderr, "coredns:", err)
		os.Exit(1)
	}
	coremain.Run()
}
