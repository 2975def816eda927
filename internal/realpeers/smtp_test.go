package realpeers_test

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

const postfixGreeting = "mx.tlsup.test ESMTP tlsup test"

// TestPostfixUpgrade upgrades to every Postfix listener in every mode that
// applies, logs in where AUTH is offered and quits cleanly.
func TestPostfixUpgrade(t *testing.T) {
	s := realServers(t)
	tests := []struct {
		name     string
		listener string
		mode     starttls.Mode
		wantMode starttls.Mode
		// dial with smtp.Upgrade on a conn of our own instead of smtp.Dial
		upgrade       bool
		before, after []string // keywords that must be present
		notBefore     []string // and absent
		notAfter      []string
		login         bool
		golden        string
		description   string
	}{{
		name: "smtp starttls", listener: "smtp", mode: starttls.StartTLS, wantMode: starttls.StartTLS,
		before: []string{"STARTTLS", "PIPELINING"}, notBefore: []string{"AUTH"},
		after: []string{"PIPELINING"}, notAfter: []string{"STARTTLS"},
		golden: "golden_postfix_smtp_starttls.txt",
		description: "Postfix {postfix}, SMTP with STARTTLS offered (smtpd_tls_security_level=may),\n" +
			"smtp.Dial in mode starttls, policy required.",
	}, {
		name: "smtp auto", listener: "smtp", mode: starttls.Auto, wantMode: starttls.StartTLS,
		before: []string{"STARTTLS"}, notAfter: []string{"STARTTLS"},
	}, {
		name: "smtp upgrade", listener: "smtp", mode: starttls.StartTLS, wantMode: starttls.StartTLS, upgrade: true,
		before: []string{"STARTTLS"}, notAfter: []string{"STARTTLS"},
	}, {
		name: "submission starttls", listener: "submission", mode: starttls.StartTLS, wantMode: starttls.StartTLS,
		before: []string{"STARTTLS"}, notBefore: []string{"AUTH"},
		after: []string{"AUTH"}, notAfter: []string{"STARTTLS"}, login: true,
		golden: "golden_postfix_submission_starttls.txt",
		description: "Postfix {postfix}, submission requiring STARTTLS (smtpd_tls_security_level=encrypt)\n" +
			"and offering AUTH only inside TLS; smtp.Dial in mode starttls, policy required.",
	}, {
		name: "submission auto", listener: "submission", mode: starttls.Auto, wantMode: starttls.StartTLS,
		before: []string{"STARTTLS"}, notBefore: []string{"AUTH"}, after: []string{"AUTH"}, login: true,
	}, {
		name: "submission upgrade", listener: "submission", mode: starttls.Auto, wantMode: starttls.StartTLS, upgrade: true,
		before: []string{"STARTTLS"}, notBefore: []string{"AUTH"}, after: []string{"AUTH"}, login: true,
	}, {
		name: "smtps implicit", listener: "smtps", mode: starttls.Implicit, wantMode: starttls.Implicit,
		after: []string{"AUTH"}, notAfter: []string{"STARTTLS"}, login: true,
		golden: "golden_postfix_smtps_implicit.txt",
		description: "Postfix {postfix}, submission over implicit TLS (smtpd_tls_wrappermode=yes);\n" +
			"smtp.Dial in mode implicit.",
	}, {
		name: "smtps auto on 465", listener: "smtps_auto", mode: starttls.Auto, wantMode: starttls.Implicit,
		after: []string{"AUTH"}, notAfter: []string{"STARTTLS"}, login: true,
	}, {
		name: "smtps upgrade auto on 465", listener: "smtps_auto", mode: starttls.Auto, wantMode: starttls.Implicit, upgrade: true,
		after: []string{"AUTH"}, login: true,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.listener == "smtps_auto" {
				require.Equal(t, 465, s.port(t, tt.listener), "Auto is tested on the well-known port")
			}
			ctx := testContext(t)
			var transcript syncBuffer
			opts := &smtp.Options{
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
				tc, res, err = smtp.Upgrade(ctx, conn, opts)
			} else {
				tc, res, err = smtp.Dial(ctx, "tcp", s.addr[tt.listener], opts)
			}
			require.NoError(t, err)
			closeOnCleanup(t, tc)
			dialogue := transcript.String()
			logOnFailure(t, dialogue)

			checkVerified(t, res)
			assert.Equal(t, tt.wantMode, res.Mode)
			assert.Equal(t, postfixGreeting, res.Greeting)
			if tt.wantMode == starttls.Implicit {
				assert.Nil(t, res.Before, "no capabilities before TLS in implicit mode")
			} else {
				checkCapabilities(t, "before TLS", res.Before, tt.before, tt.notBefore)
			}
			checkCapabilities(t, "after TLS", res.After, tt.after, tt.notAfter)
			if tt.golden != "" {
				s.golden(t, "smtp", tt.golden, replaceVersions(s, tt.description), dialogue)
			}

			c := res.Conn
			if tt.login {
				mechs := res.After.Params("AUTH")
				require.Contains(t, mechs, "PLAIN", "AUTH mechanisms after TLS")
				smtpAuthPlain(t, c, s.user, s.password, 235)
			}
			smtpQuit(t, c)
		})
	}
}

// TestPostfixWrongPassword shows that the login checked above is real: a
// wrong password is refused inside TLS.
func TestPostfixWrongPassword(t *testing.T) {
	s := realServers(t)
	ctx := testContext(t)
	tc, res, err := smtp.Dial(ctx, "tcp", s.addr["submission"], &smtp.Options{TLSConfig: s.tlsConfig(t, "submission")})
	require.NoError(t, err)
	closeOnCleanup(t, tc)
	smtpAuthPlain(t, res.Conn, s.user, s.password+"-wrong", 535)
	smtpQuit(t, res.Conn)
}

// TestPostfixNoSTARTTLS runs the three policies against a listener that
// does not offer STARTTLS.
func TestPostfixNoSTARTTLS(t *testing.T) {
	s := realServers(t)
	t.Run("required", func(t *testing.T) {
		ctx := testContext(t)
		var transcript syncBuffer
		tc, res, err := smtp.Dial(ctx, "tcp", s.addr["smtp_notls"], &smtp.Options{
			TLSConfig: s.tlsConfig(t, "smtp_notls"),
			Conn:      &starttls.Options{Transcript: &transcript},
		})
		require.ErrorIs(t, err, starttls.ErrNotOffered)
		assert.Nil(t, tc)
		assert.False(t, res.TLS)
		assert.False(t, res.Before.Has("STARTTLS"), "got %v", res.Before.List())
		assert.NotContains(t, transcript.String(), "C: STARTTLS", "STARTTLS must not be sent under Required")
		s.golden(t, "smtp", "golden_postfix_notls_required.txt", replaceVersions(s,
			"Postfix {postfix}, SMTP without STARTTLS (smtpd_tls_security_level=none);\n"+
				"smtp.Dial in mode starttls, policy required: ErrNotOffered, STARTTLS never sent."),
			transcript.String())
	})
	t.Run("always", func(t *testing.T) {
		ctx := testContext(t)
		var transcript syncBuffer
		_, _, err := smtp.Dial(ctx, "tcp", s.addr["smtp_notls"], &smtp.Options{
			TLSConfig: s.tlsConfig(t, "smtp_notls"),
			Policy:    starttls.Always,
			Conn:      &starttls.Options{Transcript: &transcript},
		})
		require.ErrorIs(t, err, starttls.ErrRefused)
		var reply *starttls.ReplyError
		require.ErrorAs(t, err, &reply)
		assert.Equal(t, 502, reply.Code, "Postfix answers STARTTLS without TLS support with 502")
		assert.Equal(t, "STARTTLS", reply.Command)
		s.golden(t, "smtp", "golden_postfix_notls_always.txt", replaceVersions(s,
			"Postfix {postfix}, SMTP without STARTTLS (smtpd_tls_security_level=none);\n"+
				"smtp.Dial, policy always: STARTTLS sent anyway and refused, ErrRefused."),
			transcript.String())
	})
	t.Run("opportunistic", func(t *testing.T) {
		ctx := testContext(t)
		tc, res, err := smtp.Dial(ctx, "tcp", s.addr["smtp_notls"], &smtp.Options{
			TLSConfig: s.tlsConfig(t, "smtp_notls"),
			Policy:    starttls.Opportunistic,
		})
		require.NoError(t, err)
		assert.Nil(t, tc)
		assert.True(t, res.Plaintext)
		assert.False(t, res.TLS)
		require.NotNil(t, res.Conn)
		closeOnCleanup(t, res.Conn)
		smtpQuit(t, res.Conn)
	})
}

// TestPostfixCertificate checks that verification really happens: another
// CA, or another name, fails the handshake with the x509 error in the
// chain.
func TestPostfixCertificate(t *testing.T) {
	s := realServers(t)
	other, err := tlsconf.NewCA("some other CA")
	require.NoError(t, err)
	tests := []struct {
		name     string
		listener string
		config   *tls.Config
	}{
		{"unknown CA starttls", "submission", tlsconf.Client("127.0.0.1", other.Pool())},
		{"unknown CA implicit", "smtps", tlsconf.Client("127.0.0.1", other.Pool())},
		{"wrong name", "submission", tlsconf.Client("mx.wrong.test", s.ca)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			mode := starttls.StartTLS
			if tt.listener == "smtps" {
				mode = starttls.Implicit
			}
			tc, res, err := smtp.Dial(ctx, "tcp", s.addr[tt.listener], &smtp.Options{TLSConfig: tt.config, Mode: mode})
			require.ErrorIs(t, err, starttls.ErrHandshake)
			var verr *tls.CertificateVerificationError
			require.ErrorAs(t, err, &verr)
			assert.Nil(t, tc)
			assert.False(t, res.TLS)
			assert.Equal(t, "certificate", starttls.Kind(err))
		})
	}
}

// smtpAuthPlain authenticates with AUTH PLAIN (RFC 4616, RFC 4954) and
// wants code.
func smtpAuthPlain(t *testing.T, c *starttls.Conn, user, password string, code int) {
	t.Helper()
	require.NotNil(t, c.TLS(), "credentials only inside TLS")
	resp := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
	require.NoError(t, c.WriteSecretLine("AUTH PLAIN "+resp))
	r, err := smtp.ReadReply(c)
	require.NoError(t, err)
	assert.Equal(t, code, r.Code, "AUTH PLAIN: got %d %v", r.Code, r.Lines)
}

// smtpQuit sends QUIT, wants 221 and the server's hang-up.
func smtpQuit(t *testing.T, c *starttls.Conn) {
	t.Helper()
	require.NoError(t, c.WriteLine("QUIT"))
	r, err := smtp.ReadReply(c)
	require.NoError(t, err)
	assert.Equal(t, 221, r.Code, "QUIT: got %d %v", r.Code, r.Lines)
	_, err = c.ReadLine()
	assert.True(t, errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF), "after 221 want the server's hang-up, got %v", err)
}
