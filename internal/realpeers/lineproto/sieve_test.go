package lineproto_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/examples/sieve"
	"github.com/tlsup/tlsup/starttls"
)

func sieveDial(ctx context.Context, network, addr string, cfg *tls.Config, policy starttls.Policy, mode starttls.Mode, opts *starttls.Options) (*tls.Conn, *starttls.Result, error) {
	return sieve.Dial(ctx, network, addr, &sieve.Options{TLSConfig: cfg, Policy: policy, Mode: mode, Conn: opts})
}

var quotedString = regexp.MustCompile(`"([^"\\]*)"`)

// sieveCapabilities returns the capability lines before the first OK among
// the server's lines, as "NAME value" (the name alone for an empty
// value): what the upgrade must report, worked out with a regular
// expression rather than the library's parser (Dovecot sends neither
// escapes nor literals).
func sieveCapabilities(lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, "OK") || strings.HasPrefix(l, "NO") || strings.HasPrefix(l, "BYE") {
			return out
		}
		m := quotedString.FindAllStringSubmatch(l, -1)
		entry := m[0][1]
		if len(m) > 1 && m[1][1] != "" {
			entry += " " + m[1][1]
		}
		out = append(out, entry)
	}
	return nil
}

// sieveCommand sends line and checks the status of the answer.
func sieveCommand(t *testing.T, c *starttls.Conn, line, wantStatus string) {
	t.Helper()
	require.NoError(t, c.WriteLine(line))
	reply, err := c.ReadLine()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(reply), wantStatus), "%s: got %q, want %s", strings.Fields(line)[0], reply, wantStatus)
}

const dovecotImplementation = "Dovecot (Debian) Pigeonhole"

// TestDovecotSieveUpgrade upgrades with STARTTLS (ManageSieve has no
// implicit port: Auto is STARTTLS), compares the capabilities before and
// the ones sent again after TLS with what Dovecot sent, and logs in inside
// TLS.
func TestDovecotSieveUpgrade(t *testing.T) {
	s := realServers(t)
	for _, tt := range []struct {
		name     string
		mode     starttls.Mode
		golden   string
		describe string
	}{
		{name: "starttls", mode: starttls.StartTLS, golden: "golden_dovecot_sieve_starttls.txt",
			describe: "Dovecot {dovecot} ManageSieve, ssl=yes, disable_plaintext_auth=yes (SASL empty before TLS);\n" +
				"sieve.Dial in mode starttls, policy required."},
		{name: "auto", mode: starttls.Auto},
	} {
		t.Run(tt.name, func(t *testing.T) {
			se := s.run(t, sieveDial, "sieve", s.TLSConfig(t, "sieve"), starttls.Required, tt.mode)
			checkVerified(t, se)
			res := se.res
			assert.Equal(t, starttls.StartTLS, res.Mode)
			assert.Equal(t, dovecotImplementation, res.Greeting)
			assert.Equal(t, sieveCapabilities(se.before), res.Before.List(), "capabilities before TLS, as sent")
			assert.Equal(t, sieveCapabilities(se.after), res.After.List(), "capabilities after TLS, as sent")
			checkKeywords(t, "before TLS", res.Before, []string{"IMPLEMENTATION", "SIEVE", "STARTTLS", "SASL"}, nil)
			checkKeywords(t, "after TLS", res.After, []string{"IMPLEMENTATION", "SIEVE", "SASL"}, []string{"STARTTLS"})
			// The SASL list seen before TLS is empty (no plaintext
			// login); the one after TLS is the one that counts.
			assert.Empty(t, res.Before.Params("SASL"))
			assert.Contains(t, res.After.Params("SASL"), "PLAIN")
			if tt.golden != "" {
				s.golden(t, "sieve", tt.golden, s.describe(tt.describe), se)
			}
			// RFC 5804, Section 2.1: AUTHENTICATE "PLAIN" with an
			// initial response.
			plain := base64.StdEncoding.EncodeToString([]byte("\x00" + s.User + "\x00" + s.Password))
			sieveCommand(t, res.Conn, `AUTHENTICATE "PLAIN" "`+plain+`"`, "OK")
			sieveCommand(t, res.Conn, "LOGOUT", "OK")
		})
	}
}

// TestDovecotSieveWrongCA: a certificate from another CA fails the
// handshake with a certificate error.
func TestDovecotSieveWrongCA(t *testing.T) {
	s := realServers(t)
	checkCertificateError(t, s.run(t, sieveDial, "sieve", s.wrongCA(t, "sieve"), starttls.Required, starttls.Auto))
}

// TestDovecotSieveNoTLS runs the three policies against Dovecot with
// ssl=no (no STARTTLS in the greeting).
func TestDovecotSieveNoTLS(t *testing.T) {
	s := realServers(t)
	t.Run("required", func(t *testing.T) {
		se := s.run(t, sieveDial, "sieve_notls", s.TLSConfig(t, "sieve_notls"), starttls.Required, starttls.Auto)
		require.ErrorIs(t, se.err, starttls.ErrNotOffered)
		assert.NotContains(t, se.transcript, "C: STARTTLS", "STARTTLS must not be sent")
		assert.Equal(t, sieveCapabilities(se.before), se.res.Before.List())
		s.golden(t, "sieve", "golden_dovecot_sieve_notls_required.txt", s.describe(
			"Dovecot {dovecot} ManageSieve, ssl=no; sieve.Dial in mode starttls, policy required:\n"+
				"ErrNotOffered, STARTTLS never sent."), se)
	})
	t.Run("always", func(t *testing.T) {
		se := s.run(t, sieveDial, "sieve_notls", s.TLSConfig(t, "sieve_notls"), starttls.Always, starttls.Auto)
		require.ErrorIs(t, se.err, starttls.ErrRefused)
		var reply *starttls.ReplyError
		require.ErrorAs(t, se.err, &reply)
		assert.Equal(t, "STARTTLS", reply.Command)
		assert.Equal(t, "NO", reply.Status)
		s.golden(t, "sieve", "golden_dovecot_sieve_notls_always.txt", s.describe(
			"Dovecot {dovecot} ManageSieve, ssl=no; sieve.Dial in mode starttls, policy always:\n"+
				"STARTTLS sent anyway, answered NO."), se)
	})
	t.Run("opportunistic", func(t *testing.T) {
		se := s.run(t, sieveDial, "sieve_notls", s.TLSConfig(t, "sieve_notls"), starttls.Opportunistic, starttls.Auto)
		require.NoError(t, se.err)
		assert.True(t, se.res.Plaintext)
		sieveCommand(t, se.res.Conn, "LOGOUT", "OK")
	})
}

// TestDovecotSieveProbe: examples/tlsprobe picks sieve by the port and
// reports what the library saw.
func TestDovecotSieveProbe(t *testing.T) {
	s := realServers(t)
	se := s.run(t, sieveDial, "sieve", s.TLSConfig(t, "sieve"), starttls.Required, starttls.Auto)
	checkVerified(t, se)
	code, out := s.Probe(t, "sieve")
	checkProbe(t, code, out, "sieve", se)
	code, out = s.Probe(t, "sieve_notls", "-protocol", "sieve")
	assert.Equal(t, 1, code)
	if assert.NotNil(t, out.Error) {
		assert.Equal(t, "not-offered", out.Error.Kind)
	}
}
