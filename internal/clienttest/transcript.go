// Transcript cases: a table of scripted dialogues run against a
// protocol's Upgrade, for protocols plugged in from outside the core
// (examples/sieve, examples/nntp, examples/ftp), and the hang-up and
// silence cases derived from one good transcript ([Interrupted]).

package clienttest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
)

// Client is a protocol's one-call upgrade with the settings of a case.
type Client struct {
	// Protocol is the name the errors must carry.
	Protocol string
	// Upgrade runs the protocol package's Upgrade.
	Upgrade func(ctx context.Context, conn net.Conn, cfg *tls.Config, policy starttls.Policy, mode starttls.Mode, opts *starttls.Options) (*tls.Conn, *starttls.Result, error)
}

// Case is one transcript run against a Client.
type Case struct {
	// Name is the subtest's name.
	Name string
	// Script is the server's side, in internal/scripttest syntax.
	Script string
	// Policy is the client's policy; zero is Required.
	Policy starttls.Policy
	// Mode zero is Auto, which over net.Pipe is StartTLS.
	Mode starttls.Mode
	// Err, when set, is what the upgrade must fail with (errors.Is).
	Err error
	// Step is the step at which the upgrade must fail, when Err is set.
	Step starttls.Step
	// TLS says whether Result.TLS must be true, that is whether the
	// failure came after a completed handshake.
	TLS bool
	// AnyStep: the step and Result.TLS are not checked (a deadline that a
	// loaded machine may reach before or after the handshake).
	AnyStep bool
	// Before and After, on success, are the capability lists wanted
	// (nil: not checked).
	Before, After []string
	// Plaintext says that Opportunistic must continue without TLS
	// (Result.Plaintext).
	Plaintext bool
	// Reply, when set, checks the *starttls.ReplyError in the chain.
	Reply *starttls.ReplyError
	// Timeout bounds the upgrade; zero means 5 s.
	Timeout time.Duration
	// TCP runs the peer over loopback TCP instead of net.Pipe (needed when
	// the peer writes while the client writes, as a late injection does).
	TCP bool
	// ServerName is the name the client verifies; zero means
	// scripttest.TestName, the name on the peer's certificate.
	ServerName string
	// PeerFails: the peer's script is expected not to run to its end (the
	// client stops early, as it must).
	PeerFails bool
	// Check, when set, runs after the common checks.
	Check func(t *testing.T, res *starttls.Result, err error)
}

// RunCases runs each case as a subtest.
func RunCases(t *testing.T, client Client, cases []Case) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			RunOne(t, client, tt)
		})
	}
}

// RunOne runs one case and returns the transcript the client recorded.
func RunOne(t *testing.T, client Client, tt Case) string {
	t.Helper()
	pki := scripttest.NewPKI(t)
	peerOpts := &scripttest.Options{TLSConfig: pki.Server()}
	var conn net.Conn
	var peer *scripttest.Peer
	if tt.TCP {
		conn, peer = scripttest.TCP(t, tt.Script, peerOpts)
	} else {
		conn, peer = scripttest.Pipe(t, tt.Script, peerOpts)
	}
	name := tt.ServerName
	if name == "" {
		name = scripttest.TestName
	}
	timeout := tt.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var transcript scripttest.SyncBuffer
	tc, res, err := client.Upgrade(ctx, conn, pki.Client(name), tt.Policy, tt.Mode,
		&starttls.Options{Transcript: &transcript})
	require.NotNil(t, res, "the result is returned even on error")
	if tc != nil {
		t.Cleanup(func() { tc.Close() })
	}
	AssertPrintable(t, res.Greeting)
	if tt.Err != nil {
		require.Error(t, err, "want %v", tt.Err)
		require.ErrorIs(t, err, tt.Err)
		AssertPrintable(t, err.Error())
		var e *starttls.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, client.Protocol, e.Protocol)
		require.NotNil(t, e.Kind, "Kind of %v", err)
		if tt.Step != "" && !tt.AnyStep {
			assert.Equal(t, tt.Step, e.Step, "step of %v", err)
		}
		if !tt.AnyStep {
			assert.Equal(t, tt.TLS, res.TLS, "Result.TLS")
		}
		assert.False(t, res.Plaintext)
		assert.Nil(t, tc, "no *tls.Conn on error")
		assert.Nil(t, res.Conn, "no session conn on error")
		AssertClosed(t, conn)
		if tt.Reply != nil {
			var re *starttls.ReplyError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, client.Protocol, re.Protocol)
			assert.Equal(t, tt.Reply.Command, re.Command)
			assert.Equal(t, tt.Reply.Code, re.Code)
			assert.Equal(t, tt.Reply.Status, re.Status)
			assert.Equal(t, tt.Reply.Text, re.Text)
		}
	} else {
		require.NoError(t, err)
		require.NotNil(t, res.Conn)
		assert.Equal(t, tt.Plaintext, res.Plaintext)
		assert.Equal(t, !tt.Plaintext, res.TLS)
		if tt.Plaintext {
			// A placeholder, safe to close, that sends nothing.
			require.NotNil(t, tc)
			assert.False(t, tc.ConnectionState().HandshakeComplete)
			_, werr := tc.Write([]byte("x"))
			assert.ErrorIs(t, werr, starttls.ErrNoTLS)
			assert.Nil(t, res.After)
		} else {
			require.NotNil(t, tc)
			assert.Equal(t, tc, res.Conn.TLS())
		}
		if tt.Before != nil {
			assert.Equal(t, tt.Before, res.Before.List(), "capabilities before TLS")
		}
		if tt.After != nil {
			assert.Equal(t, tt.After, res.After.List(), "capabilities after TLS")
		}
	}
	if tt.Check != nil {
		tt.Check(t, res, err)
	}
	perr := peer.Wait()
	if !tt.PeerFails {
		require.NoError(t, perr, "peer script")
	}
	return transcript.String()
}

// Interrupted runs the good transcript script, in mode, cut before each
// line the server sends (and before its handshake): once with the peer hanging up
// there, which must fail with io.ErrUnexpectedEOF (or ErrHandshake, at the
// handshake), and once with the peer falling silent, which must fail with
// context.DeadlineExceeded when the context ends.
func Interrupted(t *testing.T, client Client, mode starttls.Mode, script string) {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(script, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	tlsSeen := false
	for i, l := range lines {
		if l == "!tls" {
			tlsSeen = true
		} else if !strings.HasPrefix(l, "S:") {
			continue
		}
		prefix := strings.Join(lines[:i], "\n")
		afterTLS := tlsSeen && l != "!tls"
		what := fmt.Sprintf("before line %d %q", i+1, l)
		t.Run("hang-up "+what, func(t *testing.T) {
			RunOne(t, client, Case{Script: prefix + "\n!close", Mode: mode, Err: io.ErrUnexpectedEOF, TLS: afterTLS}.
				orHandshake(l == "!tls"))
		})
		t.Run("silence "+what, func(t *testing.T) {
			// On a loaded machine the deadline may come earlier in the
			// dialogue (before the handshake ends, or before the client
			// sent what the peer waits for): the peer's verdict does not
			// count, the client's error does.
			RunOne(t, client, Case{Script: prefix + "\n!hold", Mode: mode, Err: context.DeadlineExceeded, TLS: afterTLS,
				Timeout: 150 * time.Millisecond, AnyStep: afterTLS, PeerFails: true})
		})
	}
}

// orHandshake: a hang-up where the handshake belongs is a handshake
// failure (the EOF is crypto/tls's), not the unexpected EOF of a line.
func (c Case) orHandshake(handshake bool) Case {
	if handshake {
		c.Err = starttls.ErrHandshake
		c.Step = starttls.StepHandshake
	}
	return c
}

// AssertClosed checks that the upgrade closed conn (fail closed).
func AssertClosed(t *testing.T, conn net.Conn) {
	t.Helper()
	err := conn.SetReadDeadline(time.Now().Add(time.Millisecond))
	if err == nil {
		_, err = conn.Read(make([]byte, 1))
	}
	if !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("conn not closed after a failed upgrade: got %v, want net.ErrClosed or io.ErrClosedPipe", err)
	}
}

// AssertPrintable checks that peer text was escaped: no control character
// and no invalid UTF-8 reaches an error string, a transcript or the
// greeting.
func AssertPrintable(t *testing.T, s string) {
	t.Helper()
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			t.Errorf("control character %q at offset %d in %q", c, i, s)
			return
		}
	}
	if !utf8.ValidString(s) {
		t.Errorf("invalid UTF-8 in %q", s)
	}
}

// Lines returns n copies of line as script lines sent by the server.
func Lines(line string, n int) string {
	return strings.Repeat("S: "+line+"\n", n)
}
