package realpeers_test

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
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// servers is what .ci/real-servers.sh passes in the environment.
type servers struct {
	caFile   string
	ca       *x509.CertPool
	user     string
	password string
	// addr maps a listener's name ("smtp", "submission", "imaps_auto") to
	// its "host:port".
	addr           map[string]string
	postfixVersion string
	dovecotVersion string
	tlsprobe       string // path of a built examples/tlsprobe
	capture        string // directory for golden transcripts, "" for none
}

// listeners are the names of the TLSUP_<NAME>_ADDR variables.
var listeners = []string{
	"smtp", "submission", "smtps", "smtps_auto", "smtp_notls",
	"imap", "imaps", "imaps_auto", "imap_notls",
	"pop3", "pop3s", "pop3s_auto", "pop3_notls",
}

// realServers returns the servers started by .ci/real-servers.sh, or skips
// the test when TLSUP_REAL_SERVERS is not 1: plain `go test ./...` stays
// hermetic. With TLSUP_REAL_SERVERS=1 every other variable is required.
func realServers(t *testing.T) *servers {
	t.Helper()
	if os.Getenv("TLSUP_REAL_SERVERS") != "1" {
		t.Skip("real servers not started: run .ci/real-servers.sh (sets TLSUP_REAL_SERVERS=1)")
	}
	need := func(name string) string {
		t.Helper()
		v := os.Getenv(name)
		require.NotEmpty(t, v, "environment variable %s (set by .ci/real-servers.sh)", name)
		return v
	}
	s := &servers{
		caFile:         need("TLSUP_CA"),
		user:           need("TLSUP_USER"),
		password:       need("TLSUP_PASSWORD"),
		addr:           map[string]string{},
		postfixVersion: need("TLSUP_POSTFIX_VERSION"),
		dovecotVersion: need("TLSUP_DOVECOT_VERSION"),
		tlsprobe:       os.Getenv("TLSUP_TLSPROBE"),
		capture:        os.Getenv("TLSUP_CAPTURE"),
	}
	for _, l := range listeners {
		s.addr[l] = need("TLSUP_" + strings.ToUpper(l) + "_ADDR")
	}
	ca, err := tlsconf.LoadRoots(s.caFile)
	require.NoError(t, err)
	s.ca = ca
	return s
}

// tlsConfig returns a verifying client config that trusts only the
// script's CA, for the host of listener's address (an IP address: the
// certificate carries the loopback addresses).
func (s *servers) tlsConfig(t *testing.T, listener string) *tls.Config {
	t.Helper()
	host, _, err := net.SplitHostPort(s.addr[listener])
	require.NoError(t, err)
	return tlsconf.Client(host, s.ca)
}

// port returns the port of listener's address.
func (s *servers) port(t *testing.T, listener string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(s.addr[listener])
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return n
}

// testContext bounds one exchange with a real server on loopback.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

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
// IMAP tags, random on every run, become {t1}, {t2}, ... placeholders, so
// that a replay matches whatever tag the client draws.
func (s *servers) golden(t *testing.T, dir, name, description, transcript string) {
	t.Helper()
	if s.capture == "" {
		return
	}
	script, err := goldenScript(transcript, dir == "imap")
	require.NoError(t, err, "golden %s", name)
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(description), "\n") {
		b.WriteString("# " + strings.TrimSpace(line) + "\n")
	}
	b.WriteString("# Written by internal/realpeers (bash .ci/real-servers.sh --capture);\n")
	b.WriteString("# replayed by golden_test.go through internal/scripttest. S: lines are\n")
	b.WriteString("# the server's, as it sent them; C: lines the library client's; !tls is\n")
	b.WriteString("# the handshake.\n")
	b.WriteString(script)
	path := filepath.Join(s.capture, dir, "testdata", name)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
}

// goldenScript turns a transcript ("S: ", "C: " lines and the "-- TLS --"
// mark) into scripttest directives.
func goldenScript(transcript string, imapTags bool) (string, error) {
	var b strings.Builder
	tags := map[string]string{}
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
			// Escaped or redacted: not the bytes that were sent.
			return "", fmt.Errorf("transcript line %q cannot be replayed", line)
		}
		if imapTags {
			first, rest, _ := strings.Cut(text, " ")
			if side == "C" {
				if _, seen := tags[first]; !seen {
					tags[first] = fmt.Sprintf("{t%d}", len(tags)+1)
				}
			}
			if ph, ok := tags[first]; ok {
				text = ph + " " + rest
			}
		}
		if text != strings.TrimSpace(text) || strings.HasPrefix(text, `"`) {
			if side == "C" {
				return "", fmt.Errorf("client line %q cannot be matched", line)
			}
			// Quoted: scripttest sends it raw, spaces kept.
			b.WriteString("S: " + strconv.Quote(text+"\r\n") + "\n")
			continue
		}
		b.WriteString(side + ": " + text + "\n")
	}
	return b.String(), nil
}

// probeJSON is the JSON object of examples/tlsprobe (the contract in
// shared/contracts/tlsprobe.md).
type probeJSON struct {
	Protocol           string    `json:"protocol"`
	Address            string    `json:"address"`
	Mode               string    `json:"mode"`
	Policy             string    `json:"policy"`
	TLS                bool      `json:"tls"`
	Greeting           *string   `json:"greeting"`
	CapabilitiesBefore *[]string `json:"capabilities_before"`
	CapabilitiesAfter  *[]string `json:"capabilities_after"`
	TLSVersion         *string   `json:"tls_version"`
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
	require.NotEmpty(t, s.tlsprobe, "TLSUP_TLSPROBE: the built examples/tlsprobe (set by .ci/real-servers.sh)")
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
	conn, err := d.DialContext(ctx, "tcp", s.addr[listener])
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
