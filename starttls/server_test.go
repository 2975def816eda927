package starttls_test

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

	"github.com/tlsup/tlsup/internal/errkind"
	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
)

// serverSide plays the server under test against a scripted client over
// loopback TCP: it reads the STARTTLS command ("GO") and calls
// ServerUpgrade. It returns the conn it wrapped, to check that it was
// closed.
func serverSide(t *testing.T, pki *scripttest.PKI, script string, clientTLS *tls.Config, sw *starttls.ServerSwitch,
	timeout time.Duration, opts *starttls.Options) (*starttls.Conn, net.Conn, *scripttest.Peer, error) {
	t.Helper()
	if clientTLS == nil {
		clientTLS = pki.Client(scripttest.TestName)
	}
	raw, peer := scripttest.TCP(t, script, &scripttest.Options{Role: scripttest.Client, TLSConfig: clientTLS, Timeout: 3 * time.Second})
	if opts == nil {
		opts = &starttls.Options{}
	}
	opts.Server = true
	c := starttls.NewConn(raw, opts)
	require.NoError(t, raw.SetDeadline(time.Now().Add(5*time.Second)))
	line, err := c.ReadLine()
	require.NoError(t, err)
	require.Equal(t, "GO", string(line))
	require.NoError(t, raw.SetDeadline(time.Time{}))
	tc, err := starttls.ServerUpgrade(background(t, timeout), c, sw)
	return tc, raw, peer, err
}

func toySwitch(pki *scripttest.PKI) *starttls.ServerSwitch {
	return &starttls.ServerSwitch{Protocol: "toy", GoAhead: "OK begin TLS", Refusal: "NO pipelining STARTTLS", TLSConfig: pki.Server()}
}

// assertClosed checks that conn was closed by the code under test.
func assertClosed(t *testing.T, conn net.Conn) {
	t.Helper()
	_, err := conn.Write([]byte("x"))
	assert.ErrorIs(t, err, net.ErrClosed, "conn still open")
}

func TestServerUpgradeClean(t *testing.T) {
	pki := scripttest.NewPKI(t)
	var tr syncBuffer
	script := "C: GO\nS: OK begin TLS\n!tls\nC: CAPS\nS: * AUTH PLAIN\nS: OK\n"
	tc, raw, peer, err := serverSide(t, pki, script, nil, toySwitch(pki), 5*time.Second,
		&starttls.Options{Transcript: &tr, MaxLineLength: 100})
	require.NoError(t, err)
	defer tc.Close()
	require.NotNil(t, tc.TLS(), "the fresh Conn is on the *tls.Conn")
	assert.Same(t, raw, tc.TLS().NetConn(), "TLS is built on the raw conn")
	assert.Zero(t, tc.Buffered())
	assert.Equal(t, 100, tc.MaxLineLength(), "options carried over")
	assert.True(t, tc.TLS().ConnectionState().HandshakeComplete)
	line, err := tc.ReadLine()
	require.NoError(t, err)
	assert.Equal(t, "CAPS", string(line))
	require.NoError(t, tc.WriteLine("* AUTH PLAIN"))
	require.NoError(t, tc.WriteLine("OK"))
	require.NoError(t, peer.Wait())
	assert.Equal(t, "C: GO\nS: OK begin TLS\n-- TLS --\nC: CAPS\nS: * AUTH PLAIN\nS: OK\n", tr.String())
}

func TestServerUpgradeInjection(t *testing.T) {
	pki := scripttest.NewPKI(t)
	tests := []struct {
		name, script string
		refusal      string
	}{
		{"pipelined command, refusal", "C: GO\nC+ CAPS\nS: NO pipelining STARTTLS\n!eof\n", "NO pipelining STARTTLS"},
		{"pipelined command, close", "C: GO\nC+ CAPS\n!eof\n", ""},
		{"partial line", "C: GO\nC+ \"CA\"\nS: NO pipelining STARTTLS\n!eof\n", "NO pipelining STARTTLS"},
		{"tls bytes before the go-ahead", "C: GO\nC+ \"\\x16\\x03\\x01\\x00\\x05\"\n!eof\n", ""},
		{"one byte", "C: GO\nC+ \"\\n\"\n!eof\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sw := toySwitch(pki)
			sw.Refusal = tt.refusal
			tc, raw, peer, err := serverSide(t, pki, tt.script, nil, sw, 5*time.Second, nil)
			require.ErrorIs(t, err, starttls.ErrInjectedData)
			assert.Nil(t, tc)
			assert.Equal(t, "injected-data", errkind.Of(err))
			var e *starttls.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, "toy", e.Protocol)
			assert.Equal(t, starttls.StepStartTLS, e.Step)
			assertErrorText(t, err)
			assertClosed(t, raw)
			// The go-ahead was never sent and no handshake began: the
			// script's !eof fails on any line other than the refusal.
			require.NoError(t, peer.Wait())
		})
	}
}

func TestServerUpgradeFailures(t *testing.T) {
	pki := scripttest.NewPKI(t)
	tests := []struct {
		name      string
		script    string
		clientTLS *tls.Config
		timeout   time.Duration
		wantErr   []error
		wantKind  string
		peerFails bool
	}{
		{name: "client stalls mid-handshake", timeout: 300 * time.Millisecond,
			script:  "C: GO\nS: OK begin TLS\nC: \"\\x16\\x03\\x01\\x00\"\n!hold\n",
			wantErr: []error{starttls.ErrHandshake, context.DeadlineExceeded}, wantKind: "timeout"},
		{name: "client silent after go-ahead", timeout: 300 * time.Millisecond,
			script:  "C: GO\nS: OK begin TLS\n!hold\n",
			wantErr: []error{starttls.ErrHandshake, context.DeadlineExceeded}, wantKind: "timeout"},
		{name: "client hangs up after go-ahead", script: "C: GO\nS: OK begin TLS\n!close\n",
			wantErr: []error{starttls.ErrHandshake, io.ErrUnexpectedEOF}, wantKind: "handshake"},
		// Plaintext after the go-ahead, too late for the buffer check: the
		// handshake fails on it, and it is reported as injected data.
		{name: "client keeps talking plaintext", script: "C: GO\nS: OK begin TLS\nC: CAPS\n!eof\n",
			wantErr: []error{starttls.ErrHandshake}, wantKind: "handshake"},
		{name: "client rejects the certificate", script: "C: GO\nS: OK begin TLS\n!tls\n",
			clientTLS: pki.Client("other.example.test"), peerFails: true,
			wantErr: []error{starttls.ErrHandshake}, wantKind: "handshake"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			tc, raw, peer, err := serverSide(t, pki, tt.script, tt.clientTLS, toySwitch(pki), timeout, nil)
			require.Error(t, err)
			assert.Nil(t, tc)
			for _, want := range tt.wantErr {
				assert.ErrorIs(t, err, want)
			}
			assert.Equal(t, tt.wantKind, errkind.Of(err), "Kind of %v", err)
			var e *starttls.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, starttls.StepHandshake, e.Step)
			assertErrorText(t, err)
			assertClosed(t, raw)
			if tt.peerFails {
				assert.Error(t, peer.Wait())
			} else {
				require.NoError(t, peer.Wait())
			}
		})
	}
}

func TestServerUpgradeCancel(t *testing.T) {
	pki := scripttest.NewPKI(t)
	raw, peer := scripttest.TCP(t, "C: GO\nS: OK begin TLS\n!hold\n", &scripttest.Options{Role: scripttest.Client, TLSConfig: pki.Client(scripttest.TestName)})
	marked := &markWriter{mark: "-- TLS --", seen: make(chan struct{})}
	c := starttls.NewConn(raw, &starttls.Options{Server: true, Transcript: marked})
	line, err := c.ReadLine()
	require.NoError(t, err)
	require.Equal(t, "GO", string(line))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := starttls.ServerUpgrade(ctx, c, toySwitch(pki))
		done <- err
	}()
	// Cancel once the go-ahead is out, so the handshake is waiting.
	select {
	case <-marked.seen:
	case <-time.After(5 * time.Second):
		t.Fatal("ServerUpgrade never reached the handshake")
	}
	cancel()
	// The peer holds and the switch has no handshake timeout: only the
	// cancel can end the handshake, so a return within the bound is the
	// proof. The bound is generous for -race on a loaded machine.
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("ServerUpgrade still blocked 30 s after cancel")
	}
	require.ErrorIs(t, err, context.Canceled)
	assertClosed(t, raw)
	require.NoError(t, peer.Wait())
}

// markWriter is a transcript that closes seen when a line equal to mark is
// written.
type markWriter struct {
	mark string
	seen chan struct{}
	once sync.Once
}

func (w *markWriter) Write(p []byte) (int, error) {
	if strings.TrimSuffix(string(p), "\n") == w.mark {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func TestServerUpgradeNilTLSConfig(t *testing.T) {
	pki := scripttest.NewPKI(t)
	sw := toySwitch(pki)
	sw.TLSConfig = nil
	tc, raw, peer, err := serverSide(t, pki, "C: GO\n!eof\n", nil, sw, 5*time.Second, nil)
	require.Error(t, err)
	assert.Nil(t, tc)
	assertErrorText(t, err)
	assertClosed(t, raw)
	require.NoError(t, peer.Wait())
	assert.False(t, errors.Is(err, starttls.ErrHandshake))

	t.Run("nil switch", func(t *testing.T) {
		tc, raw, peer, err := serverSide(t, pki, "C: GO\n!eof\n", nil, nil, 5*time.Second, nil)
		require.Error(t, err)
		assert.Nil(t, tc)
		assertClosed(t, raw)
		require.NoError(t, peer.Wait())
	})
}
