package realpeers_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/imap"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

const dovecotGreeting = "Dovecot (Debian) ready."

// TestDovecotIMAPUpgrade upgrades to every Dovecot IMAP listener in every
// mode that applies, logs in inside TLS and logs out cleanly.
func TestDovecotIMAPUpgrade(t *testing.T) {
	s := realServers(t)
	tests := []struct {
		name          string
		listener      string
		mode          starttls.Mode
		wantMode      starttls.Mode
		upgrade       bool // imap.Upgrade on our own conn instead of Dial
		before, after []string
		notBefore     []string
		notAfter      []string
		golden        string
		description   string
	}{{
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
			if tt.listener == "imaps_auto" {
				require.Equal(t, 993, s.port(t, tt.listener), "Auto is tested on the well-known port")
			}
			ctx := testContext(t)
			var transcript syncBuffer
			opts := &imap.Options{
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
				tc, res, err = imap.Upgrade(ctx, conn, opts)
			} else {
				tc, res, err = imap.Dial(ctx, "tcp", s.addr[tt.listener], opts)
			}
			require.NoError(t, err)
			closeOnCleanup(t, tc)
			dialogue := transcript.String()
			logOnFailure(t, dialogue)

			checkVerified(t, res)
			assert.Equal(t, tt.wantMode, res.Mode)
			assert.True(t, strings.HasSuffix(res.Greeting, dovecotGreeting), "greeting %q", res.Greeting)
			if tt.wantMode == starttls.Implicit {
				assert.Nil(t, res.Before)
			} else {
				checkCapabilities(t, "before TLS", res.Before, tt.before, tt.notBefore)
			}
			checkCapabilities(t, "after TLS", res.After, tt.after, tt.notAfter)
			if tt.golden != "" {
				s.golden(t, "imap", tt.golden, replaceVersions(s, tt.description), dialogue)
			}

			imapLogin(t, res.Conn, s.user, s.password, "OK")
			imapLogout(t, res.Conn)
		})
	}
}

// TestDovecotIMAPWrongPassword: the login checked above is real.
func TestDovecotIMAPWrongPassword(t *testing.T) {
	s := realServers(t)
	ctx := testContext(t)
	conn := s.dialFrom(t, ctx, "imap", imapPenaltyAddr)
	tc, res, err := imap.Upgrade(ctx, conn, &imap.Options{TLSConfig: s.tlsConfig(t, "imap")})
	require.NoError(t, err)
	closeOnCleanup(t, tc)
	imapLogin(t, res.Conn, s.user, s.password+"-wrong", "NO")
	imapLogout(t, res.Conn)
}

// TestDovecotIMAPNoSTARTTLS runs the three policies against an IMAP
// listener without TLS.
func TestDovecotIMAPNoSTARTTLS(t *testing.T) {
	s := realServers(t)
	t.Run("required", func(t *testing.T) {
		ctx := testContext(t)
		var transcript syncBuffer
		tc, res, err := imap.Dial(ctx, "tcp", s.addr["imap_notls"], &imap.Options{
			TLSConfig: s.tlsConfig(t, "imap_notls"),
			Conn:      &starttls.Options{Transcript: &transcript},
		})
		require.ErrorIs(t, err, starttls.ErrNotOffered)
		assert.Nil(t, tc)
		assert.False(t, res.TLS)
		assert.True(t, res.Before.Has("LOGINDISABLED"), "got %v", res.Before.List())
		assert.NotContains(t, transcript.String(), "STARTTLS\n", "STARTTLS must not be sent under Required")
		s.golden(t, "imap", "golden_dovecot_imap_notls_required.txt", replaceVersions(s,
			"Dovecot {dovecot}, IMAP without TLS (ssl=no for this address);\n"+
				"imap.Dial in mode starttls, policy required: ErrNotOffered, STARTTLS never sent."),
			transcript.String())
	})
	t.Run("always", func(t *testing.T) {
		ctx := testContext(t)
		var transcript syncBuffer
		_, _, err := imap.Dial(ctx, "tcp", s.addr["imap_notls"], &imap.Options{
			TLSConfig: s.tlsConfig(t, "imap_notls"),
			Policy:    starttls.Always,
			Conn:      &starttls.Options{Transcript: &transcript},
		})
		require.ErrorIs(t, err, starttls.ErrRefused)
		var reply *starttls.ReplyError
		require.ErrorAs(t, err, &reply)
		assert.Equal(t, "BAD", reply.Status)
		s.golden(t, "imap", "golden_dovecot_imap_notls_always.txt", replaceVersions(s,
			"Dovecot {dovecot}, IMAP without TLS (ssl=no for this address);\n"+
				"imap.Dial, policy always: STARTTLS sent anyway and refused, ErrRefused."),
			transcript.String())
	})
	t.Run("opportunistic", func(t *testing.T) {
		ctx := testContext(t)
		tc, res, err := imap.Dial(ctx, "tcp", s.addr["imap_notls"], &imap.Options{
			TLSConfig: s.tlsConfig(t, "imap_notls"),
			Policy:    starttls.Opportunistic,
		})
		require.NoError(t, err)
		assert.Nil(t, tc)
		assert.True(t, res.Plaintext)
		require.NotNil(t, res.Conn)
		closeOnCleanup(t, res.Conn)
		imapLogout(t, res.Conn)
	})
}

// TestDovecotIMAPCertificate: a certificate from another CA fails.
func TestDovecotIMAPCertificate(t *testing.T) {
	s := realServers(t)
	other, err := tlsconf.NewCA("some other CA")
	require.NoError(t, err)
	host, _, err := net.SplitHostPort(s.addr["imap"])
	require.NoError(t, err)
	ctx := testContext(t)
	_, res, err := imap.Dial(ctx, "tcp", s.addr["imap"], &imap.Options{TLSConfig: tlsconf.Client(host, other.Pool())})
	require.ErrorIs(t, err, starttls.ErrHandshake)
	var verr *tls.CertificateVerificationError
	require.ErrorAs(t, err, &verr)
	assert.False(t, res.TLS)
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
