package lineproto_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/realpeers/peerenv"
	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// servers is what .ci/real-lineproto.sh passes in the environment.
type servers struct {
	*peerenv.Env
	versions map[string]string // "dovecot", "inn", "vsftpd"
}

// realServers returns the servers started by .ci/real-lineproto.sh, or
// skips the test when TLSUP_REAL_LINEPROTO is not 1: plain `go test ./...`
// stays hermetic. With TLSUP_REAL_LINEPROTO=1 every variable is required.
func realServers(t *testing.T) *servers {
	t.Helper()
	e := peerenv.Load(t, peerenv.Script{
		Gate: "TLSUP_REAL_LINEPROTO", Path: ".ci/real-lineproto.sh", Tests: "internal/realpeers/lineproto",
		Listeners: []string{
			"sieve", "sieve_notls",
			"nntp", "nntps", "nntp_notls", "nntps_notls",
			"ftp", "ftps", "ftp_notls", "ftps_notls",
		},
	})
	e.Need(t, "TLSUP_TLSPROBE")
	s := &servers{Env: e, versions: map[string]string{}}
	for _, v := range []string{"dovecot", "inn", "vsftpd"} {
		s.versions[v] = e.Need(t, "TLSUP_"+strings.ToUpper(v)+"_VERSION")
	}
	return s
}

// wrongCA returns a verifying config for listener that trusts a fresh CA
// that signed nothing the servers present.
func (s *servers) wrongCA(t *testing.T, listener string) *tls.Config {
	t.Helper()
	other, err := tlsconf.NewCA("tlsup unrelated CA")
	require.NoError(t, err)
	host, _, err := net.SplitHostPort(s.Addr[listener])
	require.NoError(t, err)
	return tlsconf.Client(host, other.Pool())
}

// dial is a protocol's Dial with the settings of a case.
type dial func(ctx context.Context, network, addr string, cfg *tls.Config, policy starttls.Policy, mode starttls.Mode, opts *starttls.Options) (*tls.Conn, *starttls.Result, error)

// session is one upgrade's outcome and what the server said in it.
type session struct {
	tc         *tls.Conn
	res        *starttls.Result
	err        error
	transcript string // the dialogue up to the end of the upgrade
	before     []string
	after      []string // the server's lines before and after "-- TLS --"
}

// run dials listener with d and splits the transcript at the handshake.
// The connection is closed at the end of the test.
func (s *servers) run(t *testing.T, d dial, listener string, cfg *tls.Config, policy starttls.Policy, mode starttls.Mode) *session {
	t.Helper()
	var transcript scripttest.SyncBuffer
	tc, res, err := d(peerenv.Context(t), "tcp", s.Addr[listener], cfg, policy, mode, &starttls.Options{Transcript: &transcript})
	require.NotNil(t, res)
	switch {
	case tc != nil:
		t.Cleanup(func() { tc.Close() })
	case res.Conn != nil:
		t.Cleanup(func() { res.Conn.Close() })
	}
	se := &session{tc: tc, res: res, err: err, transcript: transcript.String()}
	inside := false
	for _, line := range strings.Split(se.transcript, "\n") {
		switch {
		case line == "-- TLS --":
			inside = true
		case strings.HasPrefix(line, "S: ") && inside:
			se.after = append(se.after, line[3:])
		case strings.HasPrefix(line, "S: "):
			se.before = append(se.before, line[3:])
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("transcript:\n%s", se.transcript)
		}
	})
	return se
}

// checkVerified asserts a verified TLS session with the script's
// certificate.
func checkVerified(t *testing.T, se *session) {
	t.Helper()
	require.NoError(t, se.err)
	require.True(t, se.res.TLS, "want TLS")
	assert.False(t, se.res.Plaintext)
	st := se.res.State
	assert.True(t, st.HandshakeComplete)
	assert.GreaterOrEqual(t, st.Version, uint16(tls.VersionTLS12), "got TLS version %#x", st.Version)
	require.NotEmpty(t, st.VerifiedChains, "want a chain verified against the throwaway CA")
	assert.Contains(t, st.PeerCertificates[0].DNSNames, "localhost")
	require.NotNil(t, se.res.Conn)
	assert.Equal(t, se.tc, se.res.Conn.TLS())
}

// checkCertificateError asserts that a wrong CA failed the handshake with
// a certificate error, after the go-ahead in STARTTLS mode.
func checkCertificateError(t *testing.T, se *session) {
	t.Helper()
	require.Error(t, se.err)
	assert.ErrorIs(t, se.err, starttls.ErrHandshake)
	var verr *tls.CertificateVerificationError
	require.ErrorAs(t, se.err, &verr)
	var uerr x509.UnknownAuthorityError
	assert.ErrorAs(t, se.err, &uerr)
	assert.False(t, se.res.TLS)
	assert.Nil(t, se.tc)
}

// checkKeywords asserts the presence and absence of keywords.
var checkKeywords = scripttest.CheckKeywords

// golden writes the dialogue of se as a golden script for
// internal/scripttest to DIR/examples/pkg/testdata/name when capturing.
func (s *servers) golden(t *testing.T, pkg, name, description string, se *session) {
	t.Helper()
	if s.Capture == "" {
		return
	}
	script, err := peerenv.GoldenScript(se.transcript, false)
	require.NoError(t, err, "golden %s", name)
	s.WriteGolden(t, "examples/"+pkg, name, description, script)
}

// probeJSON is the JSON object of examples/tlsprobe.
type probeJSON = peerenv.ProbeJSON

// checkProbe compares the probe's report of a successful upgrade with the
// library's.
func checkProbe(t *testing.T, code int, out probeJSON, protocol string, se *session) {
	t.Helper()
	assert.Equal(t, 0, code, "tlsprobe exit status")
	assert.Equal(t, protocol, out.Protocol)
	assert.True(t, out.TLS, "tlsprobe tls")
	assert.Nil(t, out.Error, "tlsprobe error")
	if assert.NotNil(t, out.Verified) {
		assert.True(t, *out.Verified)
	}
	assert.Equal(t, se.res.Mode.String(), out.Mode)
	if assert.NotNil(t, out.Greeting) {
		assert.Equal(t, se.res.Greeting, *out.Greeting)
	}
	if se.res.Before == nil {
		assert.Nil(t, out.CapabilitiesBefore)
	} else if assert.NotNil(t, out.CapabilitiesBefore) {
		assert.Equal(t, se.res.Before.List(), nilIfEmpty(*out.CapabilitiesBefore))
	}
	if assert.NotNil(t, out.CapabilitiesAfter) {
		assert.Equal(t, se.res.After.List(), nilIfEmpty(*out.CapabilitiesAfter))
	}
}

func nilIfEmpty(list []string) []string {
	if len(list) == 0 {
		return nil
	}
	return list
}

// describe fills {dovecot}, {inn} and {vsftpd} in a golden description
// with the servers' versions.
func (s *servers) describe(text string) string {
	return strings.NewReplacer(
		"{dovecot}", s.versions["dovecot"]+" (Debian 12)",
		"{inn}", s.versions["inn"]+" (Debian 12)",
		"{vsftpd}", s.versions["vsftpd"]+" (Debian 12)").Replace(text)
}
