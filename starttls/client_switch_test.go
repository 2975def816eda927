package starttls_test

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
)

// ownLoop is a caller's own plaintext dialogue up to the go-ahead: it reads
// the greeting, says hello, reads the answer, sends STARTTLS and reads the
// go-ahead, each a one-line reply.
func ownLoop(c *starttls.Conn) error {
	if _, err := c.ReadLine(); err != nil {
		return err
	}
	for _, command := range []string{"HELLO client.example.test", "STARTTLS"} {
		if err := c.WriteLine(command); err != nil {
			return err
		}
		if _, err := c.ReadLine(); err != nil {
			return err
		}
	}
	return nil
}

const ownLoopScript = `
	S: 200 server ready
	C: HELLO client.example.test
	S: 250 hello
	C: STARTTLS
	S: 220 go ahead
`

// TestClientUpgrade: a caller whose own loop ran the plaintext dialogue
// switches with the core's checks.
func TestClientUpgrade(t *testing.T) {
	pki := scripttest.NewPKI(t)
	sw := func(name string) *starttls.ClientSwitch {
		return &starttls.ClientSwitch{Protocol: "hello", TLSConfig: pki.Client(name)}
	}
	t.Run("session", func(t *testing.T) {
		conn, peer := scripttest.Pipe(t, ownLoopScript+`
			!tls
			C: HELLO client.example.test
			S: 250 hello inside TLS
		`, &scripttest.Options{TLSConfig: pki.Server()})
		var transcript syncBuffer
		c := starttls.NewConn(conn, &starttls.Options{Transcript: &transcript})
		require.NoError(t, ownLoop(c))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		tc, err := starttls.ClientUpgrade(ctx, c, sw(scripttest.TestName))
		cancel() // the session no longer depends on it
		require.NoError(t, err)
		t.Cleanup(func() { tc.Close() })
		assert.Same(t, tc, c.TLS(), "c reads and writes through TLS now")
		assert.True(t, tc.ConnectionState().HandshakeComplete)
		require.NoError(t, c.WriteLine("HELLO client.example.test"))
		line, err := c.ReadLine()
		require.NoError(t, err)
		assert.Equal(t, "250 hello inside TLS", string(line))
		require.NoError(t, peer.Wait())
		assert.Contains(t, transcript.String(), "S: 220 go ahead\n-- TLS --\nC: HELLO")
	})
	t.Run("buffered-byte", func(t *testing.T) {
		// One byte behind the go-ahead, in its write: no ClientHello.
		conn, peer := scripttest.Pipe(t, ownLoopScript+"S+ \"x\"\n!eof", nil)
		c := starttls.NewConn(conn, nil)
		require.NoError(t, ownLoop(c))
		tc, err := starttls.ClientUpgrade(context.Background(), c, sw(scripttest.TestName))
		require.ErrorIs(t, err, starttls.ErrInjectedData)
		requireStep(t, err, "hello", starttls.StepStartTLS)
		assert.Nil(t, tc)
		require.NoError(t, peer.Wait(), "no ClientHello, only the close")
	})
	t.Run("plaintext-answer", func(t *testing.T) {
		// The server answers the ClientHello with a plaintext error: a
		// handshake failure quoting it, not injected data.
		conn, peer := scripttest.TCP(t, ownLoopScript+"!sleep 30ms\nS: 500 what is this?\n!hold",
			&scripttest.Options{TLSConfig: pki.Server()})
		c := starttls.NewConn(conn, nil)
		require.NoError(t, ownLoop(c))
		_, err := starttls.ClientUpgrade(context.Background(), c, sw(scripttest.TestName))
		require.ErrorIs(t, err, starttls.ErrHandshake)
		assert.NotErrorIs(t, err, starttls.ErrInjectedData)
		// Only what arrived with the first record is quoted (crypto/tls
		// has buffered it), at least its header.
		assert.Contains(t, err.Error(), `("500 w`)
		requireStep(t, err, "hello", starttls.StepHandshake)
		require.NoError(t, peer.Wait())
	})
	t.Run("certificate", func(t *testing.T) {
		conn, peer := scripttest.TCP(t, ownLoopScript+"!tls", &scripttest.Options{TLSConfig: pki.Server()})
		c := starttls.NewConn(conn, nil)
		require.NoError(t, ownLoop(c))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := starttls.ClientUpgrade(ctx, c, sw("other.example.test"))
		require.ErrorIs(t, err, starttls.ErrHandshake)
		var verr *tls.CertificateVerificationError
		require.ErrorAs(t, err, &verr)
		require.Error(t, peer.Wait())
	})
}

// TestClientUpgradeBeforeAnyIO: a bad config or a context already done
// fails ClientUpgrade before a byte is written, and closes the conn.
func TestClientUpgradeBeforeAnyIO(t *testing.T) {
	pki := scripttest.NewPKI(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		sw   *starttls.ClientSwitch
		want error
		step starttls.Step
	}{
		{"nil-switch", context.Background(), nil, starttls.ErrConfig, starttls.StepConfig},
		{"nil-config", context.Background(), &starttls.ClientSwitch{Protocol: "hello"}, starttls.ErrConfig, starttls.StepConfig},
		{"nameless-config", context.Background(),
			&starttls.ClientSwitch{Protocol: "hello", TLSConfig: &tls.Config{RootCAs: pki.CA.Pool()}},
			starttls.ErrConfig, starttls.StepConfig},
		{"pre-cancelled", cancelled,
			&starttls.ClientSwitch{Protocol: "hello", TLSConfig: pki.Client(scripttest.TestName)},
			context.Canceled, starttls.StepHandshake},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := scripttest.NewFakeConn([]byte("more from the server\r\n"))
			tlsConn, err := starttls.ClientUpgrade(tc.ctx, starttls.NewConn(conn, nil), tc.sw)
			require.ErrorIs(t, err, tc.want)
			var e *starttls.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tc.step, e.Step)
			assert.Nil(t, tlsConn)
			assert.Empty(t, conn.Written(), "nothing may be written")
			assert.True(t, conn.Closed(), "the conn is closed on error")
		})
	}
}

func requireStep(t *testing.T, err error, protocol string, step starttls.Step) {
	t.Helper()
	var e *starttls.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, protocol, e.Protocol)
	assert.Equal(t, step, e.Step)
}

// sslRequest is a made-up protocol that advertises nothing, after the
// PostgreSQL SSLRequest: no greeting, no capabilities; the client asks
// "SSLREQ" and the server answers one byte, "S" (go ahead) or "N" (no TLS
// here).
type sslRequest struct{}

func (sslRequest) Protocol() string { return "sslreq" }
func (sslRequest) Keyword() string  { return "" }
func (sslRequest) Greet(context.Context, *starttls.Conn) (starttls.Greeting, error) {
	return starttls.Greeting{}, nil
}
func (sslRequest) Discover(context.Context, *starttls.Conn) (*starttls.Capabilities, error) {
	return &starttls.Capabilities{}, nil
}
func (sslRequest) StartTLS(ctx context.Context, c *starttls.Conn) error {
	if err := c.WriteLine("SSLREQ"); err != nil {
		return err
	}
	b, err := c.ReadByte()
	if err != nil {
		return err
	}
	switch b {
	case 'S':
		return nil
	case 'N':
		return starttls.ErrNotOffered
	}
	return starttls.NewProtocolError("answer %q to SSLREQ", b)
}

// TestKeywordEmpty: a protocol that advertises nothing always asks, and an
// answer "no TLS here" (ErrNotOffered from StartTLS) is decided by the
// policy: an error under Required and Always, plaintext under
// Opportunistic.
func TestKeywordEmpty(t *testing.T) {
	for _, policy := range []starttls.Policy{starttls.Required, starttls.Always, starttls.Opportunistic} {
		t.Run(policy.String()+"/yes", func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			conn, peer := scripttest.Pipe(t, "C: SSLREQ\nS: \"S\"\n!tls", &scripttest.Options{TLSConfig: pki.Server()})
			tc, res, err := starttls.Upgrade(background(t, 5*time.Second), conn, sslRequest{},
				&starttls.Config{TLSConfig: pki.Client(scripttest.TestName), Policy: policy})
			require.NoError(t, err)
			t.Cleanup(func() { tc.Close() })
			assert.True(t, res.TLS)
			assert.Equal(t, 0, res.After.Len())
			require.NoError(t, peer.Wait())
		})
		t.Run(policy.String()+"/no", func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			conn, peer := scripttest.Pipe(t, "C: SSLREQ\nS: \"N\"\n!eof", nil)
			tc, res, err := starttls.Upgrade(background(t, 5*time.Second), conn, sslRequest{},
				&starttls.Config{TLSConfig: pki.Client(scripttest.TestName), Policy: policy})
			assert.Nil(t, tc)
			if policy == starttls.Opportunistic {
				require.NoError(t, err)
				assert.True(t, res.Plaintext)
				assert.False(t, res.TLS)
				require.NotNil(t, res.Conn, "the plaintext session continues")
				assert.Nil(t, res.Conn.TLS())
				res.Conn.Close()
			} else {
				require.ErrorIs(t, err, starttls.ErrNotOffered)
				requireStep(t, err, "sslreq", starttls.StepStartTLS)
				assert.False(t, res.Plaintext)
				assert.Nil(t, res.Conn)
			}
			require.NoError(t, peer.Wait())
		})
	}
}

// featList is a made-up protocol after FTP (RFC 4217): the upgrade is
// advertised by the FEAT line "AUTH TLS", where the keyword AUTH alone
// says nothing ("AUTH SSL" offers no TLS the client speaks).
type featList struct{}

func (featList) Protocol() string { return "feat" }
func (featList) Keyword() string  { return "AUTH" }

// Offered implements starttls.OfferChecker.
func (featList) Offered(caps *starttls.Capabilities) bool {
	for _, p := range caps.Params("AUTH") {
		if strings.EqualFold(p, "TLS") {
			return true
		}
	}
	return false
}

func (featList) Greet(ctx context.Context, c *starttls.Conn) (starttls.Greeting, error) {
	line, err := c.ReadLine()
	if err != nil {
		return starttls.Greeting{}, err
	}
	return starttls.Greeting{Text: starttls.Escape(string(line))}, nil
}

func (featList) Discover(ctx context.Context, c *starttls.Conn) (*starttls.Capabilities, error) {
	if err := c.WriteLine("FEAT"); err != nil {
		return nil, err
	}
	caps := &starttls.Capabilities{}
	err := c.ReadResponse(func(line []byte) (bool, error) {
		if entry, ok := strings.CutPrefix(string(line), " "); ok {
			caps.Add(entry)
			return true, nil
		}
		return strings.HasPrefix(string(line), "211-"), nil
	})
	return caps, err
}

func (featList) StartTLS(ctx context.Context, c *starttls.Conn) error {
	if err := c.WriteLine("AUTH TLS"); err != nil {
		return err
	}
	line, err := c.ReadLine()
	if err != nil {
		return err
	}
	if !strings.HasPrefix(string(line), "234 ") {
		return starttls.NewProtocolError("answer %q to AUTH TLS", starttls.Escape(string(line)))
	}
	return nil
}

// TestOfferChecker: the Upgrader's Offered, not caps.Has(Keyword()),
// decides whether the upgrade is offered.
func TestOfferChecker(t *testing.T) {
	feat := func(auth string) string {
		// The entries start with a space: sent raw, or the script would
		// trim it.
		return "C: FEAT\nS: 211-Features:\nS: \" " + auth + "\\r\\n\"\nS: 211 End\n"
	}
	const upgrade = `
		C: AUTH TLS
		S: 234 go ahead
		!tls
		C: FEAT
		S: 211 no features
	`
	for _, tc := range []struct {
		name   string
		auth   string
		policy starttls.Policy
		script string
		want   error
	}{
		{"auth-tls", "AUTH TLS", starttls.Required, upgrade, nil},
		{"auth-tls-lower", "AUTH tls", starttls.Required, upgrade, nil},
		{"auth-ssl", "AUTH SSL", starttls.Required, "!eof", starttls.ErrNotOffered},
		{"auth-ssl-always", "AUTH SSL", starttls.Always, upgrade, nil},
		{"no-auth", "MDTM", starttls.Required, "!eof", starttls.ErrNotOffered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			conn, peer := scripttest.Pipe(t, "S: 220 ready\n"+feat(tc.auth)+tc.script, &scripttest.Options{TLSConfig: pki.Server()})
			tlsConn, res, err := starttls.Upgrade(background(t, 5*time.Second), conn, featList{},
				&starttls.Config{TLSConfig: pki.Client(scripttest.TestName), Policy: tc.policy})
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				requireStep(t, err, "feat", starttls.StepDiscover)
			} else {
				require.NoError(t, err)
				t.Cleanup(func() { tlsConn.Close() })
				assert.True(t, res.TLS)
			}
			if tc.auth != "MDTM" {
				assert.True(t, res.Before.Has("AUTH"), "Has(Keyword()) alone would have said yes")
			}
			require.NoError(t, peer.Wait())
		})
	}
}

// news is a made-up protocol after NNTP (RFC 4642, RFC 4643) that the core
// has never heard of: with redact set it implements starttls.Redactor;
// without, the core's DefaultRedactor applies.
type news struct {
	redact bool
}

func (news) Protocol() string  { return "news" }
func (news) Keyword() string   { return "STARTTLS" }
func (news) ImplicitPort() int { return 563 }

func (news) Greet(ctx context.Context, c *starttls.Conn) (starttls.Greeting, error) {
	line, err := c.ReadLine()
	if err != nil {
		return starttls.Greeting{}, err
	}
	code, text, _ := strings.Cut(string(line), " ")
	if code != "200" && code != "201" {
		return starttls.Greeting{}, starttls.NewProtocolError("greeting %q", starttls.Escape(string(line)))
	}
	return starttls.Greeting{Text: starttls.Escape(text)}, nil
}

func (news) Discover(ctx context.Context, c *starttls.Conn) (*starttls.Capabilities, error) {
	if err := c.WriteLine("CAPABILITIES"); err != nil {
		return nil, err
	}
	caps := &starttls.Capabilities{}
	first := true
	err := c.ReadResponse(func(line []byte) (bool, error) {
		s := string(line)
		if first {
			first = false
			if !strings.HasPrefix(s, "101 ") {
				return false, starttls.NewProtocolError("answer %q to CAPABILITIES", starttls.Escape(s))
			}
			return true, nil
		}
		if s == "." {
			return false, nil
		}
		caps.Add(s)
		return true, nil
	})
	return caps, err
}

func (news) StartTLS(ctx context.Context, c *starttls.Conn) error {
	if err := c.WriteLine("STARTTLS"); err != nil {
		return err
	}
	line, err := c.ReadLine()
	if err != nil {
		return err
	}
	if !strings.HasPrefix(string(line), "382 ") {
		return starttls.NewProtocolError("answer %q to STARTTLS", starttls.Escape(string(line)))
	}
	return nil
}

// newsRedactor hides what follows AUTHINFO PASS (RFC 4643, Section 2.3).
type newsRedactor struct{ news }

func (newsRedactor) Redact(line []byte) (int, bool) {
	const pass = "AUTHINFO PASS "
	if len(line) > len(pass) && starttls.EqualFold(string(line[:len(pass)]), pass) {
		return len(pass) - 1, true
	}
	return 0, false
}

var _ starttls.Redactor = newsRedactor{}

// TestMadeUpProtocol: a protocol the core has never heard of upgrades,
// resolves its implicit port under Mode Auto, and has its credentials
// redacted from the transcript, by its own Redactor or by DefaultRedactor,
// with no edit to the core.
func TestMadeUpProtocol(t *testing.T) {
	const capabilities = `
		C: CAPABILITIES
		S: 101 Capability list:
		S: VERSION 2
		S: AUTHINFO USER
		S: STARTTLS
		S: .
	`
	const session = `
		C: AUTHINFO USER alice
		S: 381 password please
		C: AUTHINFO PASS hunter2
		S: 281 welcome
	`
	for _, tc := range []struct {
		name     string
		u        starttls.Upgrader
		port     int // the remote port the conn reports
		script   string
		mode     starttls.Mode
		recorded []string
	}{
		{"own-redactor", newsRedactor{}, 119, "S: 200 news ready\n" + capabilities + "C: STARTTLS\nS: 382 go ahead\n!tls\n" + capabilities + session,
			starttls.StartTLS, []string{"C: AUTHINFO USER alice\n", "C: AUTHINFO PASS <redacted>\n"}},
		{"default-redactor", news{}, 119, "S: 200 news ready\n" + capabilities + "C: STARTTLS\nS: 382 go ahead\n!tls\n" + capabilities + session,
			starttls.StartTLS, []string{"C: AUTHINFO <redacted>\n", "C: AUTHINFO PASS <redacted>\n"}},
		{"implicit-port", newsRedactor{}, 563, "!tls\nS: 200 news ready\n" + capabilities + session,
			starttls.Implicit, []string{"C: AUTHINFO PASS <redacted>\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			conn, peer := scripttest.Pipe(t, tc.script, &scripttest.Options{TLSConfig: pki.Server()})
			var transcript syncBuffer
			tlsConn, res, err := starttls.Upgrade(background(t, 5*time.Second), onPort{conn, tc.port}, tc.u, &starttls.Config{
				TLSConfig: pki.Client(scripttest.TestName),
				Conn:      &starttls.Options{Transcript: &transcript},
			})
			require.NoError(t, err)
			t.Cleanup(func() { tlsConn.Close() })
			assert.Equal(t, tc.mode, res.Mode)
			assert.True(t, res.After.Has("AUTHINFO"))
			for _, command := range []string{"AUTHINFO USER alice", "AUTHINFO PASS hunter2"} {
				require.NoError(t, res.Conn.WriteLine(command))
				_, err := res.Conn.ReadLine()
				require.NoError(t, err)
			}
			require.NoError(t, peer.Wait())
			for _, line := range tc.recorded {
				assert.Contains(t, transcript.String(), line)
			}
			assert.NotContains(t, transcript.String(), "hunter2")
			assert.Contains(t, transcript.String(), "S: 281 welcome\n")
		})
	}
}

// onPort reports a remote address on a chosen port, for Mode Auto.
type onPort struct {
	net.Conn
	port int
}

func (c onPort) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: c.port}
}
