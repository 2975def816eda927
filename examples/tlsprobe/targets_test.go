package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// longLived is a server config whose certificate is good for 90 days, so
// that no certificate-expires-soon warning is due.
func longLived(t testing.TB, pki *scripttest.PKI) *tls.Config {
	cert, err := pki.CA.IssueLeaf(tlsconf.Leaf{Names: []string{scripttest.TestName}, NotAfter: time.Now().Add(90 * 24 * time.Hour)})
	require.NoError(t, err)
	return tlsconf.Server(cert)
}

// writeTargets writes lines to a targets file.
func writeTargets(t testing.TB, lines ...string) string {
	path := filepath.Join(t.TempDir(), "targets")
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	return path
}

// runJSONLines runs the probe and decodes its JSON Lines.
func runJSONLines(t *testing.T, args ...string) (int, []map[string]any, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	var objs []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "line: %s", line)
		objs = append(objs, m)
	}
	return code, objs, stderr.String()
}

func TestTargets(t *testing.T) {
	pki := scripttest.NewPKI(t)
	caFile := writeCA(t, pki)
	good, goodPeer := scripttest.Listen(t, greeting+goAhead+insideTLS, &scripttest.Options{TLSConfig: longLived(t, pki)})
	bad, badPeer := scripttest.Listen(t, stripped+"!eof", &scripttest.Options{TLSConfig: pki.Server()})
	// AUTH before TLS, STARTTLS again inside it, a certificate for a day.
	warned, warnedPeer := scripttest.Listen(t, `
		S: 220 mx.example.test ESMTP
		C: EHLO localhost
		S: 250-mx.example.test
		S: 250-AUTH PLAIN LOGIN
		S: 250 STARTTLS
	`+goAhead+`
		!tls
		C: EHLO localhost
		S: 250-mx.example.test
		S: 250 STARTTLS
	`, &scripttest.Options{TLSConfig: pki.Server()})
	file := writeTargets(t, "# a fleet", "smtp://"+good, "", "SMTP://"+bad, "smtp://"+warned)

	code, objs, stderr := runJSONLines(t, "-targets", file, "-j", "3", "-json", "-cafile", caFile, "-servername", scripttest.TestName)
	assert.Equal(t, exitFailed, code, "stderr: %s", stderr)
	require.Len(t, objs, 3, "one object per target, comments and blank lines skipped")
	for _, obj := range objs {
		for _, k := range append(contractKeys, "target") {
			assert.Contains(t, obj, k)
		}
	}
	assert.Equal(t, "smtp://"+good, objs[0]["target"], "input order")
	assert.Equal(t, true, objs[0]["tls"])
	assert.Equal(t, true, objs[0]["starttls_offered"])
	assert.Nil(t, objs[0]["step"])
	assert.Equal(t, []any{}, objs[0]["warnings"])

	assert.Equal(t, "SMTP://"+bad, objs[1]["target"])
	assert.Equal(t, false, objs[1]["starttls_offered"])
	assert.Equal(t, "discover", objs[1]["step"])
	assert.Equal(t, "not-offered", objs[1]["error"].(map[string]any)["kind"])

	assert.Equal(t, true, objs[2]["tls"])
	assert.Equal(t, []any{warnPlaintextAuth, warnExpiresSoon, warnStartTLSAgain}, objs[2]["warnings"])

	for _, p := range []*scripttest.Peer{goodPeer, badPeer, warnedPeer} {
		require.NoError(t, p.Wait())
	}
}

func TestTargetsExitStatus(t *testing.T) {
	pki := scripttest.NewPKI(t)
	caFile := writeCA(t, pki)
	t.Run("all tls", func(t *testing.T) {
		a, _ := scripttest.Listen(t, greeting+goAhead+insideTLS, &scripttest.Options{TLSConfig: pki.Server()})
		b, _ := scripttest.Listen(t, greeting+goAhead+insideTLS, &scripttest.Options{TLSConfig: pki.Server()})
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"-cafile", caFile, "-servername", scripttest.TestName,
			"-targets", writeTargets(t, "smtp://"+a, "smtp://"+b)}, &stdout, &stderr)
		assert.Equal(t, exitTLS, code, "stderr: %s", stderr.String())
		assert.Equal(t, 2, strings.Count(stdout.String(), "target:"), "one text block per target")
		assert.Equal(t, 2, strings.Count(stdout.String(), "result:       ok"))
	})
	t.Run("plaintext", func(t *testing.T) {
		a, _ := scripttest.Listen(t, stripped, &scripttest.Options{TLSConfig: pki.Server()})
		code, objs, _ := runJSONLines(t, "-policy", "opportunistic", "-json", "-cafile", caFile,
			"-targets", writeTargets(t, "smtp://"+a))
		assert.Equal(t, exitPlaintext, code)
		require.Len(t, objs, 1)
		assert.Equal(t, false, objs[0]["starttls_offered"])
	})
}

func TestTargetsUsage(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		lines []string
	}{
		{"-j without -targets", []string{"-j", "4", "127.0.0.1:25"}, nil},
		{"-j zero", []string{"-j", "0"}, []string{"smtp://127.0.0.1:1"}},
		{"host and -targets", []string{"127.0.0.1:25"}, []string{"smtp://127.0.0.1:1"}},
		{"unknown scheme", nil, []string{"gopher://127.0.0.1:70"}},
		{"no protocol for the port", nil, []string{"127.0.0.1:12345"}},
		{"empty file", nil, []string{"# nothing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.lines != nil {
				args = append(args, "-targets", writeTargets(t, tc.lines...))
			}
			var stdout, stderr bytes.Buffer
			assert.Equal(t, exitUsage, run(context.Background(), args, &stdout, &stderr), "stderr: %s", stderr.String())
			assert.Empty(t, stdout.String())
		})
	}
}

// TestSchemes: an s-scheme means implicit TLS on the protocol's implicit
// port, a plain scheme the protocol's STARTTLS port.
func TestSchemes(t *testing.T) {
	targets, err := readTargets(strings.NewReader("imaps://mail.example.test\npop3://mail.example.test\nsmtps://[::1]\n"), nil, nil)
	require.NoError(t, err)
	require.Len(t, targets, 3)
	assert.Equal(t, "mail.example.test:993", targets[0].probe.address)
	assert.Equal(t, starttls.Implicit, targets[0].probe.mode)
	assert.Equal(t, "mail.example.test:110", targets[1].probe.address)
	assert.Equal(t, "[::1]:465", targets[2].probe.address)
}

// fleetServer serves the library's SMTP front on 127.0.0.1 to any number
// of clients, answering the EHLO inside TLS; stop closes it.
func fleetServer(tb testing.TB, serverTLS *tls.Config) (addr string, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
				defer scancel()
				srv := &smtp.Server{Options: starttls.ServerOptions{TLSConfig: serverTLS, Hostname: scripttest.TestName}}
				tc, err := srv.Serve(sctx, conn)
				if err != nil {
					return
				}
				defer tc.Close()
				tc.SetDeadline(time.Now().Add(30 * time.Second))
				if _, err := tc.ReadLine(); err != nil {
					return
				}
				smtp.WriteReply(tc, 250, scripttest.TestName, "PIPELINING", "AUTH PLAIN")
				tc.ReadLine()
			}()
		}
	}()
	return ln.Addr().String(), func() {
		ln.Close()
		cancel()
		<-done
	}
}

// BenchmarkTargets probes 1,000 targets against in-process servers with
// -j 64 and reports targets per second; B/op is the memory of a run.
func BenchmarkTargets(b *testing.B) {
	pki := scripttest.NewPKI(b)
	caFile := filepath.Join(b.TempDir(), "ca.pem")
	require.NoError(b, os.WriteFile(caFile, pki.CA.CertPEM(), 0o600))
	addr, stop := fleetServer(b, longLived(b, pki))
	defer stop()
	lines := make([]string, 1000)
	for i := range lines {
		lines[i] = "smtp://" + addr
	}
	file := writeTargets(b, lines...)
	args := []string{"-targets", file, "-j", "64", "-json", "-cafile", caFile, "-servername", scripttest.TestName}
	b.ReportAllocs()
	// The peak of live heap during the runs, sampled (servers included).
	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
				metrics.Read(sample)
				if v := sample[0].Value.Uint64(); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	start := time.Now()
	runs := 0
	for b.Loop() {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != exitTLS {
			b.Fatalf("exit %d: %s", code, stderr.String())
		}
		runs++
	}
	b.ReportMetric(float64(runs*len(lines))/time.Since(start).Seconds(), "targets/s")
	close(stopSampling)
	<-sampled
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
}

// TestTargetsCaseAndControls: a scheme matches in ASCII case only, and a
// refused line's error carries no raw control character, whatever part
// of the probe quoted it (the flag package, net.SplitHostPort); both
// found by FuzzReadTargets.
func TestTargetsCaseAndControls(t *testing.T) {
	_, err := readTargets(strings.NewReader("\u0130MAPS://mail.example.test\n"), nil, nil)
	require.ErrorContains(t, err, "unknown scheme")
	targets, err := readTargets(strings.NewReader("ImApS://mail.example.test\n"), nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "imap", targets[0].probe.protocol)
	for _, line := range []string{"-\x1b[2J", "smtp://\x1b[2J", "smtp://a\u009bb"} {
		_, err := readTargets(strings.NewReader(line+"\n"), nil, nil)
		require.Error(t, err, "line %q", line)
		assert.NotContains(t, err.Error(), "\x1b", "line %q", line)
		assert.NotContains(t, err.Error(), "\u009b", "line %q", line)
	}
}
