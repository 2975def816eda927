package starttls_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain fails the run when a goroutine of this module is still running
// after every test has finished: a watcher, a fake peer or a server loop
// that nobody stopped.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := waitForLeaks(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines left running after the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// moduleGoroutines returns the stacks of the goroutines, other than the
// caller's, that run or were started by code of this module.
func moduleGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 { // the caller
			continue
		}
		if strings.Contains(g, "github.com/tlsup/tlsup") && !strings.Contains(g, "testing.tRunner") {
			out = append(out, g)
		}
	}
	return out
}

// waitForLeaks polls until no module goroutine is left or the bound passes,
// and returns the stacks left then.
func waitForLeaks(bound time.Duration) string {
	deadline := time.Now().Add(bound)
	for {
		gs := moduleGoroutines()
		if len(gs) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(gs, "\n\n")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakeConn is a net.Conn over a byte string: Read returns at most chunk
// bytes per call (all that is left when chunk is 0), then io.EOF, or starts
// again when loop is set. Writes are recorded.
type fakeConn struct {
	mu     sync.Mutex
	in     []byte
	pos    int
	chunk  int
	loop   bool
	out    bytes.Buffer
	writes int
	closed bool

	deadlines []time.Time // every SetDeadline, in order
}

func newFakeConn(in string, chunk int) *fakeConn {
	return &fakeConn{in: []byte(in), chunk: chunk}
}

func (f *fakeConn) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, net.ErrClosed
	}
	if f.pos >= len(f.in) {
		if !f.loop || len(f.in) == 0 {
			return 0, io.EOF
		}
		f.pos = 0
	}
	rest := f.in[f.pos:]
	if f.chunk > 0 && len(rest) > f.chunk {
		rest = rest[:f.chunk]
	}
	n := copy(p, rest)
	f.pos += n
	return n, nil
}

// rewind makes the input readable again from the start.
func (f *fakeConn) rewind() {
	f.mu.Lock()
	f.pos = 0
	f.mu.Unlock()
}

func (f *fakeConn) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, net.ErrClosed
	}
	f.writes++
	return f.out.Write(p)
}

func (f *fakeConn) written() (string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.out.String(), f.writes
}

func (f *fakeConn) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fakeConn) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

func (f *fakeConn) LocalAddr() net.Addr  { return fakeAddr("local") }
func (f *fakeConn) RemoteAddr() net.Addr { return fakeAddr("remote") }

func (f *fakeConn) SetDeadline(t time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deadlines = append(f.deadlines, t)
	return nil
}

func (f *fakeConn) lastDeadline() (time.Time, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.deadlines) == 0 {
		return time.Time{}, 0
	}
	return f.deadlines[len(f.deadlines)-1], len(f.deadlines)
}

func (f *fakeConn) SetReadDeadline(t time.Time) error  { return nil }
func (f *fakeConn) SetWriteDeadline(t time.Time) error { return nil }

type fakeAddr string

func (a fakeAddr) Network() string { return "fake" }
func (a fakeAddr) String() string  { return string(a) }

// syncBuffer is a bytes.Buffer safe for a transcript written from another
// goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// hasControl reports whether s holds a byte below 0x20 or DEL.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}
