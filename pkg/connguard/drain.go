package connguard

// Drain makes every answer from now on carry "Connection: close": an
// HTTP/1.1 client closes the connection after reading it, and Go's HTTP/2
// server turns the header into GOAWAY, so that clients open their next
// connection (through the Service, to a replica that is not shutting down)
// while this replica still serves everything. Called when shutdown starts:
// without it a kept connection outlives the shutdown delay, and a request
// sent on it after the delay is refused with 503 "apiserver is shutting
// down" (upstream's WithWaitGroup) or meets the connection's close.
// Connections that carry no request meanwhile are closed by the server's
// own shutdown.
func (g *Guard) Drain() {
	g.draining.Store(true)
}
