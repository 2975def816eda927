package realpeers_test

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
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
	tests := []upgradeCase{{
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
			res := s.upgrade(t, smtpClient, tt)
			assert.Equal(t, postfixGreeting, res.Greeting)

			c := res.Conn
			if tt.login {
				mechs := res.After.Params("AUTH")
				require.Contains(t, mechs, "PLAIN", "AUTH mechanisms after TLS")
				smtpAuthPlain(t, c, s.User, s.Password, 235)
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
	tc, res, err := smtp.Dial(ctx, "tcp", s.Addr["submission"], &smtp.Options{TLSConfig: s.TLSConfig(t, "submission")})
	require.NoError(t, err)
	closeOnCleanup(t, tc)
	smtpAuthPlain(t, res.Conn, s.User, s.Password+"-wrong", 535)
	smtpQuit(t, res.Conn)
}

// TestPostfixNoSTARTTLS runs the three policies against a listener that
// does not offer STARTTLS.
func TestPostfixNoSTARTTLS(t *testing.T) {
	s := realServers(t)
	s.noTLS(t, noTLSCase{
		client:      smtpClient,
		lacksBefore: []string{"STARTTLS"},
		command:     "STARTTLS", sent: "C: STARTTLS",
		refusal: func(t *testing.T, reply *starttls.ReplyError) {
			assert.Equal(t, 502, reply.Code, "Postfix answers STARTTLS without TLS support with 502")
			assert.Equal(t, "STARTTLS", reply.Command)
		},
		quit:           smtpQuit,
		requiredGolden: "golden_postfix_notls_required.txt",
		requiredDescription: "Postfix {postfix}, SMTP without STARTTLS (smtpd_tls_security_level=none);\n" +
			"smtp.Dial in mode starttls, policy required: ErrNotOffered, STARTTLS never sent.",
		alwaysGolden: "golden_postfix_notls_always.txt",
		alwaysDescription: "Postfix {postfix}, SMTP without STARTTLS (smtpd_tls_security_level=none);\n" +
			"smtp.Dial, policy always: STARTTLS sent anyway and refused, ErrRefused.",
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
		{"wrong name", "submission", tlsconf.Client("mx.wrong.test", s.CA)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mode := starttls.StartTLS
			if tt.listener == "smtps" {
				mode = starttls.Implicit
			}
			s.checkUntrusted(t, smtpClient, tt.listener, mode, tt.config)
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
