package realpeers_test

import (
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/pop3"
	"github.com/tlsup/tlsup/starttls"
)

// TestDovecotPOP3Upgrade upgrades to every Dovecot POP3 listener in every
// mode that applies, logs in with USER/PASS inside TLS and quits cleanly.
func TestDovecotPOP3Upgrade(t *testing.T) {
	s := realServers(t)
	tests := []upgradeCase{{
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
			res := s.upgrade(t, pop3Client, tt)
			assert.Equal(t, dovecotGreeting, res.Greeting)
			assert.Contains(t, res.After.Params("SASL"), "PLAIN")
			pop3Login(t, res.Conn, s.User, s.Password, true)
			pop3Quit(t, res.Conn)
		})
	}
}

// TestDovecotPOP3WrongPassword: the login checked above is real.
func TestDovecotPOP3WrongPassword(t *testing.T) {
	s := realServers(t)
	ctx := testContext(t)
	conn := s.dialFrom(t, ctx, "pop3", pop3PenaltyAddr)
	tc, res, err := pop3.Upgrade(ctx, conn, &pop3.Options{TLSConfig: s.TLSConfig(t, "pop3")})
	require.NoError(t, err)
	closeOnCleanup(t, tc)
	pop3Login(t, res.Conn, s.User, s.Password+"-wrong", false)
	pop3Quit(t, res.Conn)
}

// TestDovecotPOP3NoSTLS runs the three policies against a POP3 listener
// without TLS.
func TestDovecotPOP3NoSTLS(t *testing.T) {
	s := realServers(t)
	s.noTLS(t, noTLSCase{
		client:      pop3Client,
		lacksBefore: []string{"STLS"},
		command:     "STLS", sent: "C: STLS",
		refusal: func(t *testing.T, reply *starttls.ReplyError) {
			assert.Equal(t, "-ERR", reply.Status)
		},
		quit:           pop3Quit,
		requiredGolden: "golden_dovecot_pop3_notls_required.txt",
		requiredDescription: "Dovecot {dovecot}, POP3 without TLS (ssl=no for this address);\n" +
			"pop3.Dial in mode starttls, policy required: ErrNotOffered, STLS never sent.",
		alwaysGolden: "golden_dovecot_pop3_notls_always.txt",
		alwaysDescription: "Dovecot {dovecot}, POP3 without TLS (ssl=no for this address);\n" +
			"pop3.Dial, policy always: STLS sent anyway and refused, ErrRefused.",
	})
}

// TestDovecotPOP3Certificate: a certificate from another CA fails.
func TestDovecotPOP3Certificate(t *testing.T) {
	s := realServers(t)
	s.checkUntrusted(t, pop3Client, "pop3s", starttls.Implicit, s.otherCA(t, "pop3s"))
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
