package realpeers_test

import (
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/realpeers/peerenv"
	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
)

// servers is what .ci/real-servers.sh passes in the environment.
type servers struct {
	*peerenv.Env
	postfixVersion string
	dovecotVersion string
}

// realServers returns the servers started by .ci/real-servers.sh, or skips
// the test when TLSUP_REAL_SERVERS is not 1: plain `go test ./...` stays
// hermetic. With TLSUP_REAL_SERVERS=1 every other variable is required.
func realServers(t *testing.T) *servers {
	t.Helper()
	e := peerenv.Load(t, peerenv.Script{
		Gate: "TLSUP_REAL_SERVERS", Path: ".ci/real-servers.sh", Tests: "internal/realpeers",
		Listeners: []string{
			"smtp", "submission", "smtps", "smtps_auto", "smtp_notls",
			"imap", "imaps", "imaps_auto", "imap_notls",
			"pop3", "pop3s", "pop3s_auto", "pop3_notls",
		},
	})
	return &servers{Env: e,
		postfixVersion: e.Need(t, "TLSUP_POSTFIX_VERSION"),
		dovecotVersion: e.Need(t, "TLSUP_DOVECOT_VERSION"),
	}
}

// port returns the port of listener's address.
func (s *servers) port(t *testing.T, listener string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(s.Addr[listener])
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return n
}

// testContext bounds one exchange with a real server on loopback.
var testContext = peerenv.Context

// closeOnCleanup closes c at the end of the test.
func closeOnCleanup(t *testing.T, c net.Conn) {
	t.Helper()
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
}

// syncBuffer is a transcript safe for writes from another goroutine.
type syncBuffer = scripttest.SyncBuffer

// checkVerified asserts that res describes a verified TLS session with the
// script's certificate.
func checkVerified(t *testing.T, res *starttls.Result) {
	t.Helper()
	require.True(t, res.TLS, "want TLS")
	assert.False(t, res.Plaintext)
	st := res.State
	assert.True(t, st.HandshakeComplete)
	assert.GreaterOrEqual(t, st.Version, uint16(tls.VersionTLS12), "got TLS version %#x", st.Version)
	require.NotEmpty(t, st.VerifiedChains, "want a chain verified against the throwaway CA")
	require.NotEmpty(t, st.PeerCertificates)
	assert.Contains(t, st.PeerCertificates[0].DNSNames, "localhost")
}

// checkCapabilities asserts the presence and absence of keywords.
var checkCapabilities = scripttest.CheckKeywords

// golden writes transcript, as recorded by a starttls.Conn, as a golden
// script for internal/scripttest to DIR/dir/testdata/name when capturing.
// IMAP tags become placeholders.
func (s *servers) golden(t *testing.T, dir, name, description, transcript string) {
	t.Helper()
	if s.Capture == "" {
		return
	}
	script, err := peerenv.GoldenScript(transcript, dir == "imap")
	require.NoError(t, err, "golden %s", name)
	s.WriteGolden(t, dir, name, description, script)
}

// probeJSON is the JSON object of examples/tlsprobe.
type probeJSON = peerenv.ProbeJSON

// checkProbe compares the probe's report with the library's result for the
// same listener.
func checkProbe(t *testing.T, code int, out probeJSON, res *starttls.Result) {
	t.Helper()
	assert.Equal(t, 0, code, "tlsprobe exit status")
	assert.True(t, out.TLS, "tlsprobe tls")
	assert.Nil(t, out.Error, "tlsprobe error")
	if assert.NotNil(t, out.Verified) {
		assert.True(t, *out.Verified)
	}
	assert.Equal(t, res.Mode.String(), out.Mode)
	if assert.NotNil(t, out.Greeting) {
		assert.Equal(t, res.Greeting, *out.Greeting)
	}
	if res.Before == nil {
		assert.Nil(t, out.CapabilitiesBefore, "capabilities_before in implicit mode")
	} else if assert.NotNil(t, out.CapabilitiesBefore) {
		assert.Equal(t, res.Before.List(), *out.CapabilitiesBefore, "capabilities_before")
	}
	if assert.NotNil(t, out.CapabilitiesAfter) {
		assert.Equal(t, res.After.List(), *out.CapabilitiesAfter, "capabilities_after")
	}
}

// replaceVersions fills {postfix} and {dovecot} in a golden description
// with the versions the script installed.
func replaceVersions(s *servers, text string) string {
	short := func(v string) string { // "2.3.19.1 (9b53102964)": the version
		if f := strings.Fields(v); len(f) > 0 {
			return f[0]
		}
		return v
	}
	return strings.NewReplacer("{postfix}", short(s.postfixVersion)+" (Debian 12)",
		"{dovecot}", short(s.dovecotVersion)+" (Debian 12)").Replace(text)
}

// The loopback source addresses of the wrong-password tests: Dovecot
// delays every later login from an address where one failed (its auth
// penalty), which must not slow down the other tests.
var (
	imapPenaltyAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 4)}
	pop3PenaltyAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 5)}
)

// dialFrom connects to listener from the local address from.
func (s *servers) dialFrom(t *testing.T, ctx context.Context, listener string, from *net.TCPAddr) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: from}
	conn, err := d.DialContext(ctx, "tcp", s.Addr[listener])
	require.NoError(t, err)
	closeOnCleanup(t, conn)
	return conn
}

// logOnFailure shows the dialogue if the test fails.
func logOnFailure(t *testing.T, dialogue string) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("transcript:\n%s", dialogue)
		}
	})
}
