package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
)

// TestResolveAddressLine: the ports of the line protocols (the contract's
// "More protocols"), with and without -protocol.
func TestResolveAddressLine(t *testing.T) {
	for _, tc := range []struct {
		arg, protocol string
		mode          starttls.Mode
		wantProto     string
		wantAddr      string
	}{
		{"sieve.example.test", "sieve", starttls.Auto, "sieve", "sieve.example.test:4190"},
		{"sieve.example.test:4190", "", starttls.Auto, "sieve", "sieve.example.test:4190"},
		{"news.example.test", "nntp", starttls.Auto, "nntp", "news.example.test:119"},
		{"news.example.test", "nntp", starttls.Implicit, "nntp", "news.example.test:563"},
		{"news.example.test:119", "", starttls.Auto, "nntp", "news.example.test:119"},
		{"news.example.test:563", "", starttls.Auto, "nntp", "news.example.test:563"},
		{"ftp.example.test", "ftp", starttls.Auto, "ftp", "ftp.example.test:21"},
		{"ftp.example.test", "ftp", starttls.Implicit, "ftp", "ftp.example.test:990"},
		{"ftp.example.test:21", "", starttls.Auto, "ftp", "ftp.example.test:21"},
		{"ftp.example.test:990", "", starttls.Auto, "ftp", "ftp.example.test:990"},
	} {
		t.Run(tc.arg+"/"+tc.protocol+"/"+tc.mode.String(), func(t *testing.T) {
			proto, _, addr, err := resolveAddress(tc.arg, tc.protocol, tc.mode)
			require.NoError(t, err)
			assert.Equal(t, tc.wantProto, proto)
			assert.Equal(t, tc.wantAddr, addr)
		})
	}
	_, _, _, err := resolveAddress("sieve.example.test", "sieve", starttls.Implicit)
	assert.ErrorAs(t, err, new(usageError), "ManageSieve has no implicit-TLS port")
}

// TestProbeLine runs the probe against each line protocol's fake server:
// the JSON's greeting and capabilities are as the contract says.
func TestProbeLine(t *testing.T) {
	pki := scripttest.NewPKI(t)
	caFile := writeCA(t, pki)
	for _, tc := range []struct {
		protocol, script string
		greeting         string
		before, after    []string
	}{{
		protocol: "sieve",
		script: `
			S: "\"IMPLEMENTATION\" \"Example\"\r\n"
			S: "\"SIEVE\" \"fileinto reject\"\r\n"
			S: "\"SASL\" \"\"\r\n"
			S: "\"STARTTLS\"\r\n"
			S: "OK\r\n"
			C: STARTTLS
			S: OK
			!tls
			S: "\"IMPLEMENTATION\" \"Example\"\r\n"
			S: "\"SIEVE\" \"fileinto reject\"\r\n"
			S: "\"SASL\" \"PLAIN\"\r\n"
			S: OK
		`,
		greeting: "Example",
		before:   []string{"IMPLEMENTATION Example", "SIEVE fileinto reject", "SASL", "STARTTLS"},
		after:    []string{"IMPLEMENTATION Example", "SIEVE fileinto reject", "SASL PLAIN"},
	}, {
		protocol: "nntp",
		script: `
			S: 200 news.example.test ready
			C: CAPABILITIES
			S: 101 Capability list:
			S: VERSION 2
			S: STARTTLS
			S: .
			C: STARTTLS
			S: 382 Continue with TLS negotiation
			!tls
			C: CAPABILITIES
			S: 101 Capability list:
			S: VERSION 2
			S: AUTHINFO USER
			S: .
		`,
		greeting: "news.example.test ready",
		before:   []string{"VERSION 2", "STARTTLS"},
		after:    []string{"VERSION 2", "AUTHINFO USER"},
	}, {
		protocol: "ftp",
		script: `
			S: 220 ftp.example.test ready
			C: FEAT
			S: 211-Features:
			S: " AUTH TLS\r\n"
			S: " PBSZ\r\n"
			S: 211 End
			C: AUTH TLS
			S: 234 Proceed with negotiation.
			!tls
			C: FEAT
			S: 211-Features:
			S: " PBSZ\r\n"
			S: " PROT\r\n"
			S: 211 End
		`,
		greeting: "ftp.example.test ready",
		before:   []string{"AUTH TLS", "PBSZ"},
		after:    []string{"PBSZ", "PROT"},
	}} {
		t.Run(tc.protocol, func(t *testing.T) {
			addr, peer := scripttest.Listen(t, tc.script, &scripttest.Options{TLSConfig: pki.Server()})
			r := runProbe(t, "-json", "-protocol", tc.protocol, "-cafile", caFile, "-servername", scripttest.TestName,
				"-timeout", "5s", addr)
			require.Equal(t, exitTLS, r.code, "stdout %s stderr %s", r.stdout, r.stderr)
			assert.Equal(t, tc.protocol, r.json["protocol"])
			assert.Equal(t, "starttls", r.json["mode"])
			assert.Equal(t, true, r.json["tls"])
			assert.Equal(t, tc.greeting, r.json["greeting"])
			assert.Equal(t, tc.before, stringList(r.json["capabilities_before"]))
			assert.Equal(t, tc.after, stringList(r.json["capabilities_after"]))
			assert.Nil(t, r.json["error"])
			require.NoError(t, peer.Wait())
		})
	}
}
