package realpeers_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/imap"
	"github.com/tlsup/tlsup/internal/errkind"
	"github.com/tlsup/tlsup/pop3"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// clientOptions are the settings the three clients' Options share.
type clientOptions struct {
	tls    *tls.Config
	mode   starttls.Mode
	policy starttls.Policy
	conn   *starttls.Options
}

// libClient is one of the library's clients, seen through the options the
// three share, so that one test body serves the three protocols.
type libClient struct {
	// protocol names the package, the listeners ("smtp", "smtps_auto",
	// "smtp_notls") and the directory of the golden transcripts.
	protocol string
	// implicitPort is the well-known port of implicit TLS (RFC 8314),
	// where the _auto listener must be for Auto to be tested.
	implicitPort int
	dial         func(ctx context.Context, addr string, o clientOptions) (*tls.Conn, *starttls.Result, error)
	upgrade      func(ctx context.Context, conn net.Conn, o clientOptions) (*tls.Conn, *starttls.Result, error)
}

var (
	smtpClient = libClient{
		protocol: "smtp", implicitPort: 465,
		dial: func(ctx context.Context, addr string, o clientOptions) (*tls.Conn, *starttls.Result, error) {
			return smtp.Dial(ctx, "tcp", addr, &smtp.Options{TLSConfig: o.tls, Mode: o.mode, Policy: o.policy, Conn: o.conn})
		},
		upgrade: func(ctx context.Context, conn net.Conn, o clientOptions) (*tls.Conn, *starttls.Result, error) {
			return smtp.Upgrade(ctx, conn, &smtp.Options{TLSConfig: o.tls, Mode: o.mode, Policy: o.policy, Conn: o.conn})
		},
	}
	imapClient = libClient{
		protocol: "imap", implicitPort: 993,
		dial: func(ctx context.Context, addr string, o clientOptions) (*tls.Conn, *starttls.Result, error) {
			return imap.Dial(ctx, "tcp", addr, &imap.Options{TLSConfig: o.tls, Mode: o.mode, Policy: o.policy, Conn: o.conn})
		},
		upgrade: func(ctx context.Context, conn net.Conn, o clientOptions) (*tls.Conn, *starttls.Result, error) {
			return imap.Upgrade(ctx, conn, &imap.Options{TLSConfig: o.tls, Mode: o.mode, Policy: o.policy, Conn: o.conn})
		},
	}
	pop3Client = libClient{
		protocol: "pop3", implicitPort: 995,
		dial: func(ctx context.Context, addr string, o clientOptions) (*tls.Conn, *starttls.Result, error) {
			return pop3.Dial(ctx, "tcp", addr, &pop3.Options{TLSConfig: o.tls, Mode: o.mode, Policy: o.policy, Conn: o.conn})
		},
		upgrade: func(ctx context.Context, conn net.Conn, o clientOptions) (*tls.Conn, *starttls.Result, error) {
			return pop3.Upgrade(ctx, conn, &pop3.Options{TLSConfig: o.tls, Mode: o.mode, Policy: o.policy, Conn: o.conn})
		},
	}
	// libClients maps a protocol name to its client.
	libClients = map[string]libClient{"smtp": smtpClient, "imap": imapClient, "pop3": pop3Client}
)

// upgradeCase is one row of the TestPostfixUpgrade, TestDovecotIMAPUpgrade
// and TestDovecotPOP3Upgrade tables.
type upgradeCase struct {
	name     string
	listener string
	mode     starttls.Mode
	wantMode starttls.Mode
	// upgrade: the client's Upgrade on a conn of our own instead of Dial
	upgrade       bool
	before, after []string // keywords that must be present
	notBefore     []string // and absent
	notAfter      []string
	login         bool   // SMTP: AUTH PLAIN inside TLS
	golden        string // the golden transcript to capture, "" for none
	description   string // its header, {postfix} and {dovecot} replaced
}

// upgrade connects to tt.listener with c as tt says, recording the
// dialogue, and checks what every protocol shares: a verified session, the
// mode, the capabilities before and after TLS (none before in implicit
// mode). It captures tt.golden when capturing and returns the Result.
func (s *servers) upgrade(t *testing.T, c libClient, tt upgradeCase) *starttls.Result {
	t.Helper()
	if tt.listener == c.protocol+"s_auto" {
		require.Equal(t, c.implicitPort, s.port(t, tt.listener), "Auto is tested on the well-known port")
	}
	ctx := testContext(t)
	var transcript syncBuffer
	opts := clientOptions{
		tls:  s.TLSConfig(t, tt.listener),
		mode: tt.mode,
		conn: &starttls.Options{Transcript: &transcript},
	}
	var tc *tls.Conn
	var res *starttls.Result
	var err error
	if tt.upgrade {
		var d net.Dialer
		conn, derr := d.DialContext(ctx, "tcp", s.Addr[tt.listener])
		require.NoError(t, derr)
		closeOnCleanup(t, conn)
		tc, res, err = c.upgrade(ctx, conn, opts)
	} else {
		tc, res, err = c.dial(ctx, s.Addr[tt.listener], opts)
	}
	require.NoError(t, err)
	closeOnCleanup(t, tc)
	dialogue := transcript.String()
	logOnFailure(t, dialogue)

	checkVerified(t, res)
	assert.Equal(t, tt.wantMode, res.Mode)
	if tt.wantMode == starttls.Implicit {
		assert.Nil(t, res.Before, "no capabilities before TLS in implicit mode")
	} else {
		checkCapabilities(t, "before TLS", res.Before, tt.before, tt.notBefore)
	}
	checkCapabilities(t, "after TLS", res.After, tt.after, tt.notAfter)
	if tt.golden != "" {
		s.golden(t, c.protocol, tt.golden, replaceVersions(s, tt.description), dialogue)
	}
	return res
}

// noTLSCase says what a listener without TLS must give under each policy.
type noTLSCase struct {
	client libClient
	// required: the capabilities before TLS, and the transcript text that
	// would show the upgrade command sent.
	hasBefore, lacksBefore []string
	command, sent          string
	// always: the refusal of the command sent anyway.
	refusal func(t *testing.T, reply *starttls.ReplyError)
	// opportunistic: ends the plaintext session cleanly.
	quit func(t *testing.T, c *starttls.Conn)
	// The golden transcripts of required and always, with their headers.
	requiredGolden, requiredDescription string
	alwaysGolden, alwaysDescription     string
}

// noTLS runs the three policies against the protocol's _notls listener, as
// the subtests "required", "always" and "opportunistic".
func (s *servers) noTLS(t *testing.T, n noTLSCase) {
	t.Helper()
	listener := n.client.protocol + "_notls"
	dial := func(t *testing.T, policy starttls.Policy, transcript *syncBuffer) (*tls.Conn, *starttls.Result, error) {
		t.Helper()
		opts := clientOptions{tls: s.TLSConfig(t, listener), policy: policy}
		if transcript != nil {
			opts.conn = &starttls.Options{Transcript: transcript}
		}
		return n.client.dial(testContext(t), s.Addr[listener], opts)
	}
	t.Run("required", func(t *testing.T) {
		var transcript syncBuffer
		tc, res, err := dial(t, starttls.Required, &transcript)
		require.ErrorIs(t, err, starttls.ErrNotOffered)
		assert.Nil(t, tc)
		assert.False(t, res.TLS)
		checkCapabilities(t, "before TLS", res.Before, n.hasBefore, n.lacksBefore)
		assert.NotContains(t, transcript.String(), n.sent, "%s must not be sent under Required", n.command)
		s.golden(t, n.client.protocol, n.requiredGolden, replaceVersions(s, n.requiredDescription), transcript.String())
	})
	t.Run("always", func(t *testing.T) {
		var transcript syncBuffer
		_, _, err := dial(t, starttls.Always, &transcript)
		require.ErrorIs(t, err, starttls.ErrRefused)
		var reply *starttls.ReplyError
		require.ErrorAs(t, err, &reply)
		n.refusal(t, reply)
		s.golden(t, n.client.protocol, n.alwaysGolden, replaceVersions(s, n.alwaysDescription), transcript.String())
	})
	t.Run("opportunistic", func(t *testing.T) {
		tc, res, err := dial(t, starttls.Opportunistic, nil)
		require.NoError(t, err)
		assert.Nil(t, tc)
		assert.True(t, res.Plaintext)
		assert.False(t, res.TLS)
		require.NotNil(t, res.Conn)
		closeOnCleanup(t, res.Conn)
		n.quit(t, res.Conn)
	})
}

// checkUntrusted dials listener in mode with cfg, a config that must not
// accept the server's certificate: the handshake fails with the x509
// error in the chain, classified "certificate".
func (s *servers) checkUntrusted(t *testing.T, c libClient, listener string, mode starttls.Mode, cfg *tls.Config) {
	t.Helper()
	tc, res, err := c.dial(testContext(t), s.Addr[listener], clientOptions{tls: cfg, mode: mode})
	require.ErrorIs(t, err, starttls.ErrHandshake)
	var verr *tls.CertificateVerificationError
	require.ErrorAs(t, err, &verr)
	assert.Nil(t, tc)
	assert.False(t, res.TLS)
	assert.Equal(t, "certificate", errkind.Of(err))
}

// otherCA returns a client config for listener's host that trusts only a
// CA the servers never heard of.
func (s *servers) otherCA(t *testing.T, listener string) *tls.Config {
	t.Helper()
	other, err := tlsconf.NewCA("some other CA")
	require.NoError(t, err)
	host, _, err := net.SplitHostPort(s.Addr[listener])
	require.NoError(t, err)
	return tlsconf.Client(host, other.Pool())
}
