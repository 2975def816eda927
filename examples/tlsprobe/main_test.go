package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

const (
	greeting = `
		S: 220 mx.example.test ESMTP ready
		C: EHLO localhost
		S: 250-mx.example.test
		S: 250-PIPELINING
		S: 250-SIZE 10240000
		S: 250 STARTTLS
	`
	stripped = `
		S: 220 mx.example.test ESMTP ready
		C: EHLO localhost
		S: 250-mx.example.test
		S: 250 PIPELINING
	`
	goAhead = `
		C: STARTTLS
		S: 220 2.0.0 Ready to start TLS
	`
	insideTLS = `
		!tls
		C: EHLO localhost
		S: 250-mx.example.test
		S: 250-SIZE 52428800
		S: 250 AUTH PLAIN LOGIN
	`
)

// contractKeys are the keys of the JSON object, all always present.
var contractKeys = []string{
	"protocol", "address", "mode", "policy", "tls", "greeting",
	"capabilities_before", "capabilities_after", "tls_version", "cipher_suite",
	"server_name", "verified", "peer_certificates", "error", "elapsed_ms",
}

// probeResult is one run of the probe.
type probeResult struct {
	code           int
	stdout, stderr string
	json           map[string]any
}

// writeCA writes the PKI's CA certificate to a PEM file for -cafile.
func writeCA(t *testing.T, pki *scripttest.PKI) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(path, pki.CA.CertPEM(), 0o600))
	return path
}

// runProbe runs the probe with args and parses its JSON when -json is given.
func runProbe(t *testing.T, args ...string) probeResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	exit := make(chan int, 1)
	go func() { exit <- run(context.Background(), args, &stdout, &stderr) }()
	// A bounded wait, not a timing: every probe here has a -timeout far
	// below the bound (or a peer that answers), so only a probe that ignores
	// its -timeout reaches it.
	var code int
	select {
	case code = <-exit:
	case <-time.After(probeBound):
		t.Fatalf("tlsprobe %v still running after %v", args, probeBound)
	}
	r := probeResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
	for _, a := range args {
		if a == "-json" && code != exitUsage {
			require.NoError(t, json.Unmarshal(stdout.Bytes(), &r.json), "stdout: %s", r.stdout)
			var keys []string
			for k := range r.json {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			want := append([]string(nil), contractKeys...)
			sort.Strings(want)
			require.Equal(t, want, keys, "the JSON keys are a contract")
		}
	}
	return r
}

// probeBound bounds each run of the probe in these tests.
const probeBound = 60 * time.Second

// errorKind returns the error's kind from the JSON, "" for null.
func (r probeResult) errorKind(t *testing.T) string {
	t.Helper()
	e := r.json["error"]
	if e == nil {
		return ""
	}
	m, ok := e.(map[string]any)
	require.True(t, ok, "error is an object: %v", e)
	require.NotEmpty(t, m["message"])
	return m["kind"].(string)
}

// stringList converts a JSON array of strings; nil for null.
func stringList(v any) []string {
	list, _ := v.([]any)
	if list == nil {
		return nil
	}
	out := make([]string, len(list))
	for i, x := range list {
		out[i] = x.(string)
	}
	return out
}

// refuseHandshake is a server config that aborts the handshake with an
// alert once the ClientHello has been read.
func refuseHandshake(pki *scripttest.PKI) *tls.Config {
	cfg := pki.Server()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return nil, errors.New("no TLS for you")
	}
	return cfg
}

func TestProbe(t *testing.T) {
	pki := scripttest.NewPKI(t)
	caFile := writeCA(t, pki)
	selfSigned, err := tlsconf.SelfSigned(scripttest.TestName)
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		script string
		server *tls.Config
		flags  []string
		code   int
		kind   string
		tls    bool
		check  func(t *testing.T, r probeResult)
	}{
		{
			name: "success", script: greeting + goAhead + insideTLS, code: exitTLS, tls: true,
			check: func(t *testing.T, r probeResult) {
				assert.Equal(t, "smtp", r.json["protocol"])
				assert.Equal(t, "starttls", r.json["mode"])
				assert.Equal(t, "required", r.json["policy"])
				assert.Equal(t, "mx.example.test ESMTP ready", r.json["greeting"])
				assert.Equal(t, []string{"PIPELINING", "SIZE 10240000", "STARTTLS"}, stringList(r.json["capabilities_before"]))
				assert.Equal(t, []string{"SIZE 52428800", "AUTH PLAIN LOGIN"}, stringList(r.json["capabilities_after"]))
				assert.Equal(t, "TLS 1.3", r.json["tls_version"])
				assert.Contains(t, r.json["cipher_suite"], "TLS_")
				assert.Equal(t, scripttest.TestName, r.json["server_name"])
				assert.Equal(t, true, r.json["verified"])
				certs := r.json["peer_certificates"].([]any)
				require.Len(t, certs, 1)
				leaf := certs[0].(map[string]any)
				assert.Equal(t, "CN="+scripttest.TestName, leaf["subject"])
				assert.Equal(t, "CN=tlsup test CA", leaf["issuer"])
				assert.Contains(t, stringList(leaf["dns_names"]), scripttest.TestName)
				_, err := time.Parse(time.RFC3339, leaf["not_after"].(string))
				assert.NoError(t, err)
				assert.GreaterOrEqual(t, r.json["elapsed_ms"], 0.0, "a number, never negative (its size is not asserted: wall time)")
			},
		},
		{
			name: "not-offered", script: stripped + "!eof", code: exitFailed, kind: "not-offered",
			check: func(t *testing.T, r probeResult) {
				assert.Equal(t, []string{"PIPELINING"}, stringList(r.json["capabilities_before"]))
				assert.Nil(t, r.json["capabilities_after"])
				assert.Nil(t, r.json["tls_version"])
				assert.Nil(t, r.json["verified"])
				assert.Nil(t, r.json["server_name"])
			},
		},
		{
			name: "ehlo-refused", script: "S: 220 mx.example.test ESMTP\nC: EHLO localhost\nS: 502 5.5.2 no\n!eof",
			code: exitFailed, kind: "not-offered",
			check: func(t *testing.T, r probeResult) {
				assert.Equal(t, []string{}, stringList(r.json["capabilities_before"]), "known to be empty")
				assert.NotNil(t, r.json["capabilities_before"])
			},
		},
		{
			name: "always", script: stripped + goAhead + insideTLS, flags: []string{"-policy", "always"},
			code: exitTLS, tls: true,
		},
		{
			name: "opportunistic", script: stripped + "!eof", flags: []string{"-policy", "opportunistic"},
			code: exitPlaintext,
			check: func(t *testing.T, r probeResult) {
				assert.Equal(t, "opportunistic", r.json["policy"])
				assert.Nil(t, r.json["error"], "plaintext by policy is not an error")
				assert.Nil(t, r.json["capabilities_after"])
			},
		},
		{
			name: "opportunistic-advertised-refused", script: greeting + "C: STARTTLS\nS: 454 4.7.0 not now\n!eof",
			flags: []string{"-policy", "opportunistic"}, code: exitFailed, kind: "refused",
		},
		{
			name: "refused", script: greeting + "C: STARTTLS\nS: 454 4.7.0 TLS not available\n!eof",
			code: exitFailed, kind: "refused",
		},
		{
			name: "protocol", script: greeting + "C: STARTTLS\nS: 250 2.0.0 OK\n!eof",
			code: exitFailed, kind: "protocol",
		},
		{
			name: "injected-data", script: greeting + goAhead + "S+ 250 AUTH PLAIN\n!eof",
			code: exitFailed, kind: "injected-data",
		},
		{
			name: "certificate", script: greeting + goAhead + "!tls", server: scripttest.ServerWith(selfSigned),
			code: exitFailed, kind: "certificate",
			check: func(t *testing.T, r probeResult) {
				assert.Equal(t, false, r.json["verified"])
				assert.Len(t, r.json["peer_certificates"], 1, "the unverified chain is shown")
				assert.Equal(t, scripttest.TestName, r.json["server_name"])
				assert.Nil(t, r.json["tls_version"])
			},
		},
		{
			name: "wrong-name", script: greeting + goAhead + "!tls", flags: []string{"-servername", "other.example.test"},
			code: exitFailed, kind: "certificate",
		},
		{
			name: "insecure", script: greeting + goAhead + insideTLS, server: scripttest.ServerWith(selfSigned),
			flags: []string{"-insecure"}, code: exitTLS, tls: true,
			check: func(t *testing.T, r probeResult) {
				assert.Contains(t, r.stderr, "warning: -insecure")
				assert.Equal(t, false, r.json["verified"], "the outcome of verification is still reported")
			},
		},
		{
			name: "insecure-verifiable", script: greeting + goAhead + insideTLS,
			flags: []string{"-insecure"}, code: exitTLS, tls: true,
			check: func(t *testing.T, r probeResult) {
				assert.Contains(t, r.stderr, "warning: -insecure")
				assert.Equal(t, true, r.json["verified"])
			},
		},
		{
			name: "timeout", script: greeting + "C: STARTTLS\n!hold", flags: []string{"-timeout", "300ms"},
			code: exitFailed, kind: "timeout",
		},
		{
			name: "timeout-handshake", script: greeting + goAhead + "!hold", flags: []string{"-timeout", "300ms"},
			code: exitFailed, kind: "timeout",
		},
		{
			// A peer trickling bytes cannot extend the bound.
			name: "timeout-trickle", script: "!trickle\n" + strings.Repeat("S: 220-slow\n!sleep 20ms\n", 100),
			flags: []string{"-timeout", "300ms"}, code: exitFailed, kind: "timeout",
		},
		{
			name: "greeting-rejected", script: "S: 554 5.3.2 \x1b[31mgo away\n!eof",
			code: exitFailed, kind: "greeting-rejected",
			check: func(t *testing.T, r probeResult) {
				assert.Equal(t, `5.3.2 \x1b[31mgo away`, r.json["greeting"])
				assert.Nil(t, r.json["capabilities_before"])
			},
		},
		{
			name: "closed", script: "S: 220 mx.example.test ESMTP\nC: EHLO localhost",
			code: exitFailed, kind: "closed",
		},
		{
			name: "closed-before-greeting", script: "!close",
			code: exitFailed, kind: "closed",
			check: func(t *testing.T, r probeResult) {
				assert.Nil(t, r.json["greeting"], "no greeting was read")
			},
		},
		{
			name: "too-large", script: "S: 220 " + strings.Repeat("x", 5000),
			code: exitFailed, kind: "too-large",
		},
		{
			name: "handshake", script: greeting + goAhead + "!tls", server: refuseHandshake(pki),
			code: exitFailed, kind: "handshake",
		},
		{
			name: "rediscover-fails", script: greeting + goAhead + "!tls\nC: EHLO localhost\nS: 421 4.3.2 bye",
			code: exitFailed, kind: "refused", tls: true,
			check: func(t *testing.T, r probeResult) {
				assert.Equal(t, "TLS 1.3", r.json["tls_version"], "tls is true once verified, even if a later step failed")
				assert.Equal(t, true, r.json["verified"])
				assert.Nil(t, r.json["capabilities_after"])
			},
		},
		{
			name: "lmtp", flags: []string{"-protocol", "lmtp", "-ehlo", "probe.example.test"},
			script: `
				S: 220 mx.example.test LMTP
				C: LHLO probe.example.test
				S: 250-mx.example.test
				S: 250 STARTTLS
				C: STARTTLS
				S: 220 go
				!tls
				C: LHLO probe.example.test
				S: 250-mx.example.test
				S: 250 8BITMIME
			`, code: exitTLS, tls: true,
			check: func(t *testing.T, r probeResult) {
				assert.Equal(t, "lmtp", r.json["protocol"])
				assert.Equal(t, []string{"8BITMIME"}, stringList(r.json["capabilities_after"]))
			},
		},
		{
			name: "implicit", flags: []string{"-mode", "implicit"},
			script: `
				!tls
				S: 220 mx.example.test ESMTP
				C: EHLO localhost
				S: 250-mx.example.test
				S: 250 AUTH PLAIN
			`, code: exitTLS, tls: true,
			check: func(t *testing.T, r probeResult) {
				assert.Equal(t, "implicit", r.json["mode"])
				assert.Nil(t, r.json["capabilities_before"], "null in implicit mode")
				assert.Equal(t, []string{"AUTH PLAIN"}, stringList(r.json["capabilities_after"]))
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server := tc.server
			if server == nil {
				server = pki.Server()
			}
			var sni sync.Map
			if server.GetConfigForClient == nil {
				server.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
					sni.Store("name", hello.ServerName)
					return nil, nil
				}
			}
			addr, peer := scripttest.Listen(t, tc.script, &scripttest.Options{TLSConfig: server})
			flags := []string{"-json", "-cafile", caFile, "-servername", scripttest.TestName, "-protocol", "smtp", "-timeout", "5s"}
			flags = append(flags, tc.flags...)
			r := runProbe(t, append(flags, addr)...)
			assert.Equal(t, tc.code, r.code, "exit status; stdout %s stderr %s", r.stdout, r.stderr)
			assert.Equal(t, tc.kind, r.errorKind(t))
			assert.Equal(t, tc.tls, r.json["tls"])
			assert.Equal(t, addr, r.json["address"])
			if name, ok := sni.Load("name"); ok {
				want := scripttest.TestName
				for i, f := range tc.flags {
					if f == "-servername" {
						want = tc.flags[i+1]
					}
				}
				assert.Equal(t, want, name, "SNI")
			}
			// Contract: the probe exits within -timeout plus one second. A
			// peer that holds can only be left by the probe's own -timeout,
			// so a "timeout" verdict before runProbe's bound is the check;
			// the second itself is not timed (no wall-time asserts).
			if tc.check != nil {
				tc.check(t, r)
			}
			err := peer.Wait()
			switch tc.name {
			case "certificate", "wrong-name", "handshake", "too-large", "timeout-trickle":
				return // the peer's handshake or write fails; the probe's verdict is what counts
			}
			require.NoError(t, err, "the peer's script (the conn is closed on every error)")
		})
	}
}

// TestProbeVerifiesAddress: without -servername, the host dialled is the name
// verified (the PKI's certificate holds 127.0.0.1).
func TestProbeVerifiesAddress(t *testing.T) {
	pki := scripttest.NewPKI(t)
	addr, peer := scripttest.Listen(t, greeting+goAhead+insideTLS, &scripttest.Options{TLSConfig: pki.Server()})
	r := runProbe(t, "-json", "-protocol", "smtp", "-cafile", writeCA(t, pki), addr)
	assert.Equal(t, exitTLS, r.code, r.stdout)
	assert.Equal(t, "127.0.0.1", r.json["server_name"])
	require.NoError(t, peer.Wait())
}

func TestProbeDialFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	r := runProbe(t, "-json", "-protocol", "smtp", "-timeout", "5s", addr)
	assert.Equal(t, exitFailed, r.code)
	assert.Equal(t, "dial", r.errorKind(t))
	assert.Nil(t, r.json["greeting"])
	assert.Nil(t, r.json["capabilities_before"])
	assert.Equal(t, false, r.json["tls"])
}

func TestProbeTranscript(t *testing.T) {
	pki := scripttest.NewPKI(t)
	addr, peer := scripttest.Listen(t, greeting+goAhead+insideTLS, &scripttest.Options{TLSConfig: pki.Server()})
	r := runProbe(t, "-transcript", "-protocol", "smtp", "-cafile", writeCA(t, pki), "-servername", scripttest.TestName, addr)
	require.NoError(t, peer.Wait())
	assert.Equal(t, exitTLS, r.code)
	assert.Equal(t, `S: 220 mx.example.test ESMTP ready
C: EHLO localhost
S: 250-mx.example.test
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250 STARTTLS
C: STARTTLS
S: 220 2.0.0 Ready to start TLS
-- TLS --
C: EHLO localhost
S: 250-mx.example.test
S: 250-SIZE 52428800
S: 250 AUTH PLAIN LOGIN
`, r.stderr)
	// The text report on stdout.
	assert.Contains(t, r.stdout, "TLS 1.3")
	assert.Contains(t, r.stdout, "verified "+scripttest.TestName)
	assert.Contains(t, r.stdout, "after TLS:    SIZE 52428800, AUTH PLAIN LOGIN")
	assert.Contains(t, r.stdout, "result:       ok")
}

func TestProbeTranscriptImplicit(t *testing.T) {
	pki := scripttest.NewPKI(t)
	addr, peer := scripttest.Listen(t, `
		!tls
		S: 220 mx.example.test ESMTP
		C: EHLO localhost
		S: 250 mx.example.test
	`, &scripttest.Options{TLSConfig: pki.Server()})
	r := runProbe(t, "-transcript", "-mode", "implicit", "-protocol", "smtp", "-cafile", writeCA(t, pki), addr)
	require.NoError(t, peer.Wait())
	assert.Equal(t, exitTLS, r.code)
	assert.Equal(t, "-- TLS --\nS: 220 mx.example.test ESMTP\nC: EHLO localhost\nS: 250 mx.example.test\n", r.stderr)
	assert.NotContains(t, r.stdout, "before TLS")
	assert.Contains(t, r.stdout, "after TLS:    (none)")
}

func TestProbeTextEscapes(t *testing.T) {
	pki := scripttest.NewPKI(t)
	addr, peer := scripttest.Listen(t, "S: \"554 \\x1b]0;pwned\\x07\\r\\n\"\n!eof", &scripttest.Options{TLSConfig: pki.Server()})
	r := runProbe(t, "-transcript", "-protocol", "smtp", addr)
	require.NoError(t, peer.Wait())
	assert.Equal(t, exitFailed, r.code)
	assert.NotContains(t, r.stdout, "\x1b")
	assert.NotContains(t, r.stderr, "\x1b")
	assert.Contains(t, r.stdout, "FAILED (greeting-rejected)")
}

func TestProbeUsage(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no-host", nil},
		{"two-hosts", []string{"127.0.0.1:25", "127.0.0.1:26"}},
		{"unknown-flag", []string{"-bogus", "127.0.0.1:25"}},
		{"unknown-protocol", []string{"-protocol", "gopher", "127.0.0.1:70"}},
		{"bad-mode", []string{"-mode", "sometimes", "127.0.0.1:25"}},
		{"bad-policy", []string{"-policy", "maybe", "127.0.0.1:25"}},
		{"bad-timeout", []string{"-timeout", "0s", "127.0.0.1:25"}},
		{"no-port-no-protocol", []string{"mx.example.test"}},
		{"unknown-port-no-protocol", []string{"127.0.0.1:2525"}},
		{"bad-port", []string{"-protocol", "smtp", "127.0.0.1:smtp"}},
		{"port-out-of-range", []string{"-protocol", "smtp", "127.0.0.1:70000"}},
		{"empty-host", []string{"-protocol", "smtp", ":25"}},
		{"lmtp-implicit-no-port", []string{"-protocol", "lmtp", "-mode", "implicit", "mx.example.test"}},
		{"missing-cafile", []string{"-cafile", missing, "127.0.0.1:25"}},
		{"unsafe-ehlo", []string{"-ehlo", "a\r\nMAIL FROM:<>", "127.0.0.1:25"}},
		{"ehlo-with-space", []string{"-ehlo", "a b", "127.0.0.1:25"}},
		{"json-usage", []string{"-json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runProbe(t, tc.args...)
			assert.Equal(t, exitUsage, r.code, "stderr: %s", r.stderr)
			assert.Contains(t, r.stderr, "usage")
			assert.Empty(t, r.stdout, "no report for a usage error")
		})
	}
}

func TestResolveAddress(t *testing.T) {
	for _, tc := range []struct {
		arg, protocol string
		mode          starttls.Mode
		wantProto     string
		wantHost      string
		wantAddr      string
	}{
		{"mx.example.test", "smtp", starttls.Auto, "smtp", "mx.example.test", "mx.example.test:25"},
		{"mx.example.test", "smtp", starttls.StartTLS, "smtp", "mx.example.test", "mx.example.test:25"},
		{"mx.example.test", "smtp", starttls.Implicit, "smtp", "mx.example.test", "mx.example.test:465"},
		{"mx.example.test", "lmtp", starttls.Auto, "lmtp", "mx.example.test", "mx.example.test:24"},
		{"mx.example.test", "imap", starttls.Auto, "imap", "mx.example.test", "mx.example.test:143"},
		{"mx.example.test", "imap", starttls.Implicit, "imap", "mx.example.test", "mx.example.test:993"},
		{"mx.example.test", "pop3", starttls.Auto, "pop3", "mx.example.test", "mx.example.test:110"},
		{"mx.example.test", "pop3", starttls.Implicit, "pop3", "mx.example.test", "mx.example.test:995"},
		{"192.0.2.1", "smtp", starttls.Auto, "smtp", "192.0.2.1", "192.0.2.1:25"},
		{"[2001:db8::1]", "smtp", starttls.Auto, "smtp", "2001:db8::1", "[2001:db8::1]:25"},
		{"2001:db8::1", "smtp", starttls.Auto, "smtp", "2001:db8::1", "[2001:db8::1]:25"},
		{"[2001:db8::1]:587", "", starttls.Auto, "smtp", "2001:db8::1", "[2001:db8::1]:587"},
		{"mx.example.test:587", "", starttls.Auto, "smtp", "mx.example.test", "mx.example.test:587"},
		{"mx.example.test:465", "", starttls.Auto, "smtp", "mx.example.test", "mx.example.test:465"},
		{"mx.example.test:24", "", starttls.Auto, "lmtp", "mx.example.test", "mx.example.test:24"},
		{"mx.example.test:993", "", starttls.Auto, "imap", "mx.example.test", "mx.example.test:993"},
		{"mx.example.test:2525", "smtp", starttls.Auto, "smtp", "mx.example.test", "mx.example.test:2525"},
	} {
		t.Run(tc.arg+"/"+tc.protocol+"/"+tc.mode.String(), func(t *testing.T) {
			proto, host, addr, err := resolveAddress(tc.arg, tc.protocol, tc.mode)
			require.NoError(t, err)
			assert.Equal(t, tc.wantProto, proto)
			assert.Equal(t, tc.wantHost, host)
			assert.Equal(t, tc.wantAddr, addr)
		})
	}
}

// TestProtocolTable: every entry's upgrader names itself as the table does
// and knows the implicit port the table gives it, and no port belongs to
// two protocols.
func TestProtocolTable(t *testing.T) {
	owner := map[int]string{}
	for name, p := range protocols() {
		u := p.upgrader("localhost")
		assert.Equal(t, name, u.Protocol())
		implicit := 0
		if ip, ok := u.(starttls.ImplicitPorter); ok {
			implicit = ip.ImplicitPort()
		}
		assert.Equal(t, p.implicit, implicit, "%s: implicit port", name)
		require.NotEmpty(t, p.ports, name)
		for _, port := range append(append([]int(nil), p.ports...), p.implicit) {
			if port == 0 {
				continue
			}
			assert.Empty(t, owner[port], "port %d of %s and %s", port, name, owner[port])
			owner[port] = name
		}
	}
}

// TestProbeJSONNoRawControls: capabilities keep the spelling the server sent,
// but the JSON on stdout carries no raw control character a terminal would
// act on: DEL, the C1 controls (U+009B is an 8-bit CSI) and the Unicode
// format characters (bidi overrides) are \u escapes, and decode back to the
// text sent.
func TestProbeJSONNoRawControls(t *testing.T) {
	pki := scripttest.NewPKI(t)
	addr, peer := scripttest.Listen(t, `
		S: 220 mx.example.test ESMTP
		C: EHLO localhost
		S: 250-mx.example.test
		S: "250-X-EVIL \x1b[31m\x7f\xc2\x9b2J\xc2\x85\xe2\x80\xae\xef\xbb\xbf\xf3\xa0\x80\x81\xff\r\n"
		S: 250 STARTTLS
		C: STARTTLS
		S: 454 4.7.0 not now
		!eof
	`, &scripttest.Options{TLSConfig: pki.Server()})
	r := runProbe(t, "-json", "-protocol", "smtp", addr)
	require.NoError(t, peer.Wait())
	assert.Equal(t, exitFailed, r.code)
	for _, c := range r.stdout {
		assert.False(t, c == 0x7f || (c < 0x20 && c != '\n') || (c >= 0x80 && c <= 0x9f) || unicode.Is(unicode.Cf, c),
			"raw control %U on stdout", c)
	}
	assert.Equal(t, []string{"X-EVIL \x1b[31m\x7f\u009b2J\u0085\u202e\ufeff\U000e0001\ufffd", "STARTTLS"},
		stringList(r.json["capabilities_before"]), "the value is kept, only its encoding is escaped")
}

// TestProbeEvilCertificateNames: a certificate whose subject and DNS names
// carry terminal controls (ESC, BEL, DEL, the C1 CSI) is reported, in text
// and in JSON, and in the verification error that quotes those names,
// without a raw control character.
func TestProbeEvilCertificateNames(t *testing.T) {
	// crypto/x509 refuses such DNS names through tlsconf; the leaf is
	// made here, with the CN (a UTF8String) carrying the C1 control.
	evil := "\x1b]0;pwn\x07\x7f\u009b2J.example.test"
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "evil test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: evil},
		DNSNames:  []string{"x\x1b[31m\x7f.example.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, caCert, &leafKey.PublicKey, caKey)
	require.NoError(t, err)
	cert := tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600))
	script := greeting + goAhead + "!tls\n!hold"
	for _, asJSON := range []bool{false, true} {
		addr, peer := scripttest.Listen(t, script, &scripttest.Options{TLSConfig: scripttest.ServerWith(cert)})
		args := []string{"-protocol", "smtp", "-cafile", caFile, "-servername", scripttest.TestName, addr}
		if asJSON {
			args = append([]string{"-json"}, args...)
		}
		r := runProbe(t, args...)
		peer.Wait()
		assert.Equal(t, exitFailed, r.code)
		for _, out := range []string{r.stdout, r.stderr} {
			for _, c := range out {
				assert.False(t, c == 0x7f || (c < 0x20 && c != '\n') || (c >= 0x80 && c <= 0x9f),
					"raw control %U in %q", c, out)
			}
		}
		if asJSON {
			assert.Equal(t, "certificate", r.errorKind(t))
			certs := r.json["peer_certificates"].([]any)
			require.NotEmpty(t, certs)
			assert.Contains(t, certs[0].(map[string]any)["subject"], "pwn\x07\x7f\u009b2J", "JSON keeps the value")
		} else {
			assert.Contains(t, r.stdout, "FAILED (certificate)")
		}
	}
}
