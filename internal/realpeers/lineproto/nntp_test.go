package lineproto_test

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/examples/nntp"
	"github.com/tlsup/tlsup/starttls"
)

func nntpDial(ctx context.Context, network, addr string, cfg *tls.Config, policy starttls.Policy, mode starttls.Mode, opts *starttls.Options) (*tls.Conn, *starttls.Result, error) {
	return nntp.Dial(ctx, network, addr, &nntp.Options{TLSConfig: cfg, Policy: policy, Mode: mode, Conn: opts})
}

// nntpList returns the lines of the first 101 CAPABILITIES list among the
// server's lines, dot-unstuffed: what the upgrade must report, worked out
// without the library's parser.
func nntpList(lines []string) []string {
	var out []string
	in := false
	for _, l := range lines {
		switch {
		case !in && strings.HasPrefix(l, "101"):
			in = true
		case in && l == ".":
			return out
		case in:
			out = append(out, strings.TrimPrefix(l, "."))
		}
	}
	return nil
}

// nntpCommand sends line and checks the status code of the answer.
func nntpCommand(t *testing.T, c *starttls.Conn, line, wantCode string) {
	t.Helper()
	require.NoError(t, c.WriteLine(line))
	reply, err := c.ReadLine()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(reply), wantCode+" "), "%s: got %q, want %s", strings.Fields(line)[0], reply, wantCode)
}

const innGreeting = "news.tlsup.test InterNetNews NNRP server INN "

// TestINNUpgrade upgrades to nnrpd in every mode, compares the
// capabilities with what it sent, and logs in inside TLS.
func TestINNUpgrade(t *testing.T) {
	s := realServers(t)
	for _, tt := range []struct {
		name, listener   string
		mode, wantMode   starttls.Mode
		golden, describe string
	}{
		{name: "starttls", listener: "nntp", mode: starttls.StartTLS, wantMode: starttls.StartTLS,
			golden:   "golden_inn_nntp_starttls.txt",
			describe: "INN {inn} nnrpd, STARTTLS on port 119; nntp.Dial in mode starttls, policy required."},
		{name: "auto on 119", listener: "nntp", mode: starttls.Auto, wantMode: starttls.StartTLS},
		{name: "implicit", listener: "nntps", mode: starttls.Implicit, wantMode: starttls.Implicit,
			golden:   "golden_inn_nntps_implicit.txt",
			describe: "INN {inn} nnrpd -S, implicit TLS on port 563; nntp.Dial in mode implicit."},
		{name: "auto on 563", listener: "nntps", mode: starttls.Auto, wantMode: starttls.Implicit},
	} {
		t.Run(tt.name, func(t *testing.T) {
			se := s.run(t, nntpDial, tt.listener, s.TLSConfig(t, tt.listener), starttls.Required, tt.mode)
			checkVerified(t, se)
			res := se.res
			assert.Equal(t, tt.wantMode, res.Mode)
			assert.True(t, strings.HasPrefix(res.Greeting, innGreeting), "greeting %q", res.Greeting)
			if tt.wantMode == starttls.StartTLS {
				assert.Equal(t, nntpList(se.before), res.Before.List(), "capabilities before TLS, as sent")
				checkKeywords(t, "before TLS", res.Before, []string{"VERSION", "READER", "STARTTLS"}, nil)
			} else {
				assert.Nil(t, res.Before)
			}
			assert.Equal(t, nntpList(se.after), res.After.List(), "capabilities after TLS, as sent")
			// RFC 4642, Section 2.2.2: no STARTTLS once TLS is on.
			checkKeywords(t, "after TLS", res.After, []string{"VERSION", "READER", "AUTHINFO"}, []string{"STARTTLS"})
			if tt.golden != "" {
				s.golden(t, "nntp", tt.golden, s.describe(tt.describe), se)
			}
			// RFC 4643, Section 2.3: AUTHINFO USER/PASS inside TLS.
			nntpCommand(t, res.Conn, "AUTHINFO USER "+s.User, "381")
			nntpCommand(t, res.Conn, "AUTHINFO PASS "+s.Password, "281")
			nntpCommand(t, res.Conn, "QUIT", "205")
		})
	}
}

// TestINNWrongCA: a certificate from another CA fails the handshake with
// a certificate error, in both modes.
func TestINNWrongCA(t *testing.T) {
	s := realServers(t)
	for _, l := range []string{"nntp", "nntps"} {
		t.Run(l, func(t *testing.T) {
			checkCertificateError(t, s.run(t, nntpDial, l, s.wrongCA(t, l), starttls.Required, starttls.Auto))
		})
	}
}

// TestINNNoTLS: nnrpd without a usable certificate still lists STARTTLS
// but answers it 580: a refusal under every policy (it was advertised).
// On port 563 without -S it speaks plaintext first: Auto picks implicit
// TLS, and the handshake fails; nothing continues in plaintext.
func TestINNNoTLS(t *testing.T) {
	s := realServers(t)
	for _, policy := range []starttls.Policy{starttls.Required, starttls.Always, starttls.Opportunistic} {
		t.Run("119 "+policy.String(), func(t *testing.T) {
			se := s.run(t, nntpDial, "nntp_notls", s.TLSConfig(t, "nntp_notls"), policy, starttls.Auto)
			require.ErrorIs(t, se.err, starttls.ErrRefused)
			var reply *starttls.ReplyError
			require.ErrorAs(t, se.err, &reply)
			assert.Equal(t, "STARTTLS", reply.Command)
			assert.Equal(t, 580, reply.Code)
			assert.False(t, se.res.TLS)
			assert.False(t, se.res.Plaintext)
			if policy == starttls.Required {
				s.golden(t, "nntp", "golden_inn_nntp_refused.txt", s.describe(
					"INN {inn} nnrpd without a usable certificate: STARTTLS listed, answered 580;\n"+
						"nntp.Dial in mode starttls, policy required: ErrRefused."), se)
			}
		})
	}
	t.Run("563 plaintext", func(t *testing.T) {
		se := s.run(t, nntpDial, "nntps_notls", s.TLSConfig(t, "nntps_notls"), starttls.Required, starttls.Auto)
		require.ErrorIs(t, se.err, starttls.ErrHandshake)
		assert.Equal(t, starttls.Implicit, se.res.Mode)
		assert.False(t, se.res.TLS)
		assert.Contains(t, se.err.Error(), "spoke plaintext first")
	})
}

// TestINNProbe: examples/tlsprobe picks nntp by the port and reports what
// the library saw.
func TestINNProbe(t *testing.T) {
	s := realServers(t)
	for _, l := range []string{"nntp", "nntps"} {
		t.Run(l, func(t *testing.T) {
			se := s.run(t, nntpDial, l, s.TLSConfig(t, l), starttls.Required, starttls.Auto)
			checkVerified(t, se)
			code, out := s.Probe(t, l)
			checkProbe(t, code, out, "nntp", se)
		})
	}
	code, out := s.Probe(t, "nntp_notls", "-protocol", "nntp")
	assert.Equal(t, 1, code)
	if assert.NotNil(t, out.Error) {
		assert.Equal(t, "refused", out.Error.Kind)
	}
}
