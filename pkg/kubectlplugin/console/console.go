// Package console is `kubectl flagpole console`: it starts the web console
// (pkg/console) on a loopback port with the user's kubeconfig credentials,
// prints its address and opens the browser on it.
package console

import (
	"context"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	fpconsole "github.com/flagpole-dev/flagpole/pkg/console"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/exit"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/session"
)

// Options are the options of console.
type Options struct {
	NoBrowser bool
	Address   string

	s      *session.Session
	config fpconsole.Config
}

// NewCmdConsole is `console`.
func NewCmdConsole(s *session.Session) *cobra.Command {
	o := &Options{s: s}
	cmd := &cobra.Command{
		Use:   "console",
		Short: "Open the web console: flags, rollouts, overrides, an evaluation tester, live",
		Long: `Serve the Flagpole console on 127.0.0.1 (a port the kernel picks) and open
it in the browser. The console talks to the API through a local proxy with
your kubeconfig credentials (through kube-apiserver, when Flagpole runs in
a cluster): the browser never holds them, and what you see and may change
is what RBAC allows you; controls you may not use are disabled. The URL
carries a secret of this run: only a page opened with it can use the
console. Stop it with Ctrl-C.`,
		Example: `  kubectl flagpole console -n shop
  kubectl flagpole console --no-browser`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().BoolVar(&o.NoBrowser, "no-browser", false, "print the URL, do not open a browser")
	cmd.Flags().StringVar(&o.Address, "address", "127.0.0.1:0", "where to listen: a loopback address and port (0: any free port)")
	return cmd
}

// Complete reads the user's configuration.
func (o *Options) Complete() error {
	cfg, err := o.s.RESTConfig()
	if err != nil {
		return err
	}
	ns, err := o.s.Namespace()
	if err != nil {
		return err
	}
	raw, err := o.s.Config.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return exit.Wrap(exit.Failed, "", err)
	}
	context := raw.CurrentContext
	if c := o.s.Config.Context; c != nil && *c != "" {
		context = *c
	}
	o.config = fpconsole.Config{REST: cfg, Namespace: ns, Context: context, Address: o.Address}
	return nil
}

// Run serves until interrupted.
func (o *Options) Run(ctx context.Context) error {
	srv, err := fpconsole.New(o.config)
	if err != nil {
		return exit.Wrap(exit.Usage, "", err)
	}
	fmt.Fprintf(o.s.Out, "Flagpole console for %s (namespace %s): %s\n", o.config.REST.Host, o.config.Namespace, srv.URL())
	fmt.Fprintln(o.s.Out, "The URL carries this run's secret: do not share it. Press Ctrl-C to stop.")
	if !o.NoBrowser {
		cleanup, err := openBrowser(srv.URL())
		if err != nil {
			fmt.Fprintf(o.s.ErrOut, "could not open a browser (%v): open the URL above\n", err)
		}
		defer cleanup()
	}
	return srv.Serve(ctx)
}

// openBrowser opens url in the user's browser. The URL is not passed on the
// command line, where other local users could read it (ps): the browser
// opens a file only this user can read, which sends it on to url.
func openBrowser(url string) (func(), error) {
	nothing := func() {}
	dir, err := os.MkdirTemp("", "flagpole-console-")
	if err != nil {
		return nothing, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	page := filepath.Join(dir, "open.html")
	quoted := html.EscapeString(url)
	body := `<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=` + quoted + `">` +
		`<title>Flagpole console</title><p>Opening the <a href="` + quoted + `">Flagpole console</a>...`
	if err := os.WriteFile(page, []byte(body), 0o600); err != nil {
		return cleanup, err
	}
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", page)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", page)
	default:
		opener := "xdg-open"
		if b := os.Getenv("BROWSER"); b != "" {
			opener = strings.Fields(b)[0]
		}
		cmd = exec.Command(opener, page)
	}
	if err := cmd.Start(); err != nil {
		return cleanup, err
	}
	go func() { _ = cmd.Wait() }()
	return cleanup, nil
}
