package realpeers_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/starttls"
)

// dialLibrary upgrades to listener with the library client of protocol, for
// comparison with what examples/tlsprobe reports.
func dialLibrary(t *testing.T, s *servers, protocol, listener string, mode starttls.Mode) *starttls.Result {
	t.Helper()
	c, ok := libClients[protocol]
	require.True(t, ok, "no library client for %q", protocol)
	tc, res, err := c.dial(testContext(t), s.Addr[listener], clientOptions{tls: s.TLSConfig(t, listener), mode: mode})
	require.NoError(t, err)
	tc.Close()
	return res
}

// TestTLSProbe runs examples/tlsprobe -json against the real servers and
// checks that it reports what the library saw on the same listener: TLS,
// the mode, the greeting and the capabilities before and after.
func TestTLSProbe(t *testing.T) {
	s := realServers(t)
	tests := []struct {
		name     string
		protocol string
		listener string
		mode     starttls.Mode
		args     []string
	}{
		{"smtp starttls", "smtp", "smtp", starttls.StartTLS, []string{"-protocol", "smtp", "-mode", "starttls"}},
		{"submission starttls", "smtp", "submission", starttls.StartTLS, []string{"-protocol", "smtp"}},
		{"smtps implicit", "smtp", "smtps", starttls.Implicit, []string{"-protocol", "smtp", "-mode", "implicit"}},
		// The well-known port alone gives protocol and mode.
		{"smtps auto on 465", "smtp", "smtps_auto", starttls.Auto, nil},
		{"imap starttls", "imap", "imap", starttls.StartTLS, []string{"-protocol", "imap", "-mode", "starttls"}},
		{"imaps implicit", "imap", "imaps", starttls.Implicit, []string{"-protocol", "imap", "-mode", "implicit"}},
		{"imaps auto on 993", "imap", "imaps_auto", starttls.Auto, nil},
		{"pop3 stls", "pop3", "pop3", starttls.StartTLS, []string{"-protocol", "pop3"}},
		{"pop3s implicit", "pop3", "pop3s", starttls.Implicit, []string{"-protocol", "pop3", "-mode", "implicit"}},
		{"pop3s auto on 995", "pop3", "pop3s_auto", starttls.Auto, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := dialLibrary(t, s, tt.protocol, tt.listener, tt.mode)
			code, out := s.Probe(t, tt.listener, tt.args...)
			assert.Equal(t, tt.protocol, out.Protocol)
			assert.Equal(t, "required", out.Policy)
			checkProbe(t, code, out, res)
		})
	}
}

// TestTLSProbeNotOffered: without STARTTLS, -policy required exits 1 with
// kind not-offered, and -policy opportunistic exits 3 in plaintext.
func TestTLSProbeNotOffered(t *testing.T) {
	s := realServers(t)
	for _, tt := range []struct{ protocol, listener string }{
		{"smtp", "smtp_notls"}, {"imap", "imap_notls"}, {"pop3", "pop3_notls"},
	} {
		t.Run(tt.protocol+" required", func(t *testing.T) {
			code, out := s.Probe(t, tt.listener, "-protocol", tt.protocol)
			assert.Equal(t, 1, code, "exit status")
			assert.False(t, out.TLS)
			if assert.NotNil(t, out.Error) {
				assert.Equal(t, "not-offered", out.Error.Kind)
			}
			assert.Nil(t, out.CapabilitiesAfter)
		})
		t.Run(tt.protocol+" opportunistic", func(t *testing.T) {
			code, out := s.Probe(t, tt.listener, "-protocol", tt.protocol, "-policy", "opportunistic")
			assert.Equal(t, 3, code, "exit status")
			assert.False(t, out.TLS)
			assert.Nil(t, out.Error)
		})
	}
}
