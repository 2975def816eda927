// Package peerenv is what the real-peer tests share (internal/realpeers,
// internal/realpeers/lineproto): the environment a .ci/real-*.sh script
// passes to them (the gate variable, the throwaway CA, the test user, the
// listeners' addresses, the built examples/tlsprobe, the capture
// directory), a bounded context, the golden transcripts they write with
// TLSUP_CAPTURE, and examples/tlsprobe -json run against a listener.
//
// The tests skip without their gate variable, so that `go test ./...`
// stays hermetic; with it, every variable they need is required.
package peerenv

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

	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/tlsconf"
)

// Script names a real-peer script and what it passes.
type Script struct {
	// Gate is the variable that is "1" when the script started the
	// servers, "TLSUP_REAL_SERVERS".
	Gate string
	// Path is the script, ".ci/real-servers.sh", for messages.
	Path string
	// Tests is the package whose tests read the environment,
	// "internal/realpeers", for the golden files' header.
	Tests string
	// Listeners are the names of the TLSUP_<NAME>_ADDR variables, lower
	// case: "smtp", "imaps_auto".
	Listeners []string
}

// Env is the environment a script passed.
type Env struct {
	// Script is the script that passed the environment.
	Script Script
	// CAFile is the throwaway CA's PEM file (TLSUP_CA).
	CAFile string
	// CA is the pool holding CAFile's certificates.
	CA *x509.CertPool
	// User and Password are the test user's (TLSUP_USER, TLSUP_PASSWORD).
	User, Password string
	// Addr maps a listener's name to its "host:port".
	Addr map[string]string
	// TLSProbe is the path of a built examples/tlsprobe (TLSUP_TLSPROBE),
	// "" when the script built none.
	TLSProbe string
	// Capture is the directory for golden transcripts (TLSUP_CAPTURE), ""
	// for none.
	Capture string
}

// Load returns the environment of s, or skips the test when s.Gate is not
// "1". With the gate set, a missing variable fails the test.
func Load(t testing.TB, s Script) *Env {
	t.Helper()
	if os.Getenv(s.Gate) != "1" {
		t.Skipf("real servers not started: run %s (sets %s=1)", s.Path, s.Gate)
	}
	e := &Env{Script: s, Addr: map[string]string{},
		TLSProbe: os.Getenv("TLSUP_TLSPROBE"), Capture: os.Getenv("TLSUP_CAPTURE")}
	e.CAFile = e.Need(t, "TLSUP_CA")
	e.User = e.Need(t, "TLSUP_USER")
	e.Password = e.Need(t, "TLSUP_PASSWORD")
	for _, l := range s.Listeners {
		e.Addr[l] = e.Need(t, "TLSUP_"+strings.ToUpper(l)+"_ADDR")
	}
	ca, err := tlsconf.LoadRoots(e.CAFile)
	require.NoError(t, err)
	e.CA = ca
	return e
}

// Need returns the variable name, failing the test when it is empty.
func (e *Env) Need(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	require.NotEmpty(t, v, "environment variable %s (set by %s)", name, e.Script.Path)
	return v
}

// TLSConfig returns a verifying client config that trusts only the
// script's CA, for the host of listener's address (an IP address: the
// script's certificate carries the loopback addresses).
func (e *Env) TLSConfig(t testing.TB, listener string) *tls.Config {
	t.Helper()
	host, _, err := net.SplitHostPort(e.Addr[listener])
	require.NoError(t, err)
	return tlsconf.Client(host, e.CA)
}

// Context bounds one exchange with a real server on loopback: 15 s,
// cancelled at the end of the test.
func Context(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// WriteGolden writes script, from [GoldenScript], as a golden transcript
// for internal/scripttest to Capture/dir/testdata/name, under a header
// that is description, one comment line per line. Without Capture it does
// nothing.
func (e *Env) WriteGolden(t testing.TB, dir, name, description, script string) {
	t.Helper()
	if e.Capture == "" {
		return
	}
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(description), "\n") {
		b.WriteString("# " + strings.TrimSpace(line) + "\n")
	}
	fmt.Fprintf(&b, "# Written by %s (bash %s --capture);\n", e.Script.Tests, e.Script.Path)
	b.WriteString("# replayed by golden_test.go through internal/scripttest. S: lines are\n")
	b.WriteString("# the server's, as it sent them; C: lines the library client's; !tls is\n")
	b.WriteString("# the handshake.\n")
	b.WriteString(script)
	path := filepath.Join(e.Capture, dir, "testdata", name)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
}

// GoldenScript turns a transcript as a starttls.Conn records it ("S: ",
// "C: " lines and the "-- TLS --" mark) into scripttest directives. A
// server line that starts with a double quote or holds leading or trailing
// spaces is written as a Go string, which scripttest sends as it is. With
// imapTags, IMAP tags, random on every run, become {t1}, {t2}, ...
// placeholders, so that a replay matches whatever tag the client draws.
// It fails on a line that cannot be replayed: escaped or redacted (not the
// bytes that were sent), or a client line with such spaces.
func GoldenScript(transcript string, imapTags bool) (string, error) {
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
			b.WriteString("S: " + strconv.Quote(text+"\r\n") + "\n")
			continue
		}
		b.WriteString(side + ": " + text + "\n")
	}
	return b.String(), nil
}

// ProbeJSON is the part of examples/tlsprobe's JSON object the tests check
// (the contract is in its package doc, examples/tlsprobe/doc.go).
type ProbeJSON struct {
	// Protocol is "protocol": the protocol probed ("smtp").
	Protocol string `json:"protocol"`
	// Address is "address": the host:port dialled.
	Address string `json:"address"`
	// Mode is "mode": "starttls" or "implicit", never "auto".
	Mode string `json:"mode"`
	// Policy is "policy": "required", "always" or "opportunistic".
	Policy string `json:"policy"`
	// TLS is "tls": true once a verified handshake completed.
	TLS bool `json:"tls"`
	// Greeting is "greeting", escaped; nil for JSON null.
	Greeting *string `json:"greeting"`
	// CapabilitiesBefore is "capabilities_before"; nil for JSON null
	// (implicit mode, or no discovery before TLS).
	CapabilitiesBefore *[]string `json:"capabilities_before"`
	// CapabilitiesAfter is "capabilities_after", discovered inside TLS;
	// nil for JSON null.
	CapabilitiesAfter *[]string `json:"capabilities_after"`
	// TLSVersion is "tls_version" ("TLS 1.3"); nil for JSON null.
	TLSVersion *string `json:"tls_version"`
	// Verified is "verified"; nil for JSON null (no handshake).
	Verified *bool `json:"verified"`
	// Error is "error": the kind (not-offered, timeout, ...) and the
	// message; nil for JSON null, on success.
	Error *struct {
		Kind    string `json:"kind"`
		Message string `json:"message"`
	} `json:"error"`
}

// Probe runs examples/tlsprobe -json, trusting the script's CA, with args
// against listener, and returns its exit status and parsed output. The run
// is bounded by 30 s; the probe's own -timeout is 10 s.
func (e *Env) Probe(t testing.TB, listener string, args ...string) (int, ProbeJSON) {
	t.Helper()
	require.NotEmpty(t, e.TLSProbe, "TLSUP_TLSPROBE: the built examples/tlsprobe (set by %s)", e.Script.Path)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	argv := append([]string{"-json", "-cafile", e.CAFile, "-timeout", "10s"}, args...)
	argv = append(argv, e.Addr[listener])
	cmd := exec.CommandContext(ctx, e.TLSProbe, argv...)
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
	var out ProbeJSON
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &out),
		"tlsprobe %v: stdout %q, stderr %q", argv, stdout.String(), stderr.String())
	return code, out
}
