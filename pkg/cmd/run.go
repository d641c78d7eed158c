package cmd

import "context"

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
	return prepared.RunWithContext(ctx)
}
