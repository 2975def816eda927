package realpeers_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/pop3"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// TestDovecotPOP3Upgrade upgrades to every Dovecot POP3 listener in every
// mode that applies, logs in with USER/PASS inside TLS and quits cleanly.
func TestDovecotPOP3Upgrade(t *testing.T) {
	s := realServers(t)
	tests := []struct {
		name          string
		listener      string
		mode          starttls.Mode
		wantMode      starttls.Mode
		upgrade       bool // pop3.Upgrade on our own conn instead of Dial
		before, after []string
		notBefore     []string
		notAfter      []string
		golden        string
		description   string
	}{{
		name: "pop3 stls", listener: "pop3", mode: starttls.StartTLS, wantMode: starttls.StartTLS,
		// Dovecot with disable_plaintext_auth lists neither USER nor a
		// plaintext SASL mechanism before TLS.
		before: []string{"STLS", "UIDL"}, notBefore: []string{"USER"},
		after: []string{"USER", "SASL", "UIDL"}, notAfter: []string{"STLS"},
		golden: "golden_dovecot_pop3_stls.txt",
		description: "Dovecot {dovecot}, POP3 with STLS and disable_plaintext_auth=yes (no USER\n" +
			"before TLS); pop3.Dial in mode starttls, policy required.",
	}, {
		name: "pop3 auto", listener: "pop3", mode: starttls.Auto, wantMode: starttls.StartTLS,
		before: []string{"STLS"}, notBefore: []string{"USER"}, after: []string{"USER"}, notAfter: []string{"STLS"},
	}, {
		name: "pop3 upgrade", listener: "pop3", mode: starttls.StartTLS, wantMode: starttls.StartTLS, upgrade: true,
		before: []string{"STLS"}, notBefore: []string{"USER"}, after: []string{"USER"}, notAfter: []string{"STLS"},
	}, {
		name: "pop3s implicit", listener: "pop3s", mode: starttls.Implicit, wantMode: starttls.Implicit,
		after: []string{"USER", "SASL"}, notAfter: []string{"STLS"},
		golden:      "golden_dovecot_pop3s_implicit.txt",
		description: "Dovecot {dovecot}, POP3 over implicit TLS; pop3.Dial in mode implicit.",
	}, {
		name: "pop3s auto on 995", listener: "pop3s_auto", mode: starttls.Auto, wantMode: starttls.Implicit,
		after: []string{"USER"}, notAfter: []string{"STLS"},
	}, {
		name: "pop3s upgrade auto on 995", listener: "pop3s_auto", mode: starttls.Auto, wantMode: starttls.Implicit, upgrade: true,
		after: []string{"USER"}, notAfter: []string{"STLS"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.listener == "pop3s_auto" {
				require.Equal(t, 995, s.port(t, tt.listener), "Auto is tested on the well-known port")
			}
			ctx := testContext(t)
			var transcript syncBuffer
			opts := &pop3.Options{
				TLSConfig: s.tlsConfig(t, tt.listener),
				Mode:      tt.mode,
				Conn:      &starttls.Options{Transcript: &transcript},
			}
			var tc *tls.Conn
			var res *starttls.Result
			var err error
			if tt.upgrade {
				var d net.Dialer
				conn, derr := d.DialContext(ctx, "tcp", s.addr[tt.listener])
				require.NoError(t, derr)
				closeOnCleanup(t, conn)
				tc, res, err = pop3.Upgrade(ctx, conn, opts)
			} else {
				tc, res, err = pop3.Dial(ctx, "tcp", s.addr[tt.listener], opts)
			}
			require.NoError(t, err)
			closeOnCleanup(t, tc)
			dialogue := transcript.String()
			logOnFailure(t, dialogue)

			checkVerified(t, res)
			assert.Equal(t, tt.wantMode, res.Mode)
			assert.Equal(t, dovecotGreeting, res.Greeting)
			if tt.wantMode == starttls.Implicit {
				assert.Nil(t, res.Before)
			} else {
				checkCapabilities(t, "before TLS", res.Before, tt.before, tt.notBefore)
			}
			checkCapabilities(t, "after TLS", res.After, tt.after, tt.notAfter)
			if tt.golden != "" {
				s.golden(t, "pop3", tt.golden, replaceVersions(s, tt.description), dialogue)
			}

			assert.Contains(t, res.After.Params("SASL"), "PLAIN")
			pop3Login(t, res.Conn, s.user, s.password, true)
			pop3Quit(t, res.Conn)
		})
	}
}

// TestDovecotPOP3WrongPassword: the login checked above is real.
func TestDovecotPOP3WrongPassword(t *testing.T) {
	s := realServers(t)
	ctx := testContext(t)
	conn := s.dialFrom(t, ctx, "pop3", pop3PenaltyAddr)
	tc, res, err := pop3.Upgrade(ctx, conn, &pop3.Options{TLSConfig: s.tlsConfig(t, "pop3")})
	require.NoError(t, err)
	closeOnCleanup(t, tc)
	pop3Login(t, res.Conn, s.user, s.password+"-wrong", false)
	pop3Quit(t, res.Conn)
}

// TestDovecotPOP3NoSTLS runs the three policies against a POP3 listener
// without TLS.
func TestDovecotPOP3NoSTLS(t *testing.T) {
	s := realServers(t)
	t.Run("required", func(t *testing.T) {
		ctx := testContext(t)
		var transcript syncBuffer
		tc, res, err := pop3.Dial(ctx, "tcp", s.addr["pop3_notls"], &pop3.Options{
			TLSConfig: s.tlsConfig(t, "pop3_notls"),
			Conn:      &starttls.Options{Transcript: &transcript},
		})
		require.ErrorIs(t, err, starttls.ErrNotOffered)
		assert.Nil(t, tc)
		assert.False(t, res.TLS)
		assert.False(t, res.Before.Has("STLS"), "got %v", res.Before.List())
		assert.NotContains(t, transcript.String(), "C: STLS", "STLS must not be sent under Required")
		s.golden(t, "pop3", "golden_dovecot_pop3_notls_required.txt", replaceVersions(s,
			"Dovecot {dovecot}, POP3 without TLS (ssl=no for this address);\n"+
				"pop3.Dial in mode starttls, policy required: ErrNotOffered, STLS never sent."),
			transcript.String())
	})
	t.Run("always", func(t *testing.T) {
		ctx := testContext(t)
		var transcript syncBuffer
		_, _, err := pop3.Dial(ctx, "tcp", s.addr["pop3_notls"], &pop3.Options{
			TLSConfig: s.tlsConfig(t, "pop3_notls"),
			Policy:    starttls.Always,
			Conn:      &starttls.Options{Transcript: &transcript},
		})
		require.ErrorIs(t, err, starttls.ErrRefused)
		var reply *starttls.ReplyError
		require.ErrorAs(t, err, &reply)
		assert.Equal(t, "-ERR", reply.Status)
		s.golden(t, "pop3", "golden_dovecot_pop3_notls_always.txt", replaceVersions(s,
			"Dovecot {dovecot}, POP3 without TLS (ssl=no for this address);\n"+
				"pop3.Dial, policy always: STLS sent anyway and refused, ErrRefused."),
			transcript.String())
	})
	t.Run("opportunistic", func(t *testing.T) {
		ctx := testContext(t)
		tc, res, err := pop3.Dial(ctx, "tcp", s.addr["pop3_notls"], &pop3.Options{
			TLSConfig: s.tlsConfig(t, "pop3_notls"),
			Policy:    starttls.Opportunistic,
		})
		require.NoError(t, err)
		assert.Nil(t, tc)
		assert.True(t, res.Plaintext)
		require.NotNil(t, res.Conn)
		closeOnCleanup(t, res.Conn)
		pop3Quit(t, res.Conn)
	})
}

// TestDovecotPOP3Certificate: a certificate from another CA fails.
func TestDovecotPOP3Certificate(t *testing.T) {
	s := realServers(t)
	other, err := tlsconf.NewCA("some other CA")
	require.NoError(t, err)
	host, _, err := net.SplitHostPort(s.addr["pop3s"])
	require.NoError(t, err)
	ctx := testContext(t)
	_, res, err := pop3.Dial(ctx, "tcp", s.addr["pop3s"], &pop3.Options{
		TLSConfig: tlsconf.Client(host, other.Pool()), Mode: starttls.Implicit})
	require.ErrorIs(t, err, starttls.ErrHandshake)
	var verr *tls.CertificateVerificationError
	require.ErrorAs(t, err, &verr)
	assert.False(t, res.TLS)
}

// pop3Login sends USER and PASS (RFC 1939, Section 7) and wants PASS to
// succeed or not.
func pop3Login(t *testing.T, c *starttls.Conn, user, password string, ok bool) {
	t.Helper()
	require.NotNil(t, c.TLS(), "credentials only inside TLS")
	require.NoError(t, c.WriteCommand("USER", user))
	r, err := pop3.ReadResponse(c)
	require.NoError(t, err)
	require.True(t, r.OK, "USER: got -ERR %s", r.Text)
	require.NoError(t, c.WriteSecretLine("PASS "+password))
	r, err = pop3.ReadResponse(c)
	require.NoError(t, err)
	assert.Equal(t, ok, r.OK, "PASS: got %q", r.Text)
}

// pop3Quit sends QUIT, wants +OK and the server's hang-up.
func pop3Quit(t *testing.T, c *starttls.Conn) {
	t.Helper()
	require.NoError(t, c.WriteLine("QUIT"))
	r, err := pop3.ReadResponse(c)
	require.NoError(t, err)
	assert.True(t, r.OK, "QUIT: got -ERR %s", r.Text)
	_, err = c.ReadLine()
	assert.True(t, errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF), "after QUIT want the server's hang-up, got %v", err)
}
