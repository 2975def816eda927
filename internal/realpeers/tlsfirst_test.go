package realpeers_test

import (
	"encoding/base64"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/pop3"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
)

// TestTLSFirstRule shows that the servers really refuse authentication
// before TLS, so that the capability differences checked elsewhere are the
// servers' policy and not an accident of the set-up (Dovecot trusts a
// connection from its own address; see .ci/real-servers/dovecot.conf). The
// credentials sent here in plaintext are deliberately wrong.
func TestTLSFirstRule(t *testing.T) {
	s := realServers(t)
	plain := func(t *testing.T, listener string) *starttls.Conn {
		t.Helper()
		ctx := testContext(t)
		// From an address of its own: should a server count these
		// refusals as failed logins, no other test pays the penalty.
		conn := s.dialFrom(t, ctx, listener, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 6)})
		release := starttls.WatchContext(ctx, conn)
		t.Cleanup(release)
		return starttls.NewConn(conn, nil)
	}
	t.Run("postfix submission AUTH before STARTTLS", func(t *testing.T) {
		c := plain(t, "submission")
		r, err := smtp.ReadReply(c)
		require.NoError(t, err)
		require.Equal(t, 220, r.Code)
		require.NoError(t, c.WriteLine("EHLO localhost"))
		r, err = smtp.ReadReply(c)
		require.NoError(t, err)
		require.Equal(t, 250, r.Code)
		bogus := base64.StdEncoding.EncodeToString([]byte("\x00nobody\x00not-the-password"))
		require.NoError(t, c.WriteLine("AUTH PLAIN "+bogus))
		r, err = smtp.ReadReply(c)
		require.NoError(t, err)
		// RFC 3207, Section 4: 530 "Must issue a STARTTLS command first".
		assert.Equal(t, 530, r.Code, "got %d %v", r.Code, r.Lines)
		smtpQuit(t, c)
	})
	t.Run("dovecot IMAP LOGIN before STARTTLS", func(t *testing.T) {
		c := plain(t, "imap")
		line, err := c.ReadLine()
		require.NoError(t, err)
		require.Contains(t, string(line), "LOGINDISABLED")
		status, _ := imapCommand(t, c, "P1", "LOGIN nobody not-the-password", false)
		// RFC 9051, Section 6.2.3: LOGIN with LOGINDISABLED fails.
		assert.Equal(t, "NO", status)
		imapLogout(t, c)
	})
	t.Run("dovecot POP3 USER before STLS", func(t *testing.T) {
		c := plain(t, "pop3")
		r, err := pop3.ReadResponse(c)
		require.NoError(t, err)
		require.True(t, r.OK)
		require.NoError(t, c.WriteLine("USER nobody"))
		r, err = pop3.ReadResponse(c)
		require.NoError(t, err)
		assert.False(t, r.OK, "USER before STLS: got +OK %s", r.Text)
		assert.True(t, strings.Contains(r.Text, "Plaintext authentication disallowed"), "got %q", r.Text)
		pop3Quit(t, c)
	})
}
