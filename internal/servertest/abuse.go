package servertest

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
)

// Hostile is a protocol's front as the hostile-client tests drive it.
type Hostile struct {
	// New returns a configured server's Serve with opts.
	New func(opts starttls.ServerOptions) ServeFunc
	// Greeting is how the server's first line starts ("* OK ").
	Greeting string
	// StartTLS is the upgrade command line; GoAhead the server's answer.
	StartTLS, GoAhead string
	// Noop is a command the front answers before TLS, with NoopReply.
	Noop, NoopReply string
	// Refused is a command the front refuses before TLS with one line.
	Refused string
}

// Abuse checks that clients that misbehave on purpose are bounded by the
// documented limits whatever they do, each as a subtest with scaled-down
// bounds: one byte at a time (cut by the idle bound), a NOOP just inside
// the idle bound for ever (cut by the pre-TLS bound), a ClientHello
// trickled after the go-ahead (cut by the handshake bound), 1 MiB without a
// line end (cut at the line bound, never buffered), a flood of refused
// commands (MaxErrors replies, the farewell, close), and an HTTP request
// where a command belongs (closed without a single byte of reply: the
// ALPACA cross-protocol attack). Every case ends with the front's conn
// closed.
func Abuse(t *testing.T, pki *scripttest.PKI, h Hostile) {
	base := ServerOptions(pki)
	t.Run("one byte at a time", func(t *testing.T) {
		opts := base
		opts.IdleTimeout = 300 * time.Millisecond
		serve, c, srvConn := h.start(t, opts, false)
		done := ServeOn(context.Background(), serve, neverPost, srvConn)
		c.readGreeting(t, h.Greeting)
		// Each byte comes within the idle bound of the previous one; the
		// command never ends before the bound.
		line := h.Noop + "\r\n"
		for i := 0; i < len(line)-1; i++ {
			if _, err := c.raw.Write([]byte{line[i]}); err != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		r := Wait(t, done)
		require.ErrorIs(t, r.Err, os.ErrDeadlineExceeded)
		assert.NotContains(t, c.rest(t), h.NoopReply, "the trickled command was never answered")
		assertClosed(t, srvConn)
	})
	t.Run("noop inside the idle bound for ever", func(t *testing.T) {
		opts := base
		opts.IdleTimeout = time.Second
		opts.PreTLSTimeout = 500 * time.Millisecond
		serve, c, srvConn := h.start(t, opts, false)
		done := ServeOn(context.Background(), serve, neverPost, srvConn)
		c.readGreeting(t, h.Greeting)
		var err error
		noops := 0
		for ; noops < 100 && err == nil; noops++ {
			time.Sleep(50 * time.Millisecond)
			if err = c.WriteLine(h.Noop); err == nil {
				var line []byte
				if line, err = c.ReadLine(); err == nil && string(line) != h.NoopReply {
					break // the farewell
				}
			}
		}
		assert.Less(t, noops, 100, "the pre-TLS bound ended the session")
		r := Wait(t, done)
		require.ErrorIs(t, r.Err, os.ErrDeadlineExceeded)
		assert.Contains(t, r.Err.Error(), "pre-tls phase over")
		assertClosed(t, srvConn)
	})
	t.Run("trickled client hello", func(t *testing.T) {
		opts := base
		opts.HandshakeTimeout = 300 * time.Millisecond
		serve, c, srvConn := h.start(t, opts, false)
		done := ServeOn(context.Background(), serve, neverPost, srvConn)
		c.readGreeting(t, h.Greeting)
		require.NoError(t, c.WriteLine(h.StartTLS))
		line, err := c.ReadLine()
		require.NoError(t, err)
		require.Equal(t, h.GoAhead, string(line))
		hello := ClientHello(t)
		for i := 0; i < len(hello) && i < 40; i++ {
			if _, err := c.raw.Write(hello[i : i+1]); err != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		r := Wait(t, done)
		require.ErrorIs(t, r.Err, starttls.ErrHandshake)
		require.ErrorIs(t, r.Err, context.DeadlineExceeded)
		assertClosed(t, srvConn)
	})
	t.Run("1 MiB without a line end", func(t *testing.T) {
		serve, c, srvConn := h.start(t, base, true)
		done := ServeOn(context.Background(), serve, neverPost, srvConn)
		c.readGreeting(t, h.Greeting)
		written := make(chan int, 1)
		go func() {
			n, _ := c.raw.Write([]byte(strings.Repeat("A", 1<<20)))
			written <- n
		}()
		farewell, err := c.ReadLine()
		require.NoError(t, err, "a farewell before closing")
		assert.NotEmpty(t, farewell)
		_, err = c.ReadLine()
		assert.ErrorIs(t, err, io.EOF, "closed after the farewell")
		r := Wait(t, done)
		require.ErrorIs(t, r.Err, starttls.ErrTooLarge)
		assert.Less(t, <-written, 1<<20, "the front stopped reading at the line bound")
		assertClosed(t, srvConn)
	})
	t.Run("flood of refused commands", func(t *testing.T) {
		opts := base
		opts.MaxErrors = 5
		serve, c, srvConn := h.start(t, opts, true)
		done := ServeOn(context.Background(), serve, neverPost, srvConn)
		c.readGreeting(t, h.Greeting)
		go func() {
			flood := strings.Repeat(h.Refused+"\r\n", 10000)
			c.raw.Write([]byte(flood)) // cut when the front closes
		}()
		lines := 0
		for lines < 100 {
			if _, err := c.ReadLine(); err != nil {
				break
			}
			lines++
		}
		assert.Equal(t, opts.MaxErrors+1, lines, "MaxErrors refusals, then the farewell alone")
		r := Wait(t, done)
		require.ErrorIs(t, r.Err, starttls.ErrProtocol)
		assertClosed(t, srvConn)
	})
	for _, tt := range []struct {
		name  string
		first string // a command before the request, "" for none
	}{
		{"http request first", ""},
		{"http request after a command", h.Noop},
	} {
		t.Run(tt.name, func(t *testing.T) {
			serve, c, srvConn := h.start(t, base, false)
			done := ServeOn(context.Background(), serve, neverPost, srvConn)
			c.readGreeting(t, h.Greeting)
			if tt.first != "" {
				require.NoError(t, c.WriteLine(tt.first))
				line, err := c.ReadLine()
				require.NoError(t, err)
				require.Equal(t, h.NoopReply, string(line))
			}
			_, err := io.WriteString(c.raw, "POST /submit HTTP/1.1\r\nHost: mx.example.test\r\nContent-Length: 40\r\n\r\n"+h.Refused+"\r\n")
			require.NoError(t, err)
			r := Wait(t, done)
			require.ErrorIs(t, r.Err, starttls.ErrProtocol)
			assert.Empty(t, c.rest(t), "not a byte of reply to an HTTP request")
			assertClosed(t, srvConn)
		})
	}
}

// hostileConn is the client's end.
type hostileConn struct {
	*starttls.Conn
	raw net.Conn
}

// start returns serve with opts and the two ends of a connection: a
// synchronous net.Pipe when pipe is set (a write returns only once the
// front has read it, so what the front read is known), loopback TCP
// otherwise.
func (h Hostile) start(t *testing.T, opts starttls.ServerOptions, pipe bool) (ServeFunc, hostileConn, net.Conn) {
	var srvConn, cliConn net.Conn
	if pipe {
		srvConn, cliConn = net.Pipe()
		t.Cleanup(func() { srvConn.Close(); cliConn.Close() })
	} else {
		srvConn, cliConn = TCPPair(t)
	}
	cliConn.SetDeadline(time.Now().Add(10 * time.Second))
	return h.New(opts), hostileConn{starttls.NewConn(cliConn, nil), cliConn}, srvConn
}

func (c hostileConn) readGreeting(t *testing.T, prefix string) {
	t.Helper()
	line, err := c.ReadLine()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(line), prefix), "greeting %q", line)
}

// rest returns everything the front sends until it closes.
func (c hostileConn) rest(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for {
		line, err := c.ReadLine()
		if err != nil {
			break
		}
		b.WriteString(string(line) + "\n")
	}
	return b.String()
}

func neverPost(*starttls.Conn) error { return errors.New("the front must not succeed") }

// ClientHello returns the first flight of a TLS client: a ClientHello
// record, as crypto/tls writes it.
func ClientHello(t testing.TB) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go tls.Client(a, &tls.Config{ServerName: "example.test"}).Handshake()
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(b)
	head := make([]byte, 5)
	_, err := io.ReadFull(r, head)
	require.NoError(t, err)
	body := make([]byte, int(head[3])<<8|int(head[4]))
	_, err = io.ReadFull(r, body)
	require.NoError(t, err)
	return append(head, body...)
}

// assertClosed is AssertClosed for a loopback or a net.Pipe conn.
func assertClosed(t *testing.T, conn net.Conn) {
	t.Helper()
	_, err := conn.Write([]byte("x"))
	assert.True(t, errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe), "the conn must be closed, got %v", err)
}
