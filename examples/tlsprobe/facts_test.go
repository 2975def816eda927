package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/tlsup/tlsup/examples/ldap"
	"github.com/tlsup/tlsup/examples/upgraders"
	"github.com/tlsup/tlsup/internal/bytepeer"
	"github.com/tlsup/tlsup/internal/dnstest"
	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// The contract's "More protocols", "MTA policy" and "Many targets" at
// once: every protocol in a targets file, the operator facts in -mx lines,
// the two modes apart.

// TestProtocolsMatchUpgraders: the probe speaks exactly the protocols
// upgraders.New knows, with the same Upgraders, so that a fleet tool built
// on upgraders reaches every target the probe does.
func TestProtocolsMatchUpgraders(t *testing.T) {
	var names []string
	for name := range protocols() {
		names = append(names, name)
	}
	assert.ElementsMatch(t, upgraders.Names(), names)
	for name, p := range protocols() {
		mine := p.upgrader("localhost")
		theirs, err := upgraders.New(name, nil)
		require.NoError(t, err, name)
		assert.Equal(t, mine.Protocol(), theirs.Protocol(), name)
		assert.Equal(t, mine.Keyword(), theirs.Keyword(), name)
		assert.IsType(t, mine, theirs, name)
	}
}

func TestAuthBeforeTLS(t *testing.T) {
	tests := []struct {
		protocol string
		caps     []string
		want     bool
	}{
		{"smtp", []string{"PIPELINING", "AUTH PLAIN LOGIN", "STARTTLS"}, true},
		{"smtp", []string{"AUTH=LOGIN"}, true},
		{"lmtp", []string{"PIPELINING", "STARTTLS"}, false},
		{"imap", []string{"IMAP4rev1", "STARTTLS", "AUTH=PLAIN"}, true},
		{"imap", []string{"IMAP4rev1", "STARTTLS", "LOGINDISABLED"}, false},
		{"pop3", []string{"USER", "STLS"}, true},
		{"pop3", []string{"SASL PLAIN", "STLS"}, true},
		{"pop3", []string{"TOP", "STLS"}, false},
		{"sieve", []string{"IMPLEMENTATION Dovecot", "SASL", "STARTTLS"}, false}, // Dovecot's empty SASL before TLS
		{"sieve", []string{"SASL PLAIN", "STARTTLS"}, true},
		{"nntp", []string{"VERSION 2", "AUTHINFO", "STARTTLS"}, false},
		{"nntp", []string{"VERSION 2", "AUTHINFO USER", "STARTTLS"}, true},
		{"nntp", []string{"SASL PLAIN"}, true},
		{"ftp", []string{"AUTH TLS", "PBSZ", "PROT"}, false}, // AUTH TLS is the upgrade
		{"xmpp", []string{"starttls required", "mechanisms PLAIN SCRAM-SHA-1"}, true},
		{"xmpp", []string{"starttls required"}, false},
		{"postgres", nil, false},
		{"ldap", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.protocol+"/"+strings.Join(tt.caps, ","), func(t *testing.T) {
			got := authBeforeTLS(tt.protocol, starttls.NewCapabilities(tt.caps...))
			assert.Equal(t, tt.want, got, "capabilities %q", tt.caps)
		})
	}
}

// TestSchemesEveryProtocol: every protocol's name is a scheme, and the
// implicit schemes beyond the contract's three mean implicit TLS.
func TestSchemesEveryProtocol(t *testing.T) {
	tests := []struct {
		line, protocol, address string
		mode                    starttls.Mode
	}{
		{"sieve://sieve.example.test", "sieve", "sieve.example.test:4190", starttls.StartTLS},
		{"nntp://news.example.test", "nntp", "news.example.test:119", starttls.StartTLS},
		{"nntps://news.example.test", "nntp", "news.example.test:563", starttls.Implicit},
		{"ftp://ftp.example.test", "ftp", "ftp.example.test:21", starttls.StartTLS},
		{"ftps://ftp.example.test", "ftp", "ftp.example.test:990", starttls.Implicit},
		{"postgres://db.example.test", "postgres", "db.example.test:5432", starttls.StartTLS},
		{"postgresql://db.example.test:6543", "postgres", "db.example.test:6543", starttls.StartTLS},
		{"ldap://dir.example.test", "ldap", "dir.example.test:389", starttls.StartTLS},
		{"ldaps://dir.example.test", "ldap", "dir.example.test:636", starttls.Implicit},
		{"xmpp://chat.example.test", "xmpp", "chat.example.test:5222", starttls.StartTLS},
		{"chat.example.test:5223", "xmpp", "chat.example.test:5223", starttls.Implicit},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			targets, err := readTargets(strings.NewReader(tt.line+"\n"), nil, nil)
			require.NoError(t, err)
			require.Len(t, targets, 1)
			p := targets[0].probe
			assert.Equal(t, tt.protocol, p.protocol)
			assert.Equal(t, tt.address, p.address)
			assert.Equal(t, tt.mode, p.mode)
		})
	}
}

// TestTargetsEveryProtocol probes one target of each protocol beyond the
// mail ones in one -targets run: TLS for all, in input order, with the
// operator facts in each protocol's own terms.
func TestTargetsEveryProtocol(t *testing.T) {
	pki := scripttest.NewPKI(t)
	caFile := writeCA(t, pki)
	serverTLS := longLived(t, pki)
	sieve, sievePeer := scripttest.Listen(t, `
		S: "\"IMPLEMENTATION\" \"Example\"\r\n"
		S: "\"SASL\" \"\"\r\n"
		S: "\"STARTTLS\"\r\n"
		S: OK
		C: STARTTLS
		S: OK
		!tls
		S: "\"IMPLEMENTATION\" \"Example\"\r\n"
		S: "\"SASL\" \"PLAIN\"\r\n"
		S: OK
	`, &scripttest.Options{TLSConfig: serverTLS})
	nntp, nntpPeer := scripttest.Listen(t, `
		S: 200 news.example.test ready
		C: CAPABILITIES
		S: 101 Capability list:
		S: VERSION 2
		S: AUTHINFO USER
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
	`, &scripttest.Options{TLSConfig: serverTLS})
	ftp, ftpPeer := scripttest.Listen(t, `
		S: 220 ftp.example.test ready
		C: FEAT
		S: 211-Features:
		S: " AUTH TLS\r\n"
		S: 211 End
		C: AUTH TLS
		S: 234 Proceed with negotiation.
		!tls
		C: FEAT
		S: 211-Features:
		S: " AUTH TLS\r\n"
		S: " PBSZ\r\n"
		S: 211 End
	`, &scripttest.Options{TLSConfig: serverTLS})
	postgres, postgresPeer := bytepeer.Listen(t, pgPeer("S"), &bytepeer.Options{TLSConfig: serverTLS})
	refused, refusedPeer := bytepeer.Listen(t, pgPeer("N"), &bytepeer.Options{TLSConfig: serverTLS})
	ldapOK := append([]byte{0x30, 0x24, 0x02, 0x01, 0x01, 0x78, 0x1f,
		0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00, 0x8a, 0x16}, ldap.OIDStartTLS...)
	dir, dirPeer := bytepeer.Listen(t, func(p *bytepeer.Conn) error {
		if err := p.Expect(ldap.StartTLSRequest()); err != nil {
			return err
		}
		if err := p.Send(ldapOK); err != nil {
			return err
		}
		if err := p.TLS(); err != nil {
			return err
		}
		return p.ExpectEOF()
	}, &bytepeer.Options{TLSConfig: serverTLS})
	head := "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='" +
		scripttest.TestName + "' id='1' version='1.0'>"
	chat, chatPeer := bytepeer.Listen(t, func(p *bytepeer.Conn) error {
		if _, err := p.ExpectUntil("streams'>"); err != nil {
			return err
		}
		if err := p.SendString(head + "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" +
			"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"); err != nil {
			return err
		}
		if err := p.Expect([]byte("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")); err != nil {
			return err
		}
		if err := p.SendString("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"); err != nil {
			return err
		}
		if err := p.TLS(); err != nil {
			return err
		}
		if _, err := p.ExpectUntil("streams'>"); err != nil {
			return err
		}
		if err := p.SendString(head + "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"); err != nil {
			return err
		}
		return p.ExpectEOF()
	}, &bytepeer.Options{TLSConfig: serverTLS})

	file := writeTargets(t, "sieve://"+sieve, "nntp://"+nntp, "ftp://"+ftp, "postgres://"+postgres,
		"postgresql://"+refused, "ldap://"+dir, "xmpp://"+chat)
	code, objs, stderr := runJSONLines(t, "-targets", file, "-j", "4", "-json", "-cafile", caFile,
		"-servername", scripttest.TestName, "-timeout", "10s")
	assert.Equal(t, exitFailed, code, "the PostgreSQL server that answers N fails under required; stderr: %s", stderr)
	want := []struct {
		protocol string
		tls      bool
		offered  any
		warnings []string
	}{
		{"sieve", true, true, []string{}}, // an empty SASL before TLS offers nothing
		{"nntp", true, true, []string{warnPlaintextAuth}},
		{"ftp", true, true, []string{}}, // AUTH TLS in FEAT inside TLS is no stale list
		{"postgres", true, true, []string{}},
		{"postgres", false, false, []string{}},
		{"ldap", true, true, []string{}},
		{"xmpp", true, true, []string{warnPlaintextAuth}},
	}
	require.Len(t, objs, len(want))
	for i, w := range want {
		obj := objs[i]
		for _, key := range append(contractKeys, "target") {
			assert.Contains(t, obj, key, "line %d", i)
		}
		assert.Equal(t, w.protocol, obj["protocol"], "line %d in input order", i)
		assert.Equal(t, w.tls, obj["tls"], "line %d: %v", i, obj["error"])
		assert.Equal(t, w.offered, obj["starttls_offered"], "line %d", i)
		assert.Equal(t, w.warnings, stringList(obj["warnings"]), "line %d", i)
	}
	assert.Equal(t, "starttls", objs[4]["step"], "N is the answer to the SSLRequest")
	for _, p := range []*scripttest.Peer{sievePeer, nntpPeer, ftpPeer} {
		require.NoError(t, p.Wait())
	}
	for _, p := range []*bytepeer.Peer{postgresPeer, refusedPeer, dirPeer, chatPeer} {
		require.NoError(t, p.Wait())
	}
}

// TestMXOperatorFacts: a -mx line is a JSON object of the probe too, so it
// carries the operator facts beside the policy's keys.
func TestMXOperatorFacts(t *testing.T) {
	w := newMXWorld(t)
	cert, err := w.ca.IssueLeaf(tlsconf.Leaf{Names: []string{mxName}, NotAfter: time.Now().Add(90 * 24 * time.Hour)})
	require.NoError(t, err)
	addr, peer := scripttest.Listen(t, `
		S: 220 mx.example.test ESMTP
		C: EHLO localhost
		S: 250-mx.example.test
		S: 250-AUTH PLAIN
		S: 250 STARTTLS
		C: STARTTLS
		S: 220 go ahead
		!tls
		C: EHLO localhost
		S: 250-mx.example.test
		S: 250 STARTTLS
	`, &scripttest.Options{TLSConfig: tlsconf.Server(cert)})
	_, port, _ := net.SplitHostPort(addr)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-mx", mxDomain, "-resolver", w.dns.Addr, "-port", port,
		"-sts-port", w.stsPort, "-cafile", w.caFile, "-timeout", "3s", "-json"}, &stdout, &stderr)
	assert.Equal(t, exitTLS, code, "stderr: %s", stderr.String())
	var obj map[string]any
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &obj), "one line: %s", stdout.String())
	for _, key := range append(contractKeys, "mx", "policy_type", "policy_mode", "tlsrpt_result", "tlsrpt_reason") {
		assert.Contains(t, obj, key)
	}
	assert.Equal(t, true, obj["starttls_offered"])
	assert.Nil(t, obj["step"])
	assert.Equal(t, []string{warnPlaintextAuth, warnStartTLSAgain}, stringList(obj["warnings"]))
	require.NoError(t, peer.Wait())

	// A deferral: step lookup, the facts unknown.
	w.dns.Set(mxDomain, dnsmessage.TypeMX, dnstest.Answer{Silent: true})
	stdout.Reset()
	code = run(context.Background(), []string{"-mx", mxDomain, "-resolver", w.dns.Addr, "-timeout", "1s", "-json"}, &stdout, &stderr)
	assert.Equal(t, exitDefer, code)
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &obj), "one line: %s", stdout.String())
	assert.Equal(t, "lookup", obj["step"])
	assert.Nil(t, obj["starttls_offered"])
	assert.Equal(t, []string{}, stringList(obj["warnings"]))
}

// TestModesApart: -mx and -targets are two modes; together they are a
// usage error, and -j belongs to -targets alone.
func TestModesApart(t *testing.T) {
	file := writeTargets(t, "smtp://127.0.0.1:1")
	for _, args := range [][]string{
		{"-mx", "example.test", "-targets", file},
		{"-targets=" + file, "-mx=example.test", "-json"},
		{"-mx", "example.test", "-j", "4"},
	} {
		var stdout, stderr bytes.Buffer
		assert.Equal(t, exitUsage, run(context.Background(), args, &stdout, &stderr), "%q: stderr %s", args, stderr.String())
		assert.Empty(t, stdout.String(), "%q", args)
	}
}
