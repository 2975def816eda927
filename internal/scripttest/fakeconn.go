package scripttest

import (
	"bytes"
	"io"
	"net"
	"sync"
	"time"
)

// FakeConn is a net.Conn over a fixed input, with no peer goroutine and no
// timing: for parsers, fuzz tests and the checks that nothing was written.
// Read returns the input, at most Chunk bytes per call (all that is left
// when Chunk is 0), then io.EOF, or starts over when Loop is set. Writes
// are recorded. After Close, Read and Write fail with net.ErrClosed. The
// deadlines given to SetDeadline are recorded and otherwise ignored. It is
// safe for concurrent use.
type FakeConn struct {
	// Chunk bounds the bytes one Read returns; zero means no bound.
	Chunk int
	// Loop makes the input start over instead of ending in io.EOF.
	Loop bool
	// Remote is what RemoteAddr returns; zero means 127.0.0.1 port 0,
	// which Mode Auto takes for a STARTTLS port.
	Remote net.Addr

	mu        sync.Mutex
	in        []byte
	pos       int
	out       bytes.Buffer
	writes    int
	closed    bool
	deadlines []time.Time
}

// NewFakeConn returns a FakeConn that reads in.
func NewFakeConn(in []byte) *FakeConn {
	return &FakeConn{in: in}
}

// Read implements net.Conn.
func (f *FakeConn) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, net.ErrClosed
	}
	if f.pos >= len(f.in) {
		if !f.Loop || len(f.in) == 0 {
			return 0, io.EOF
		}
		f.pos = 0
	}
	rest := f.in[f.pos:]
	if f.Chunk > 0 && len(rest) > f.Chunk {
		rest = rest[:f.Chunk]
	}
	n := copy(p, rest)
	f.pos += n
	return n, nil
}

// Rewind makes the input readable again from the start.
func (f *FakeConn) Rewind() {
	f.mu.Lock()
	f.pos = 0
	f.mu.Unlock()
}

// Write implements net.Conn.
func (f *FakeConn) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, net.ErrClosed
	}
	f.writes++
	return f.out.Write(p)
}

// Written returns everything written so far.
func (f *FakeConn) Written() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.out.String()
}

// Writes returns the number of Write calls that wrote.
func (f *FakeConn) Writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}

// Close implements net.Conn.
func (f *FakeConn) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// Closed reports whether Close was called.
func (f *FakeConn) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// LocalAddr implements net.Conn.
func (f *FakeConn) LocalAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// RemoteAddr implements net.Conn.
func (f *FakeConn) RemoteAddr() net.Addr {
	if f.Remote != nil {
		return f.Remote
	}
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
}

// SetDeadline records t.
func (f *FakeConn) SetDeadline(t time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deadlines = append(f.deadlines, t)
	return nil
}

// LastDeadline returns the last deadline given to SetDeadline and how many
// were given.
func (f *FakeConn) LastDeadline() (time.Time, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.deadlines) == 0 {
		return time.Time{}, 0
	}
	return f.deadlines[len(f.deadlines)-1], len(f.deadlines)
}

// SetReadDeadline implements net.Conn; it is ignored.
func (f *FakeConn) SetReadDeadline(t time.Time) error { return nil }

// SetWriteDeadline implements net.Conn; it is ignored.
func (f *FakeConn) SetWriteDeadline(t time.Time) error { return nil }
