package apiserver

import (
	"net"
	"time"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
)

// http1PostStartHook names the hook that starts the HTTP/1.1 port; its
// readyz check keeps a replica unready until the port serves.
const http1PostStartHook = "serve-http1"

// serveHTTP1 serves the whole handler chain a second time on l, with the
// main port's TLS (certificate, client CA, ciphers) and HTTP/2 turned off.
//
// It exists for kube-apiserver's aggregator. Its proxy hands a request's
// body on as it reads it and cannot send it again, so when a replica that is
// shutting down sends HTTP/2 GOAWAY, every write whose stream was on its way
// meanwhile is answered 503 "cannot retry ... after Request.Body was
// written" (kubernetes/kubernetes#135285): Go's HTTP/2 server has a single
// GOAWAY, no two-phase one that would let such streams through. Over
// HTTP/1.1 a connection carries one request at a time, and a draining
// replica's "Connection: close" (connguard.Drain) reaches the aggregator
// with the answer, before it can send another request there: its
// connections move to another replica and no request fails.
//
// The port stops with the main one: the hook's context ends when the
// server stops taking requests, after --shutdown-delay-duration.
func (s *Server) serveHTTP1(l net.Listener) error {
	g := s.GenericAPIServer
	stopped := make(chan struct{})
	s.http1Stopped = stopped
	return g.AddPostStartHook(http1PostStartHook, func(ctx genericapiserver.PostStartHookContext) error {
		info := *g.SecureServingInfo
		info.Listener = l
		info.DisableHTTP2 = true
		// The main port's Serve runs the certificate controllers; a second
		// Run of the same ones would share their work queues. The copy
		// only listens to them.
		if info.Cert != nil {
			info.Cert = certKeyContent{info.Cert}
		}
		if info.ClientCA != nil {
			info.ClientCA = caContent{info.ClientCA}
		}
		info.SNICerts = nil
		for _, c := range g.SecureServingInfo.SNICerts {
			info.SNICerts = append(info.SNICerts, sniCertKeyContent{c})
		}
		timeout := g.ShutdownTimeout
		if g.ShutdownSendRetryAfter {
			// As upstream's RunWithContext: requests have drained by then.
			timeout = 2 * time.Second
		}
		done, _, err := info.Serve(g.Handler, timeout, ctx.Done())
		if err != nil {
			close(stopped)
			return err
		}
		go func() {
			<-done
			close(stopped)
		}()
		return nil
	})
}

// WaitHTTP1Stopped waits, at most timeout, until the HTTP/1.1 port (when
// there is one) has finished its graceful shutdown; RunWithContext waits
// only for the main port's.
func (s *Server) WaitHTTP1Stopped(timeout time.Duration) {
	if s.http1Stopped == nil {
		return
	}
	select {
	case <-s.http1Stopped:
	case <-time.After(timeout):
	}
}

// The embedded interfaces hide the controllers' Run and RunOnce.
type certKeyContent struct {
	dynamiccertificates.CertKeyContentProvider
}

type caContent struct {
	dynamiccertificates.CAContentProvider
}

type sniCertKeyContent struct {
	dynamiccertificates.SNICertKeyContentProvider
}
