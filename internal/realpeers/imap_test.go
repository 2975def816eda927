package realpeers_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/imap"
	"github.com/tlsup/tlsup/starttls"
)

const dovecotGreeting = "Dovecot (Debian) ready."

// TestDovecotIMAPUpgrade upgrades to every Dovecot IMAP listener in every
// mode that applies, logs in inside TLS and logs out cleanly.
func TestDovecotIMAPUpgrade(t *testing.T) {
	s := realServers(t)
	tests := []upgradeCase{{
		name: "imap starttls", listener: "imap", mode: starttls.StartTLS, wantMode: starttls.StartTLS,
		// RFC 9051, Section 6.2.3 (LOGINDISABLED): Dovecot with
		// disable_plaintext_auth refuses LOGIN until TLS.
		before: []string{"STARTTLS", "LOGINDISABLED"}, notBefore: []string{"AUTH=PLAIN"},
		after: []string{"IMAP4rev1", "AUTH=PLAIN"}, notAfter: []string{"STARTTLS", "LOGINDISABLED"},
		golden: "golden_dovecot_imap_starttls.txt",
		description: "Dovecot {dovecot}, IMAP with STARTTLS and disable_plaintext_auth=yes\n" +
			"(LOGINDISABLED before TLS); imap.Dial in mode starttls, policy required.",
	}, {
		name: "imap auto", listener: "imap", mode: starttls.Auto, wantMode: starttls.StartTLS,
		before: []string{"STARTTLS", "LOGINDISABLED"}, notAfter: []string{"STARTTLS", "LOGINDISABLED"},
	}, {
		name: "imap upgrade", listener: "imap", mode: starttls.StartTLS, wantMode: starttls.StartTLS, upgrade: true,
		before: []string{"STARTTLS", "LOGINDISABLED"}, notAfter: []string{"STARTTLS", "LOGINDISABLED"},
	}, {
		name: "imaps implicit", listener: "imaps", mode: starttls.Implicit, wantMode: starttls.Implicit,
		after: []string{"IMAP4rev1", "AUTH=PLAIN"}, notAfter: []string{"STARTTLS", "LOGINDISABLED"},
		golden:      "golden_dovecot_imaps_implicit.txt",
		description: "Dovecot {dovecot}, IMAP over implicit TLS; imap.Dial in mode implicit.",
	}, {
		name: "imaps auto on 993", listener: "imaps_auto", mode: starttls.Auto, wantMode: starttls.Implicit,
		after: []string{"AUTH=PLAIN"}, notAfter: []string{"LOGINDISABLED"},
	}, {
		name: "imaps upgrade auto on 993", listener: "imaps_auto", mode: starttls.Auto, wantMode: starttls.Implicit, upgrade: true,
		after: []string{"AUTH=PLAIN"}, notAfter: []string{"LOGINDISABLED"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := s.upgrade(t, imapClient, tt)
			assert.True(t, strings.HasSuffix(res.Greeting, dovecotGreeting), "greeting %q", res.Greeting)
			imapLogin(t, res.Conn, s.User, s.Password, "OK")
			imapLogout(t, res.Conn)
		})
	}
}

// TestDovecotIMAPWrongPassword: the login checked above is real.
func TestDovecotIMAPWrongPassword(t *testing.T) {
	s := realServers(t)
	ctx := testContext(t)
	conn := s.dialFrom(t, ctx, "imap", imapPenaltyAddr)
	tc, res, err := imap.Upgrade(ctx, conn, &imap.Options{TLSConfig: s.TLSConfig(t, "imap")})
	require.NoError(t, err)
	closeOnCleanup(t, tc)
	imapLogin(t, res.Conn, s.User, s.Password+"-wrong", "NO")
	imapLogout(t, res.Conn)
}

// TestDovecotIMAPNoSTARTTLS runs the three policies against an IMAP
// listener without TLS.
func TestDovecotIMAPNoSTARTTLS(t *testing.T) {
	s := realServers(t)
	s.noTLS(t, noTLSCase{
		client:    imapClient,
		hasBefore: []string{"LOGINDISABLED"},
		command:   "STARTTLS", sent: "STARTTLS\n",
		refusal: func(t *testing.T, reply *starttls.ReplyError) {
			assert.Equal(t, "BAD", reply.Status)
		},
		quit:           imapLogout,
		requiredGolden: "golden_dovecot_imap_notls_required.txt",
		requiredDescription: "Dovecot {dovecot}, IMAP without TLS (ssl=no for this address);\n" +
			"imap.Dial in mode starttls, policy required: ErrNotOffered, STARTTLS never sent.",
		alwaysGolden: "golden_dovecot_imap_notls_always.txt",
		alwaysDescription: "Dovecot {dovecot}, IMAP without TLS (ssl=no for this address);\n" +
			"imap.Dial, policy always: STARTTLS sent anyway and refused, ErrRefused.",
	})
}

// TestDovecotIMAPCertificate: a certificate from another CA fails.
func TestDovecotIMAPCertificate(t *testing.T) {
	s := realServers(t)
	s.checkUntrusted(t, imapClient, "imap", starttls.Auto, s.otherCA(t, "imap"))
}

// imapCommand sends line with tag and reads up to its completion, whose
// status it returns; it reports whether an untagged BYE came first.
func imapCommand(t *testing.T, c *starttls.Conn, tag, line string, secret bool) (status string, bye bool) {
	t.Helper()
	if secret {
		require.NoError(t, c.WriteSecretLine(tag+" "+line))
	} else {
		require.NoError(t, c.WriteLine(tag+" "+line))
	}
	err := imap.ReadResponses(c, 0, func(r *imap.Response) (bool, error) {
		if r.Tag == "*" && r.Status == "BYE" {
			bye = true
		}
		if r.Tag != tag {
			return true, nil
		}
		status = r.Status
		return false, nil
	})
	require.NoError(t, err)
	return status, bye
}

// imapLogin sends LOGIN (RFC 9051, Section 6.2.3) and wants status.
func imapLogin(t *testing.T, c *starttls.Conn, user, password, want string) {
	t.Helper()
	require.NotNil(t, c.TLS(), "credentials only inside TLS")
	status, _ := imapCommand(t, c, "L1", "LOGIN "+user+" "+password, true)
	assert.Equal(t, want, status, "LOGIN")
}

// imapLogout sends LOGOUT and wants BYE, OK and the server's hang-up.
func imapLogout(t *testing.T, c *starttls.Conn) {
	t.Helper()
	status, bye := imapCommand(t, c, "L2", "LOGOUT", false)
	assert.Equal(t, "OK", status, "LOGOUT")
	assert.True(t, bye, "LOGOUT: want an untagged BYE")
	_, err := c.ReadLine()
	assert.True(t, errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF), "after LOGOUT want the server's hang-up, got %v", err)
}
