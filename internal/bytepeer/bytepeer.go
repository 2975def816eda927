// Package bytepeer is a fake peer for protocols that are not line-based
// (PostgreSQL's SSLRequest, LDAP's BER, XMPP's XML), where
// [scripttest]'s line directives do not fit. A test writes the peer's side
// as a Go function over a [*Conn], whose methods expect exact bytes, send
// bytes in one write, stall, start TLS or close:
//
//	addr, peer := bytepeer.Listen(t, func(p *bytepeer.Conn) error {
//		if err := p.Expect(sslRequest); err != nil {
//			return err
//		}
//		return p.Send([]byte("S"))
//	}, nil)
//
// The function runs in its own goroutine on a loopback TCP connection (a
// real socket: a net.Pipe would block a client that writes its ClientHello
// while the peer is still writing). Every wait is bounded by
// Options.Timeout; failures are returned, never t.Fatal'd, and the test
// reads them with [Peer.Wait]. t.Cleanup closes the connection, ends a
// stall and waits for the goroutine.
//
// [scripttest]: github.com/tlsup/tlsup/internal/scripttest
package bytepeer

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Options configures a peer. A nil *Options means the defaults.
type Options struct {
	// TLSConfig is the server config used by [Conn.TLS]. Zero: TLS fails.
	TLSConfig *tls.Config
	// Timeout bounds each wait (a read, a write, a handshake, the accept).
	// Zero means 5 seconds.
	Timeout time.Duration
}

// Conn is the peer's end of the connection, handed to the peer function.
type Conn struct {
	conn    net.Conn
	opts    Options
	stop    chan struct{}
	pending []byte // read past what an ExpectUntil matched
}

// Peer is a running fake peer.
type Peer struct {
	done    chan struct{}
	err     error
	checked atomic.Bool
	mu      sync.Mutex
	conn    net.Conn
	closed  bool
	stop    chan struct{}
}

// Listen starts a listener on 127.0.0.1 that accepts one connection and runs
// fn on it; it returns the address to dial. t.Cleanup closes everything
// and reports a failure the test never read with Wait.
func Listen(t testing.TB, fn func(*Conn) error, opts *Options) (string, *Peer) {
	t.Helper()
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("bytepeer: listen: %v", err)
	}
	p := &Peer{done: make(chan struct{}), stop: make(chan struct{})}
	t.Cleanup(func() {
		ln.Close()
		p.close()
		<-p.done
		if !p.checked.Load() && p.err != nil {
			t.Errorf("bytepeer: peer failed (never checked with Wait): %v", p.err)
		}
	})
	go func() {
		defer close(p.done)
		timer := time.AfterFunc(o.Timeout, func() { ln.Close() })
		conn, err := ln.Accept()
		timer.Stop()
		ln.Close()
		if err != nil {
			p.err = fmt.Errorf("bytepeer: no connection within %v: %v", o.Timeout, err)
			return
		}
		p.mu.Lock()
		p.conn = conn
		if p.closed {
			conn.Close()
		}
		p.mu.Unlock()
		c := &Conn{conn: conn, opts: o, stop: p.stop}
		p.err = fn(c)
		c.conn.Close()
	}()
	return ln.Addr().String(), p
}

// TCP starts a peer as [Listen] does and dials it: it returns the client's
// end for the code under test.
func TCP(t testing.TB, fn func(*Conn) error, opts *Options) (net.Conn, *Peer) {
	t.Helper()
	addr, p := Listen(t, fn, opts)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("bytepeer: dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, p
}

// Wait blocks until the peer function has returned and returns its error.
func (p *Peer) Wait() error {
	p.checked.Store(true)
	<-p.done
	return p.err
}

func (p *Peer) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		close(p.stop)
	}
	p.closed = true
	if p.conn != nil {
		p.conn.Close()
	}
}

// Send writes b in one write.
func (c *Conn) Send(b []byte) error {
	c.conn.SetWriteDeadline(time.Now().Add(c.opts.Timeout))
	if _, err := c.conn.Write(b); err != nil {
		return fmt.Errorf("bytepeer: send %q: %w", clip(b), err)
	}
	return nil
}

// SendString is Send for a string.
func (c *Conn) SendString(s string) error { return c.Send([]byte(s)) }

// Read reads up to len(p) bytes, those left over by ExpectUntil first.
func (c *Conn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	c.conn.SetReadDeadline(time.Now().Add(c.opts.Timeout))
	return c.conn.Read(p)
}

// Expect reads exactly len(want) bytes and fails unless they are want.
func (c *Conn) Expect(want []byte) error {
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("bytepeer: expecting %q: %w", clip(want), err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("bytepeer: got %q, want %q", clip(got), clip(want))
	}
	return nil
}

// ExpectUntil reads until sep has arrived (at most 64 KiB) and returns what
// came, sep included. Bytes after sep are kept for the next read.
func (c *Conn) ExpectUntil(sep string) ([]byte, error) {
	var got []byte
	buf := make([]byte, 4096)
	for {
		if i := bytes.Index(got, []byte(sep)); i >= 0 {
			end := i + len(sep)
			c.pending = append(c.pending, got[end:]...)
			return got[:end], nil
		}
		if len(got) > 64<<10 {
			return got, fmt.Errorf("bytepeer: %q not found in 64 KiB", sep)
		}
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return got, fmt.Errorf("bytepeer: expecting %q after %q: %w", sep, clip(got), err)
		}
	}
}

// Sleep stalls for d, or less when the test ends first.
func (c *Conn) Sleep(d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-c.stop:
	}
}

// Hold reads and drops everything until the other side closes or the test
// ends: a silent peer. It returns nil.
func (c *Conn) Hold() error {
	c.conn.SetReadDeadline(time.Time{})
	io.Copy(io.Discard, c.conn)
	return nil
}

// ExpectEOF reads until the other side closes and fails if a byte arrives
// first.
func (c *Conn) ExpectEOF() error {
	var b [1]byte
	n, err := c.Read(b[:])
	if n > 0 {
		return fmt.Errorf("bytepeer: got %q, want the other side to close", b[:n])
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	var ne net.Error
	if errors.As(err, &ne) && !ne.Timeout() {
		return nil // a reset is a close too
	}
	return fmt.Errorf("bytepeer: want the other side to close: %w", err)
}

// TLS runs the server handshake with Options.TLSConfig and continues on
// the TLS connection. Bytes left over by ExpectUntil fail it: they would
// have been read as plaintext.
func (c *Conn) TLS() error {
	if c.opts.TLSConfig == nil {
		return errors.New("bytepeer: TLS without Options.TLSConfig")
	}
	if len(c.pending) > 0 {
		return fmt.Errorf("bytepeer: %q buffered before TLS", clip(c.pending))
	}
	tc := tls.Server(c.conn, c.opts.TLSConfig)
	tc.SetDeadline(time.Now().Add(c.opts.Timeout))
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("bytepeer: handshake: %w", err)
	}
	tc.SetDeadline(time.Time{})
	c.conn = tc
	return nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.conn.Close() }

func clip(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}
