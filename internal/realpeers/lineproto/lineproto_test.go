package lineproto_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// servers is what .ci/real-lineproto.sh passes in the environment.
type servers struct {
	caFile   string
	ca       *x509.CertPool
	user     string
	password string
	// addr maps a listener's name ("sieve", "nntps_notls") to its
	// "host:port".
	addr     map[string]string
	versions map[string]string // "dovecot", "inn", "vsftpd"
	tlsprobe string            // path of a built examples/tlsprobe
	capture  string            // directory for golden transcripts, "" for none
}

// listeners are the names of the TLSUP_<NAME>_ADDR variables.
var listeners = []string{
	"sieve", "sieve_notls",
	"nntp", "nntps", "nntp_notls", "nntps_notls",
	"ftp", "ftps", "ftp_notls", "ftps_notls",
}

// realServers returns the servers started by .ci/real-lineproto.sh, or
// skips the test when TLSUP_REAL_LINEPROTO is not 1: plain `go test ./...`
// stays hermetic. With TLSUP_REAL_LINEPROTO=1 every variable is required.
func realServers(t *testing.T) *servers {
	t.Helper()
	if os.Getenv("TLSUP_REAL_LINEPROTO") != "1" {
		t.Skip("real servers not started: run .ci/real-lineproto.sh (sets TLSUP_REAL_LINEPROTO=1)")
	}
	need := func(name string) string {
		t.Helper()
		v := os.Getenv(name)
		require.NotEmpty(t, v, "environment variable %s (set by .ci/real-lineproto.sh)", name)
		return v
	}
	s := &servers{
		caFile:   need("TLSUP_CA"),
		user:     need("TLSUP_USER"),
		password: need("TLSUP_PASSWORD"),
		addr:     map[string]string{},
		versions: map[string]string{},
		tlsprobe: need("TLSUP_TLSPROBE"),
		capture:  os.Getenv("TLSUP_CAPTURE"),
	}
	for _, l := range listeners {
		s.addr[l] = need("TLSUP_" + strings.ToUpper(l) + "_ADDR")
	}
	for _, v := range []string{"dovecot", "inn", "vsftpd"} {
		s.versions[v] = need("TLSUP_" + strings.ToUpper(v) + "_VERSION")
	}
	ca, err := tlsconf.LoadRoots(s.caFile)
	require.NoError(t, err)
	s.ca = ca
	return s
}

// tlsConfig returns a verifying client config that trusts only the
// script's CA, for the host of listener's address (an IP address: the
// certificate carries both).
func (s *servers) tlsConfig(t *testing.T, listener string) *tls.Config {
	t.Helper()
	host, _, err := net.SplitHostPort(s.addr[listener])
	require.NoError(t, err)
	return tlsconf.Client(host, s.ca)
}

// wrongCA returns a verifying config for listener that trusts a fresh CA
// that signed nothing the servers present.
func (s *servers) wrongCA(t *testing.T, listener string) *tls.Config {
	t.Helper()
	other, err := tlsconf.NewCA("tlsup unrelated CA")
	require.NoError(t, err)
	host, _, err := net.SplitHostPort(s.addr[listener])
	require.NoError(t, err)
	return tlsconf.Client(host, other.Pool())
}

// testContext bounds one exchange with a real server on loopback.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// syncBuffer is a transcript writer safe for the reader and writer sides.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
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
	var transcript syncBuffer
	tc, res, err := d(testContext(t), "tcp", s.addr[listener], cfg, policy, mode, &starttls.Options{Transcript: &transcript})
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
func checkKeywords(t *testing.T, what string, caps *starttls.Capabilities, has, lacks []string) {
	t.Helper()
	for _, k := range has {
		assert.True(t, caps.Has(k), "%s: want %s in %q", what, k, caps.List())
	}
	for _, k := range lacks {
		assert.False(t, caps.Has(k), "%s: want no %s in %q", what, k, caps.List())
	}
}

// golden writes the dialogue of se as a golden script for
// internal/scripttest to DIR/examples/pkg/testdata/name when capturing.
func (s *servers) golden(t *testing.T, pkg, name, description string, se *session) {
	t.Helper()
	if s.capture == "" {
		return
	}
	script, err := goldenScript(se.transcript)
	require.NoError(t, err, "golden %s", name)
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(description), "\n") {
		b.WriteString("# " + strings.TrimSpace(line) + "\n")
	}
	b.WriteString("# Written by internal/realpeers/lineproto (bash .ci/real-lineproto.sh --capture);\n")
	b.WriteString("# replayed by golden_test.go through internal/scripttest. S: lines are\n")
	b.WriteString("# the server's, as it sent them; C: lines the library client's; !tls is\n")
	b.WriteString("# the handshake.\n")
	b.WriteString(script)
	path := filepath.Join(s.capture, "examples", pkg, "testdata", name)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
}

// goldenScript turns a transcript ("S: ", "C: " lines and the "-- TLS --"
// mark) into scripttest directives. A server line that starts with a
// double quote or holds leading or trailing spaces is written as a Go
// string, which scripttest sends as it is.
func goldenScript(transcript string) (string, error) {
	var b strings.Builder
	for _, line := range strings.Split(transcript, "\n") {
		if line == "" {
			continue
		}
		if line == "-- TLS --" {
			b.WriteString("!tls\n")
			continue
		}
		side, text, ok := strings.Cut(line, ": ")
		if !ok || (side != "S" && side != "C") {
			return "", fmt.Errorf("transcript line %q", line)
		}
		if strings.Contains(text, `\`) || strings.Contains(text, "<redacted>") {
			return "", fmt.Errorf("transcript line %q cannot be replayed", line)
		}
		if text != strings.TrimSpace(text) || strings.HasPrefix(text, `"`) {
			if side == "C" {
				return "", fmt.Errorf("client line %q cannot be matched", line)
			}
			b.WriteString("S: " + strconv.Quote(text+"\r\n") + "\n")
			continue
		}
		b.WriteString(side + ": " + text + "\n")
	}
	return b.String(), nil
}

// probeJSON is the part of examples/tlsprobe's JSON the tests check.
type probeJSON struct {
	Protocol           string    `json:"protocol"`
	Mode               string    `json:"mode"`
	TLS                bool      `json:"tls"`
	Greeting           *string   `json:"greeting"`
	CapabilitiesBefore *[]string `json:"capabilities_before"`
	CapabilitiesAfter  *[]string `json:"capabilities_after"`
	Verified           *bool     `json:"verified"`
	Error              *struct {
		Kind    string `json:"kind"`
		Message string `json:"message"`
	} `json:"error"`
}

// probe runs examples/tlsprobe -json against listener and returns its exit
// status and parsed output.
func (s *servers) probe(t *testing.T, listener string, args ...string) (int, probeJSON) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	argv := append([]string{"-json", "-cafile", s.caFile, "-timeout", "10s"}, args...)
	argv = append(argv, s.addr[listener])
	cmd := exec.CommandContext(ctx, s.tlsprobe, argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else {
		require.NoError(t, err, "tlsprobe %v", argv)
	}
	var out probeJSON
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &out),
		"tlsprobe %v: stdout %q, stderr %q", argv, stdout.String(), stderr.String())
	return code, out
}

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
