package clienttest

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/internal/servertest"
	"github.com/tlsup/tlsup/starttls"
)

// transport is how the fake server reaches the client.
type transport int

const (
	pipe  transport = iota // net.Pipe: every write waits for its read
	tcp                    // loopback TCP
	reset                  // loopback TCP whose server side resets on close (SetLinger(0))
)

func (tr transport) String() string {
	return [...]string{"pipe", "tcp", "reset"}[tr]
}

// setup describes one run of the protocol's Upgrade against a script.
type setup struct {
	transport transport
	// server is the peer's TLS config; nil means the PKI's.
	server *tls.Config
	// cfg is the client's config; a nil TLSConfig means the PKI's client
	// config for scripttest.TestName (set noTLSConfig to keep it nil).
	cfg         starttls.Config
	noTLSConfig bool
	// timeout bounds the upgrade; zero means 5 s.
	timeout time.Duration
	// wrap, when set, wraps the client's conn.
	wrap func(net.Conn) net.Conn
	// ctx, when set, replaces the bounded context (the caller bounds it).
	ctx context.Context
	// transcript, when set, receives the transcript besides the outcome's.
	transcript io.Writer
}

// outcome is what one run gave.
type outcome struct {
	tc         *tls.Conn
	res        *starttls.Result
	err        error
	peer       *scripttest.Peer
	conn       net.Conn // the client's conn, as given to Upgrade
	transcript *scripttest.SyncBuffer
}

// upgrade runs p.Upgrade against script as s says, closing the returned
// *tls.Conn at the end of the test. The caller reads the peer's verdict.
func (p Protocol) upgrade(t *testing.T, pki *scripttest.PKI, script string, s setup) outcome {
	t.Helper()
	peerOpts := &scripttest.Options{TLSConfig: s.server}
	if peerOpts.TLSConfig == nil {
		peerOpts.TLSConfig = pki.Server()
	}
	cfg := s.cfg
	if cfg.TLSConfig == nil && !s.noTLSConfig {
		cfg.TLSConfig = pki.Client(scripttest.TestName)
	}
	transcript := &scripttest.SyncBuffer{}
	var opts starttls.Options
	if cfg.Conn != nil {
		opts = *cfg.Conn
	}
	opts.Transcript = transcript
	if s.transcript != nil {
		opts.Transcript = io.MultiWriter(transcript, s.transcript)
	}
	cfg.Conn = &opts

	var conn net.Conn
	var peer *scripttest.Peer
	switch s.transport {
	case pipe:
		conn, peer = scripttest.Pipe(t, script, peerOpts)
	case tcp:
		conn, peer = scripttest.TCP(t, script, peerOpts)
	case reset:
		server, client := servertest.TCPPair(t)
		// A close of the server side now sends RST, not FIN: the client
		// sees "connection reset" wherever it waits.
		require.NoError(t, server.(*net.TCPConn).SetLinger(0))
		conn, peer = client, scripttest.Start(t, server, script, peerOpts)
	}
	if s.wrap != nil {
		conn = s.wrap(conn)
	}
	ctx := s.ctx
	if ctx == nil {
		timeout := s.timeout
		if timeout == 0 {
			timeout = 5 * time.Second
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), timeout)
		defer cancel()
	}
	tc, res, err := p.Upgrade(ctx, conn, &cfg)
	if tc != nil {
		t.Cleanup(func() { tc.Close() })
	}
	require.NotNil(t, res, "a result is returned even on error")
	assert.Equal(t, p.Name, res.Protocol)
	AssertPrintable(t, res.Greeting)
	return outcome{tc: tc, res: res, err: err, peer: peer, conn: conn, transcript: transcript}
}

// requireFailed checks the shape every failed upgrade has: a
// *starttls.Error of p at step, matching every one of want, no *tls.Conn,
// no session conn, the client's conn closed, and no raw control character
// in the error text or the transcript.
func (p Protocol) requireFailed(t *testing.T, o outcome, step starttls.Step, want ...error) {
	t.Helper()
	require.Error(t, o.err)
	for _, w := range want {
		require.ErrorIs(t, o.err, w, "got %v", o.err)
	}
	var e *starttls.Error
	require.ErrorAs(t, o.err, &e, "got %T %v, want a *starttls.Error", o.err, o.err)
	assert.Equal(t, p.Name, e.Protocol)
	assert.Equal(t, step, e.Step, "step of %v", o.err)
	// A switch on Kind misses no outcome, and agrees with errors.Is.
	require.NotNil(t, e.Kind, "Kind of %v", o.err)
	require.ErrorIs(t, o.err, e.Kind)
	assert.Nil(t, o.tc, "no *tls.Conn on error")
	assert.Nil(t, o.res.Conn, "no session conn on error")
	AssertPrintable(t, o.err.Error())
	AssertPrintable(t, strings.ReplaceAll(o.transcript.String(), "\n", " "))
	AssertClosed(t, o.conn)
}

// requireSucceeded checks a successful STARTTLS upgrade whose dialogue
// inside TLS was p.After.
func (p Protocol) requireSucceeded(t *testing.T, o outcome) {
	t.Helper()
	require.NoError(t, o.err)
	require.NotNil(t, o.tc)
	assert.True(t, o.res.TLS)
	assert.False(t, o.res.Plaintext)
	assert.True(t, o.res.State.HandshakeComplete)
	assert.Equal(t, p.AfterList, o.res.After.List())
	require.NotNil(t, o.res.Conn)
	assert.Same(t, o.tc, o.res.Conn.TLS(), "the session continues over the *tls.Conn")
}

// hangUpInHandshake is a server config whose handshake hangs up as soon as
// the ClientHello has been read.
func hangUpInHandshake(pki *scripttest.PKI) *tls.Config {
	cfg := pki.Server()
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		hello.Conn.Close()
		return nil, errors.New("hung up on purpose")
	}
	return cfg
}

// portConn reports a remote address on a chosen port, for Mode Auto.
type portConn struct {
	net.Conn
	port int
}

func (c portConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: c.port}
}

// cancelAfter is a transcript that cancels a context once the client has
// written its n-th line (n 0: at the "-- TLS --" mark; n < 0: never, only
// fire does), so that the client's next wait is interrupted.
type cancelAfter struct {
	mu     sync.Mutex
	n      int
	seen   int
	cancel context.CancelFunc
	fired  bool
}

func (w *cancelAfter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	line := string(p)
	switch {
	case strings.HasPrefix(line, "C: "):
		w.seen++
		if w.n > 0 && w.seen == w.n && !w.fired {
			w.fired = true
			w.cancel()
		}
	case strings.HasPrefix(line, "-- TLS --") && w.n == 0 && !w.fired:
		w.fired = true
		w.cancel()
	}
	return len(p), nil
}

// fire cancels now, once, whatever the transcript says.
func (w *cancelAfter) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.fired {
		w.fired = true
		w.cancel()
	}
}

func (w *cancelAfter) didFire() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fired
}

// cancelOnRead is a conn that cancels a context at its first Read, so that
// the cancel lands while the client waits for the greeting.
type cancelOnRead struct {
	net.Conn
	once   sync.Once
	cancel context.CancelFunc
}

func (c *cancelOnRead) Read(p []byte) (int, error) {
	c.once.Do(c.cancel)
	return c.Conn.Read(p)
}
