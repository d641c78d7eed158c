package cmd

import (
	"context"
	"time"
)

// Run serves until ctx is done, then drains in-flight requests and, in
// embedded mode, stops etcd last.
func (o CompletedOptions) Run(ctx context.Context) error {
	p, err := o.prepare()
	if err != nil {
		return err
	}
	defer p.close()

	server, err := p.server.Complete().New()
	if err != nil {
		return err
	}
	prepared := server.GenericAPIServer.PrepareRun()
	if o.standalone {
		if err := o.writeKubeconfig(p.pki); err != nil {
			return err
		}
	}
	if err := prepared.RunWithContext(ctx); err != nil {
		return err
	}
	// The HTTP/1.1 port shuts down beside the main one, on the same signal
	// and with the same timeout; its in-flight requests have drained with
	// the others (they share the handler chain), so this wait is short.
	server.WaitHTTP1Stopped(server.GenericAPIServer.ShutdownTimeout + 5*time.Second)
	return nil
}
