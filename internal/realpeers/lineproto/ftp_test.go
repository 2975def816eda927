package lineproto_test

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/examples/ftp"
	"github.com/tlsup/tlsup/starttls"
)

func ftpDial(ctx context.Context, network, addr string, cfg *tls.Config, policy starttls.Policy, mode starttls.Mode, opts *starttls.Options) (*tls.Conn, *starttls.Result, error) {
	return ftp.Dial(ctx, network, addr, &ftp.Options{TLSConfig: cfg, Policy: policy, Mode: mode, Conn: opts})
}

// ftpFeatures returns the feature lines of the first 211 multi-line FEAT
// reply among the server's lines, without their leading space: what the
// upgrade must report, worked out without the library's parser.
func ftpFeatures(lines []string) []string {
	var out []string
	in := false
	for _, l := range lines {
		switch {
		case !in && strings.HasPrefix(l, "211-"):
			in = true
		case in && strings.HasPrefix(l, "211 "):
			return out
		case in:
			out = append(out, strings.TrimPrefix(l, " "))
		}
	}
	return nil
}

// ftpCommand sends line and checks the code of the reply.
func ftpCommand(t *testing.T, c *starttls.Conn, line string, wantCode int) {
	t.Helper()
	require.NoError(t, c.WriteLine(line))
	r, err := ftp.ReadReply(c)
	require.NoError(t, err)
	require.Equal(t, wantCode, r.Code, "%s: got %d %s", strings.Fields(line)[0], r.Code, r.Text())
}

// TestVsftpdUpgrade secures the control connection in every mode,
// compares FEAT with what vsftpd sent, logs in inside TLS and protects the
// data channel.
func TestVsftpdUpgrade(t *testing.T) {
	s := realServers(t)
	for _, tt := range []struct {
		name, listener   string
		mode, wantMode   starttls.Mode
		golden, describe string
	}{
		{name: "auth tls", listener: "ftp", mode: starttls.StartTLS, wantMode: starttls.StartTLS,
			golden:   "golden_vsftpd_ftp_starttls.txt",
			describe: "vsftpd {vsftpd}, ssl_enable=YES on port 21; ftp.Dial in mode starttls, policy required."},
		{name: "auto on 21", listener: "ftp", mode: starttls.Auto, wantMode: starttls.StartTLS},
		{name: "implicit", listener: "ftps", mode: starttls.Implicit, wantMode: starttls.Implicit,
			golden:   "golden_vsftpd_ftps_implicit.txt",
			describe: "vsftpd {vsftpd}, implicit_ssl=YES on port 990; ftp.Dial in mode implicit."},
		{name: "auto on 990", listener: "ftps", mode: starttls.Auto, wantMode: starttls.Implicit},
	} {
		t.Run(tt.name, func(t *testing.T) {
			se := s.run(t, ftpDial, tt.listener, s.TLSConfig(t, tt.listener), starttls.Required, tt.mode)
			checkVerified(t, se)
			res := se.res
			assert.Equal(t, tt.wantMode, res.Mode)
			assert.Equal(t, "(vsFTPd 3.0.3)", res.Greeting)
			if tt.wantMode == starttls.StartTLS {
				assert.Equal(t, ftpFeatures(se.before), res.Before.List(), "FEAT before TLS, as sent")
				assert.True(t, (&ftp.Upgrader{}).Offered(res.Before), "AUTH TLS offered: %q", res.Before.List())
			} else {
				assert.Nil(t, res.Before)
			}
			assert.Equal(t, ftpFeatures(se.after), res.After.List(), "FEAT after TLS, as sent")
			checkKeywords(t, "after TLS", res.After, []string{"PBSZ", "PROT"}, nil)
			if tt.golden != "" {
				s.golden(t, "ftp", tt.golden, s.describe(tt.describe), se)
			}
			ftpCommand(t, res.Conn, "USER "+s.User, 331)
			ftpCommand(t, res.Conn, "PASS "+s.Password, 230)
			// RFC 4217, Sections 8 and 9: the caller's next step.
			ftpCommand(t, res.Conn, "PBSZ 0", 200)
			ftpCommand(t, res.Conn, "PROT P", 200)
			ftpCommand(t, res.Conn, "QUIT", 221)
		})
	}
}

// TestVsftpdWrongCA: a certificate from another CA fails the handshake
// with a certificate error, in both modes.
func TestVsftpdWrongCA(t *testing.T) {
	s := realServers(t)
	for _, l := range []string{"ftp", "ftps"} {
		t.Run(l, func(t *testing.T) {
			checkCertificateError(t, s.run(t, ftpDial, l, s.wrongCA(t, l), starttls.Required, starttls.Auto))
		})
	}
}

// TestVsftpdNoTLS runs the three policies against vsftpd with
// ssl_enable=NO (no AUTH in FEAT), and Auto against its port 990, which
// speaks plaintext first.
func TestVsftpdNoTLS(t *testing.T) {
	s := realServers(t)
	t.Run("required", func(t *testing.T) {
		se := s.run(t, ftpDial, "ftp_notls", s.TLSConfig(t, "ftp_notls"), starttls.Required, starttls.Auto)
		require.ErrorIs(t, se.err, starttls.ErrNotOffered)
		assert.NotContains(t, se.transcript, "C: AUTH", "AUTH TLS must not be sent")
		assert.Equal(t, ftpFeatures(se.before), se.res.Before.List())
		s.golden(t, "ftp", "golden_vsftpd_notls_required.txt", s.describe(
			"vsftpd {vsftpd}, ssl_enable=NO; ftp.Dial in mode starttls, policy required:\n"+
				"ErrNotOffered, AUTH TLS never sent."), se)
	})
	t.Run("always", func(t *testing.T) {
		se := s.run(t, ftpDial, "ftp_notls", s.TLSConfig(t, "ftp_notls"), starttls.Always, starttls.Auto)
		require.ErrorIs(t, se.err, starttls.ErrRefused)
		var reply *starttls.ReplyError
		require.ErrorAs(t, se.err, &reply)
		assert.Equal(t, "AUTH TLS", reply.Command)
		assert.GreaterOrEqual(t, reply.Code, 500)
		s.golden(t, "ftp", "golden_vsftpd_notls_always.txt", s.describe(
			"vsftpd {vsftpd}, ssl_enable=NO; ftp.Dial in mode starttls, policy always:\n"+
				"AUTH TLS sent anyway, refused."), se)
	})
	t.Run("opportunistic", func(t *testing.T) {
		se := s.run(t, ftpDial, "ftp_notls", s.TLSConfig(t, "ftp_notls"), starttls.Opportunistic, starttls.Auto)
		require.NoError(t, se.err)
		assert.True(t, se.res.Plaintext)
		assert.False(t, se.res.TLS)
		ftpCommand(t, se.res.Conn, "QUIT", 221)
	})
	t.Run("990 plaintext", func(t *testing.T) {
		se := s.run(t, ftpDial, "ftps_notls", s.TLSConfig(t, "ftps_notls"), starttls.Required, starttls.Auto)
		require.ErrorIs(t, se.err, starttls.ErrHandshake)
		assert.Equal(t, starttls.Implicit, se.res.Mode)
		assert.False(t, se.res.TLS)
	})
}

// TestVsftpdProbe: examples/tlsprobe picks ftp by the port and reports
// what the library saw.
func TestVsftpdProbe(t *testing.T) {
	s := realServers(t)
	for _, l := range []string{"ftp", "ftps"} {
		t.Run(l, func(t *testing.T) {
			se := s.run(t, ftpDial, l, s.TLSConfig(t, l), starttls.Required, starttls.Auto)
			checkVerified(t, se)
			code, out := s.Probe(t, l)
			checkProbe(t, code, out, "ftp", se)
		})
	}
	code, out := s.Probe(t, "ftp_notls")
	assert.Equal(t, 1, code)
	if assert.NotNil(t, out.Error) {
		assert.Equal(t, "not-offered", out.Error.Kind)
	}
	code, _ = s.Probe(t, "ftp_notls", "-policy", "opportunistic")
	assert.Equal(t, 3, code, "opportunistic, continued in plaintext")
}
