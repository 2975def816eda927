// Package servertest holds what the server-side tests of smtp, imap and
// pop3 share: running a front (Server.Serve) and the caller's loop after
// it in a goroutine, a loopback TCP pair, and the test bodies that differ
// between the protocols only in their lines: a transcript replayed by a
// scripted client, cancel, the context bounding the whole front, a nil
// server, a listener that keeps serving while one client stalls, and the
// hostile clients of [Abuse].
//
// Every wait is bounded; no helper calls t.Fatal off the test goroutine.
package servertest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
)

// ServeFunc is a protocol server's Serve method.
type ServeFunc func(ctx context.Context, conn net.Conn) (*starttls.Conn, error)

// PostFunc is the caller's loop after a successful front: it serves the
// session inside TLS and returns nil when the client ends it cleanly.
type PostFunc func(c *starttls.Conn) error

// Served is what a front and the loop after it gave.
type Served struct {
	// Conn is the session conn Serve returned; nil on failure.
	Conn *starttls.Conn
	// Err is Serve's error, or the loop's when Serve succeeded.
	Err error
}

// ServeOn runs serve on conn in a goroutine and, when it succeeds, post on
// the session conn, which it then closes; the channel yields the front's
// result (the loop's error in its place when the loop fails).
func ServeOn(ctx context.Context, serve ServeFunc, post PostFunc, conn net.Conn) <-chan Served {
	done := make(chan Served, 1)
	go func() {
		tc, err := serve(ctx, conn)
		if err == nil {
			err = post(tc)
			tc.Close()
		}
		done <- Served{tc, err}
	}()
	return done
}

// Wait returns what done yields, failing the test after 10 seconds.
func Wait(t testing.TB, done <-chan Served) Served {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10s")
		return Served{}
	}
}

// AssertClosed checks that the front closed conn: using it fails with
// net.ErrClosed.
func AssertClosed(t testing.TB, conn net.Conn) {
	t.Helper()
	_, err := conn.Write([]byte("x"))
	assert.ErrorIs(t, err, net.ErrClosed, "the conn must be closed on error")
}

// TCPPair returns both ends of a loopback TCP connection, closed at the
// end of the test.
func TCPPair(t testing.TB) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	select {
	case server = <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
	}
	require.NotNil(t, server)
	t.Cleanup(func() { server.Close() })
	return server, client
}

// ServerOptions are the options of a test server: pki's certificate for
// scripttest.TestName.
func ServerOptions(pki *scripttest.PKI) starttls.ServerOptions {
	return starttls.ServerOptions{TLSConfig: pki.Server(), Hostname: scripttest.TestName}
}

// ClientOptions make a scripttest peer the client, trusting pki.
func ClientOptions(pki *scripttest.PKI) *scripttest.Options {
	return &scripttest.Options{Role: scripttest.Client, TLSConfig: pki.Client(scripttest.TestName)}
}

// Transcript plays script as the client against serve, then post, over
// loopback TCP. With no wantErr, the front and the loop must succeed over
// TLS. Otherwise the error must match every one of wantErr, be a
// *starttls.Error of protocol, come with no session conn, and the front
// must have closed the conn.
func Transcript(t *testing.T, pki *scripttest.PKI, serve ServeFunc, post PostFunc, protocol, script string, wantErr ...error) {
	t.Helper()
	conn, peer := scripttest.TCP(t, script, ClientOptions(pki))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := Wait(t, ServeOn(ctx, serve, post, conn))
	require.NoError(t, peer.Wait(), "the client script")
	if len(wantErr) == 0 {
		require.NoError(t, r.Err)
		require.NotNil(t, r.Conn.TLS(), "the session runs over TLS")
		return
	}
	require.Error(t, r.Err)
	for _, want := range wantErr {
		require.ErrorIs(t, r.Err, want, "got %v", r.Err)
	}
	var e *starttls.Error
	require.ErrorAs(t, r.Err, &e)
	assert.Equal(t, protocol, e.Protocol)
	assert.Nil(t, r.Conn)
	AssertClosed(t, conn)
}

// Front is a protocol's server front as the shared test bodies drive it.
type Front struct {
	// Serve is a configured server's Serve.
	Serve ServeFunc
	// Post is the caller's loop run on the session Serve returns.
	Post PostFunc
	// Greeting is how the server's first line starts ("* OK ").
	Greeting string
	// StartTLS is the upgrade command line; GoAhead the server's answer.
	StartTLS, GoAhead string
	// Noop is a command the front answers before TLS, with NoopReply.
	Noop, NoopReply string
}

// readGreeting reads the server's first line on c and checks its start.
func (f Front) readGreeting(t *testing.T, c *starttls.Conn) {
	t.Helper()
	line, err := c.ReadLine()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(line), f.Greeting), "greeting %q", line)
}

// Cancel checks that cancelling the context aborts a front blocked on a
// silent client, within 2 s, and closes the conn.
func Cancel(t *testing.T, f Front) {
	t.Helper()
	srvConn, cliConn := TCPPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := ServeOn(ctx, f.Serve, f.Post, srvConn)
	cliConn.SetDeadline(time.Now().Add(5 * time.Second))
	f.readGreeting(t, starttls.NewConn(cliConn, nil))
	cancel()
	select {
	case r := <-done:
		require.ErrorIs(t, r.Err, context.Canceled)
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not return within 2s of the cancel")
	}
	AssertClosed(t, srvConn)
}

// ContextBoundsFront checks that the context bounds the whole front, not
// each command: a client that keeps sending f.Noop is dropped when a
// 300 ms context ends, by the front closing the conn.
func ContextBoundsFront(t *testing.T, f Front) {
	t.Helper()
	srvConn, cliConn := TCPPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := ServeOn(ctx, f.Serve, f.Post, srvConn)
	c := starttls.NewConn(cliConn, nil)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err := c.ReadLine()
	require.NoError(t, err)
	for err == nil {
		if err = c.WriteLine(f.Noop); err == nil {
			var line []byte
			line, err = c.ReadLine()
			if err == nil {
				require.Equal(t, f.NoopReply, string(line))
			}
		}
	}
	require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the front must close first, got %v", err)
	r := Wait(t, done)
	require.ErrorIs(t, r.Err, context.DeadlineExceeded)
	AssertClosed(t, srvConn)
}

// NoTLSConfig checks that serve, a nil server's Serve, fails without a
// session and closes the conn.
func NoTLSConfig(t *testing.T, serve ServeFunc) {
	t.Helper()
	srvConn, _ := TCPPair(t)
	tc, err := serve(context.Background(), srvConn)
	require.Error(t, err)
	assert.Nil(t, tc)
	AssertClosed(t, srvConn)
}

// KeepsServing checks that a client stalling after the go-ahead (having
// sent stall, the start of a handshake, or nothing) does not stop a
// listener from serving others, and is dropped, its conn closed, within
// 2 s of its context ending. other runs a whole session of another client
// on the conn it is given, meanwhile. f.Serve's server should not drop the
// staller by itself first (a long HandshakeTimeout).
func KeepsServing(t *testing.T, f Front, stall []byte, other func(t *testing.T, conn net.Conn)) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		client string // the client's address
		err    error
	}
	results := make(chan result, 2)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := <-ServeOn(ctx, f.Serve, f.Post, conn)
				results <- result{conn.RemoteAddr().String(), r.Err}
			}()
		}
	}()

	// The staller: the upgrade command, the go-ahead, stall, then silence.
	staller, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer staller.Close()
	staller.SetDeadline(time.Now().Add(5 * time.Second))
	sc := starttls.NewConn(staller, nil)
	f.readGreeting(t, sc)
	require.NoError(t, sc.WriteLine(f.StartTLS))
	line, err := sc.ReadLine()
	require.NoError(t, err)
	require.Equal(t, f.GoAhead, string(line))
	if len(stall) > 0 {
		_, err = staller.Write(stall)
		require.NoError(t, err)
	}

	// Another client's whole session meanwhile.
	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	other(t, conn)
	select {
	case r := <-results:
		require.Equal(t, conn.LocalAddr().String(), r.client, "the other client finishes first")
		require.NoError(t, r.err)
	case <-time.After(5 * time.Second):
		t.Fatal("the other client's session did not end")
	}
	select {
	case r := <-results:
		t.Fatalf("the staller was dropped before its context ended: %v", r.err)
	default:
	}

	// Ending the context drops the staller at once.
	cancel()
	select {
	case r := <-results:
		require.Equal(t, staller.LocalAddr().String(), r.client)
		require.ErrorIs(t, r.err, starttls.ErrHandshake)
		require.ErrorIs(t, r.err, context.Canceled)
	case <-time.After(2 * time.Second):
		t.Fatal("the staller was not dropped within 2s of the cancel")
	}
	_, err = io.Copy(io.Discard, staller) // nil at EOF
	assert.False(t, errors.Is(err, os.ErrDeadlineExceeded), "want the staller's connection closed, got %v", err)
}

// PipelinedSplitWrites plays script ten times against a fresh server from
// newFront, which must record its transcript in the writer it is given.
// The script sends the upgrade command and, after a pause of its own, a
// command behind it: whichever way the two writes arrive, the front must
// fail with injected data or a handshake error and close the conn, and its
// transcript must contain none of never: nothing pipelined behind the
// upgrade command may be acted on (the injection attack of DESIGN.md).
func PipelinedSplitWrites(t *testing.T, pki *scripttest.PKI, newFront func(transcript io.Writer) Front, script string, never ...string) {
	t.Helper()
	for i := 0; i < 10; i++ {
		var transcript bytes.Buffer
		f := newFront(&transcript)
		conn, peer := scripttest.TCP(t, script, ClientOptions(pki))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r := Wait(t, ServeOn(ctx, f.Serve, f.Post, conn))
		cancel()
		require.NoError(t, peer.Wait())
		require.Error(t, r.Err)
		assert.True(t, errors.Is(r.Err, starttls.ErrInjectedData) || errors.Is(r.Err, starttls.ErrHandshake),
			"got %v, want ErrInjectedData or ErrHandshake", r.Err)
		for _, text := range never {
			assert.NotContains(t, transcript.String(), text, "the command behind the upgrade must never be read or answered")
		}
		AssertClosed(t, conn)
	}
}
