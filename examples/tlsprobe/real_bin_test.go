package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
)

// TestRealBinaryProtocols runs the probe against the PostgreSQL, slapd and
// Prosody instances of .ci/real-binproto.sh (TLSUP_REAL_BINPROTO=1).
func TestRealBinaryProtocols(t *testing.T) {
	if os.Getenv("TLSUP_REAL_BINPROTO") != "1" {
		t.Skip("TLSUP_REAL_BINPROTO=1 not set: real servers are started by .ci/real-binproto.sh")
	}
	env := func(name string) string {
		v := os.Getenv(name)
		require.NotEmpty(t, v, "%s not set", name)
		return v
	}
	ca := env("TLSUP_CA")
	wrongCA := filepath.Join(t.TempDir(), "wrong.pem")
	require.NoError(t, os.WriteFile(wrongCA, scripttest.NewPKI(t).CA.CertPEM(), 0o600))
	tests := []struct {
		name string
		args []string
		code int
		kind string
	}{
		{"postgres", []string{"-protocol", "postgres", env("TLSUP_PG_ADDR")}, exitTLS, ""},
		{"postgres by port", []string{"-servername", "db.tlsup.test", env("TLSUP_PG_ADDR")}, exitTLS, ""},
		{"postgres N required", []string{"-protocol", "postgres", env("TLSUP_PG_NOTLS_ADDR")}, exitFailed, "not-offered"},
		{"postgres N opportunistic", []string{"-protocol", "postgres", "-policy", "opportunistic", env("TLSUP_PG_NOTLS_ADDR")}, exitPlaintext, ""},
		{"postgres wrong CA", []string{"-protocol", "postgres", "-cafile", wrongCA, env("TLSUP_PG_ADDR")}, exitFailed, "certificate"},
		{"ldap", []string{"-protocol", "ldap", env("TLSUP_LDAP_ADDR")}, exitTLS, ""},
		{"ldaps", []string{"-protocol", "ldap", env("TLSUP_LDAPS_ADDR")}, exitTLS, ""},
		{"ldap without TLS", []string{"-protocol", "ldap", env("TLSUP_LDAP_NOTLS_ADDR")}, exitFailed, "not-offered"},
		{"ldap without TLS opportunistic", []string{"-protocol", "ldap", "-policy", "opportunistic", env("TLSUP_LDAP_NOTLS_ADDR")}, exitPlaintext, ""},
		{"ldap wrong CA", []string{"-protocol", "ldap", "-cafile", wrongCA, env("TLSUP_LDAP_ADDR")}, exitFailed, "certificate"},
		{"xmpp", []string{"-protocol", "xmpp", "-servername", env("TLSUP_XMPP_DOMAIN"), env("TLSUP_XMPP_ADDR")}, exitTLS, ""},
		{"xmpp required", []string{"-protocol", "xmpp", "-servername", env("TLSUP_XMPP_REQUIRED_DOMAIN"), env("TLSUP_XMPP_ADDR")}, exitTLS, ""},
		{"xmpp direct TLS", []string{"-protocol", "xmpp", "-servername", env("TLSUP_XMPP_DOMAIN"), env("TLSUP_XMPPS_ADDR")}, exitTLS, ""},
		{"xmpp not offered", []string{"-protocol", "xmpp", "-servername", env("TLSUP_XMPP_NOTLS_DOMAIN"), env("TLSUP_XMPP_NOTLS_ADDR")}, exitFailed, "not-offered"},
		{"xmpp not offered opportunistic", []string{"-protocol", "xmpp", "-policy", "opportunistic", "-servername", env("TLSUP_XMPP_NOTLS_DOMAIN"), env("TLSUP_XMPP_NOTLS_ADDR")}, exitPlaintext, ""},
		{"xmpp wrong CA", []string{"-protocol", "xmpp", "-cafile", wrongCA, "-servername", env("TLSUP_XMPP_DOMAIN"), env("TLSUP_XMPP_ADDR")}, exitFailed, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-json", "-timeout", "15s", "-cafile", ca}, tt.args...)
			r := runProbe(t, args...)
			assert.Equal(t, tt.code, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			assert.Equal(t, tt.kind, r.errorKind(t))
			if tt.code == exitTLS {
				assert.Equal(t, true, r.json["verified"])
				assert.NotNil(t, r.json["capabilities_after"])
			}
			t.Logf("%s: tls %v, greeting %v, before %v, after %v", tt.name, r.json["tls"], r.json["greeting"],
				r.json["capabilities_before"], r.json["capabilities_after"])
		})
	}
}
