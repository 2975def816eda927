package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/examples/ldap"
	"github.com/tlsup/tlsup/examples/postgres"
	"github.com/tlsup/tlsup/internal/bytepeer"
	"github.com/tlsup/tlsup/internal/scripttest"
)

// This file is a red-team pass over the probe: adversarial servers built
// from the published STARTTLS attack classes (Poddebniak et al., "Why TLS
// is better without STARTTLS", USENIX Security 2021; CVE-2011-0411 and its
// siblings; the PREAUTH and response-injection CVEs of mail clients),
// each a table row named after its attack, checked against the contract:
// exit status, error.kind, tls, capabilities_after never carried over from
// before TLS, and an exit within -timeout plus one second.

// mailDialect is one mail protocol's side of a red-team script: the lines
// of a well-behaved server, which the attack rows bend.
type mailDialect struct {
	protocol string
	// greet is the greeting and the discovery before TLS, STARTTLS
	// advertised; stripped is the same with STARTTLS removed.
	greet, stripped string
	// greetOnly is the greeting alone, discover what the client sends
	// next to discover capabilities.
	greetOnly, discover string
	// starttls is the client's upgrade command, goAhead the server's
	// go-ahead, refusal a well-formed no.
	starttls, goAhead, refusal string
	// inside is the handshake and the discovery inside TLS; after is the
	// list it gives.
	inside string
	after  []string
	// forged is a plausible reply line an attacker appends to the go-ahead
	// (a CRLF-terminated Go-quoted string for S+).
	forged string
	// notGoAhead are answers to STARTTLS that are neither a go-ahead nor a
	// refusal (contract: kind protocol).
	notGoAhead []string
	// rejected are greetings that refuse the session.
	rejected []string
	// hugeResponse is a discovery answer over 1000 lines.
	hugeResponse string
}

// The pre-TLS lists carry X-BEFORE and AUTH: neither may appear after TLS.
func mailDialects() []mailDialect {
	var smtpHuge, popHuge strings.Builder
	for range 1001 {
		smtpHuge.WriteString("S: 250-X-FILLER\n")
		popHuge.WriteString("S: X-FILLER\n")
	}
	smtp := func(protocol, verb string) mailDialect {
		return mailDialect{
			protocol:  protocol,
			greetOnly: "S: 220 mx.example.test ESMTP ready\n",
			discover:  "C: " + verb + " localhost\n",
			greet: "S: 220 mx.example.test ESMTP ready\nC: " + verb + " localhost\n" +
				"S: 250-mx.example.test\nS: 250-AUTH PLAIN LOGIN\nS: 250-X-BEFORE\nS: 250 STARTTLS\n",
			stripped: "S: 220 mx.example.test ESMTP ready\nC: " + verb + " localhost\n" +
				"S: 250-mx.example.test\nS: 250-AUTH PLAIN LOGIN\nS: 250 X-BEFORE\n",
			starttls: "C: STARTTLS\n",
			goAhead:  "S: 220 2.0.0 Ready to start TLS\n",
			refusal:  "S: 454 4.7.0 TLS not available\n",
			inside: "!tls\nC: " + verb + " localhost\n" +
				"S: 250-mx.example.test\nS: 250-SIZE 1000\nS: 250 X-AFTER\n",
			after:        []string{"SIZE 1000", "X-AFTER"},
			forged:       `"250-AUTH PLAIN\r\n250 X-INJECTED\r\n"`,
			notGoAhead:   []string{"S: 250 2.0.0 OK\n", "S: 354 go ahead\n", "S: 220-go\nS: 250 ahead\n", "S: 200 ok\n"},
			rejected:     []string{"S: 421 4.3.2 busy\n", "S: 554 5.3.2 go away\n", "S: 554-no\nS: 554 really\n"},
			hugeResponse: "S: 220 mx.example.test ESMTP ready\nC: " + verb + " localhost\nS: 250-mx.example.test\n" + smtpHuge.String() + "S: 250 STARTTLS\n",
		}
	}
	return []mailDialect{
		smtp("smtp", "EHLO"),
		smtp("lmtp", "LHLO"),
		{
			protocol:  "imap",
			greetOnly: "S: * OK ready\n",
			discover:  "C: {d} CAPABILITY\n",
			greet: "S: * OK ready\nC: {d} CAPABILITY\n" +
				"S: * CAPABILITY IMAP4rev1 AUTH=PLAIN X-BEFORE STARTTLS\nS: {d} OK done\n",
			stripped: "S: * OK ready\nC: {d} CAPABILITY\n" +
				"S: * CAPABILITY IMAP4rev1 AUTH=PLAIN X-BEFORE\nS: {d} OK done\n",
			starttls: "C: {s} STARTTLS\n",
			goAhead:  "S: {s} OK Begin TLS negotiation\n",
			refusal:  "S: {s} NO TLS not available\n",
			inside: "!tls\nC: {a} CAPABILITY\n" +
				"S: * CAPABILITY IMAP4rev1 X-AFTER\nS: {a} OK done\n",
			after:        []string{"IMAP4rev1", "X-AFTER"},
			forged:       `"* CAPABILITY IMAP4rev1 AUTH=PLAIN X-INJECTED\r\n"`,
			notGoAhead:   []string{"S: + go ahead\n", "S: xyz OK forged tag\n", "S: {s} MAYBE\n"},
			rejected:     []string{"S: * BYE go away\n"},
			hugeResponse: "S: * OK ready\nC: {d} CAPABILITY\n" + strings.Repeat("S: * OK filler\n", 1001) + "S: * CAPABILITY IMAP4rev1 STARTTLS\nS: {d} OK done\n",
		},
		{
			protocol:     "pop3",
			greetOnly:    "S: +OK ready\n",
			discover:     "C: CAPA\n",
			greet:        "S: +OK ready\nC: CAPA\nS: +OK\nS: USER\nS: SASL PLAIN\nS: X-BEFORE\nS: STLS\nS: .\n",
			stripped:     "S: +OK ready\nC: CAPA\nS: +OK\nS: USER\nS: SASL PLAIN\nS: X-BEFORE\nS: .\n",
			starttls:     "C: STLS\n",
			goAhead:      "S: +OK Begin TLS negotiation\n",
			refusal:      "S: -ERR [SYS/TEMP] not now\n",
			inside:       "!tls\nC: CAPA\nS: +OK\nS: USER\nS: X-AFTER\nS: .\n",
			after:        []string{"USER", "X-AFTER"},
			forged:       `"+OK forged\r\n"`,
			notGoAhead:   []string{"S: 220 go ahead\n", "S: OK\n", "S: + go\n"},
			rejected:     []string{"S: -ERR go away\n", "S: -ERR [SYS/PERM] maintenance\n"},
			hugeResponse: "S: +OK ready\nC: CAPA\nS: +OK\n" + popHuge.String() + "S: STLS\nS: .\n",
		},
	}
}

// redteamCase is one adversarial server and what the probe must make of it.
type redteamCase struct {
	name   string
	script string
	flags  []string
	code   int
	// kinds are the acceptable error kinds, the first the usual one; none
	// means error null.
	kinds []string
	tls   bool
	// after is the exact capabilities_after when not nil.
	after []string
	// timeout is -timeout; zero means 5s.
	timeout time.Duration
	// peerOK: the peer's script must have run to its end.
	peerOK bool
}

// mailCases are the attack rows for one mail protocol.
func mailCases(d mailDialect) []redteamCase {
	ok := d.greet + d.starttls + d.goAhead + d.inside
	short := 500 * time.Millisecond
	cases := []redteamCase{
		{name: "baseline", script: ok, code: exitTLS, tls: true, after: d.after, peerOK: true},
		// Stripping (the downgrade every client in the study was tested for).
		{name: "stripped-required", script: d.stripped + "!eof", code: exitFailed, kinds: []string{"not-offered"}, peerOK: true},
		{name: "stripped-always", script: d.stripped + d.starttls + d.goAhead + d.inside, flags: []string{"-policy", "always"},
			code: exitTLS, tls: true, after: d.after, peerOK: true},
		{name: "stripped-opportunistic", script: d.stripped + "!eof", flags: []string{"-policy", "opportunistic"},
			code: exitPlaintext, peerOK: true},
		{name: "refused", script: d.greet + d.starttls + d.refusal + "!eof", code: exitFailed, kinds: []string{"refused"}, peerOK: true},
		{name: "refused-opportunistic", script: d.greet + d.starttls + d.refusal + "!eof", flags: []string{"-policy", "opportunistic"},
			code: exitFailed, kinds: []string{"refused"}, peerOK: true},
		{name: "refused-always-stripped", script: d.stripped + d.starttls + d.refusal + "!eof", flags: []string{"-policy", "always"},
			code: exitFailed, kinds: []string{"refused"}, peerOK: true},
		// Once advertised, any failure is an error under opportunistic too.
		{name: "opportunistic-injected", script: d.greet + d.starttls + d.goAhead + "S+ " + d.forged + "\n!eof",
			flags: []string{"-policy", "opportunistic"}, code: exitFailed, kinds: []string{"injected-data"}, peerOK: true},
		{name: "opportunistic-garbage-answer", script: d.greet + d.starttls + d.notGoAhead[0] + "!eof",
			flags: []string{"-policy", "opportunistic"}, code: exitFailed, kinds: []string{"protocol"}},
		{name: "opportunistic-hangup-after-goahead", script: d.greet + d.starttls + d.goAhead + "!close",
			flags: []string{"-policy", "opportunistic"}, code: exitFailed, kinds: []string{"handshake"}},
		{name: "opportunistic-silent-after-starttls", script: d.greet + d.starttls + "!hold",
			flags: []string{"-policy", "opportunistic"}, timeout: short, code: exitFailed, kinds: []string{"timeout"}},
		// Injection after the go-ahead (CVE-2011-0411 class, client side).
		{name: "inject-same-write-reply", script: d.greet + d.starttls + d.goAhead + "S+ " + d.forged + "\n!eof",
			code: exitFailed, kinds: []string{"injected-data"}, peerOK: true},
		{name: "inject-same-write-partial-line", script: d.greet + d.starttls + d.goAhead + "S+ \"2\"\n!eof",
			code: exitFailed, kinds: []string{"injected-data"}, peerOK: true},
		{name: "inject-same-write-crlf-only", script: d.greet + d.starttls + d.goAhead + "S+ \"\\r\\n\"\n!eof",
			code: exitFailed, kinds: []string{"injected-data"}, peerOK: true},
		{name: "inject-same-write-tls-record", script: d.greet + d.starttls + d.goAhead + "S+ \"\\x16\\x03\\x03\\x00\\x02\\x02\\x28\"\n!eof",
			code: exitFailed, kinds: []string{"injected-data"}, peerOK: true},
		{name: "inject-same-write-nul", script: d.greet + d.starttls + d.goAhead + "S+ \"\\x00\"\n!eof",
			code: exitFailed, kinds: []string{"injected-data"}, peerOK: true},
		// Bytes a moment later, before the ServerHello: either already
		// buffered at the switch or read as a broken TLS record.
		{name: "inject-later-write", script: d.greet + d.starttls + d.goAhead + "!sleep 30ms\nS+ " + d.forged + "\n!hold",
			code: exitFailed, kinds: []string{"handshake", "injected-data"}},
		{name: "inject-later-write-trickled", script: d.greet + d.starttls + d.goAhead + "!trickle 5ms\nS+ " + d.forged + "\n!hold",
			code: exitFailed, kinds: []string{"handshake", "injected-data"}},
		// A forged answer sent ahead of the STARTTLS command, with the
		// end of discovery: it must not be read as the go-ahead.
		{name: "inject-after-discovery", script: strings.TrimSuffix(d.greet, "\n") + "\nS+ " + d.forged + "\n!eof",
			code: exitFailed, kinds: []string{"injected-data", "protocol"}, peerOK: true},
		// Hang-ups at each step.
		{name: "hangup-before-greeting", script: "!close", code: exitFailed, kinds: []string{"closed"}},
		{name: "hangup-after-discover-command", script: d.greetOnly + d.discover + "!close", code: exitFailed, kinds: []string{"closed"}},
		{name: "hangup-after-starttls", script: d.greet + d.starttls + "!close", code: exitFailed, kinds: []string{"closed"}},
		{name: "hangup-after-goahead", script: d.greet + d.starttls + d.goAhead + "!close", code: exitFailed, kinds: []string{"handshake"}},
		// Peers that never answer or trickle: the probe ends by -timeout.
		{name: "silent-before-greeting", script: "!hold", timeout: short, code: exitFailed, kinds: []string{"timeout"}},
		{name: "silent-after-discover", script: d.greetOnly + d.discover + "!hold", timeout: short, code: exitFailed, kinds: []string{"timeout"}},
		{name: "silent-after-starttls", script: d.greet + d.starttls + "!hold", timeout: short, code: exitFailed, kinds: []string{"timeout"}},
		{name: "silent-after-goahead", script: d.greet + d.starttls + d.goAhead + "!hold", timeout: short, code: exitFailed, kinds: []string{"timeout"}},
		{name: "silent-inside-tls", script: d.greet + d.starttls + d.goAhead + "!tls\n!hold", timeout: 2 * time.Second,
			code: exitFailed, kinds: []string{"timeout"}, tls: true},
		// A go-ahead without its line end is no go-ahead yet.
		{name: "goahead-unterminated", script: d.greet + d.starttls + "S: " + quoteUnterminated(d.goAhead) + "\n!hold",
			timeout: short, code: exitFailed, kinds: []string{"timeout"}},
		// A ServerHello trickled: the handshake is bounded by -timeout too.
		{name: "trickle-tls-record", script: d.greet + d.starttls + d.goAhead + "!sleep 50ms\n!trickle 20ms\nS: \"\\x16\\x03\\x03\\x00\\x40" +
			strings.Repeat("a", 64) + "\"\n!hold", timeout: short, code: exitFailed, kinds: []string{"timeout"}},
		{name: "trickle-greeting", script: "!trickle 20ms\n" + strings.Repeat(strings.TrimSuffix(d.greetOnly, "\n")+"\n", 200),
			timeout: short, code: exitFailed, kinds: []string{"timeout"}},
		{name: "trickle-endless-line", script: "!trickle 10ms\nS: \"" + strings.Repeat("x", 400) + "\"\n", timeout: short,
			code: exitFailed, kinds: []string{"timeout"}},
		// Bounds.
		{name: "huge-greeting-line", script: "S: \"" + strings.Repeat("A", 5000) + "\\r\\n\"\n", code: exitFailed, kinds: []string{"too-large"}},
		{name: "huge-unterminated-line", script: "S: \"" + strings.Repeat("A", 70000) + "\"\n!hold", code: exitFailed, kinds: []string{"too-large"}},
		{name: "huge-discovery-response", script: d.hugeResponse, code: exitFailed, kinds: []string{"too-large"}},
		{name: "huge-starttls-reply", script: d.greet + d.starttls + "S: \"" + strings.Repeat("B", 5000) + "\\r\\n\"\n",
			code: exitFailed, kinds: []string{"too-large"}},
		{name: "huge-line-inside-tls", script: d.greet + d.starttls + d.goAhead + "!tls\n" + insideCommand(d) +
			"S: \"" + strings.Repeat("C", 5000) + "\\r\\n\"\n", code: exitFailed, kinds: []string{"too-large"}, tls: true},
		// Implicit TLS: a plaintext server on the TLS port fails the
		// handshake; the same checks apply inside.
		{name: "implicit-plaintext-server", script: d.greetOnly + "!hold", flags: []string{"-mode", "implicit"},
			code: exitFailed, kinds: []string{"handshake"}},
		{name: "implicit-ok", script: "!tls\n" + d.greetOnly + strings.TrimPrefix(d.inside, "!tls\n"), flags: []string{"-mode", "implicit"},
			code: exitTLS, tls: true, after: d.after, peerOK: true},
		// Stale capabilities: nothing learned before TLS survives it,
		// whatever the plaintext server said.
		{name: "starttls-advertised-after-tls", script: d.greet + d.starttls + d.goAhead + strings.Replace(d.inside, "X-AFTER", "STARTTLS", 1),
			code: exitTLS, tls: true, after: replaced(d.after, "X-AFTER", "STARTTLS"), peerOK: true},
		{name: "rediscover-refused", script: d.greet + d.starttls + d.goAhead + rediscoverRefused(d), code: exitFailed,
			kinds: []string{"refused", "protocol"}, tls: true},
		{name: "rediscover-hangup", script: d.greet + d.starttls + d.goAhead + "!tls\n!close", code: exitFailed,
			kinds: []string{"closed"}, tls: true},
	}
	// A terminal escape in a capability inside TLS: kept as sent and
	// escaped in the JSON where the grammar allows it (IMAP atoms do not).
	controls := redteamCase{name: "escape-in-capability-inside-tls", script: d.greet + d.starttls + d.goAhead + withControl(d.inside),
		code: exitTLS, tls: true, after: replaced(d.after, "X-AFTER", "X-AFTER\x1b[2J\u009b"), peerOK: true}
	if d.protocol == "imap" {
		controls.code, controls.kinds, controls.after, controls.peerOK = exitFailed, []string{"protocol"}, nil, false
	}
	cases = append(cases, controls)
	for _, answer := range d.notGoAhead {
		cases = append(cases, redteamCase{name: "starttls-answer-" + slug(answer), script: d.greet + d.starttls + answer,
			timeout: time.Second, code: exitFailed, kinds: []string{"protocol"}})
	}
	for _, g := range d.rejected {
		cases = append(cases, redteamCase{name: "greeting-rejected-" + slug(g), script: g + "!eof",
			code: exitFailed, kinds: []string{"greeting-rejected"}, peerOK: true})
	}
	return cases
}

func replaced(list []string, old, new string) []string {
	out := slices.Clone(list)
	for i := range out {
		if out[i] == old {
			out[i] = new
		}
	}
	return out
}

// withControl rewrites the line of script holding X-AFTER as a quoted
// line whose X-AFTER is followed by ESC [2J and the C1 CSI.
func withControl(script string) string {
	lines := strings.Split(script, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "S: ") && strings.Contains(l, "X-AFTER") {
			text := strings.Replace(strings.TrimPrefix(l, "S: "), "X-AFTER", "X-AFTER\x1b[2J\u009b", 1)
			lines[i] = "S: " + strconv.Quote(text+"\r\n")
		}
	}
	return strings.Join(lines, "\n")
}

// insideCommand is the discovery command line of d's script inside TLS.
func insideCommand(d mailDialect) string {
	return strings.Split(d.inside, "\n")[1] + "\n"
}

func rediscoverRefused(d mailDialect) string {
	switch d.protocol {
	case "imap":
		return "!tls\nC: {a} CAPABILITY\nS: {a} BAD no\n"
	case "pop3":
		return "!tls\nC: CAPA\nS: -ERR no\n"
	}
	return "!tls\n" + strings.Split(d.inside, "\n")[1] + "\nS: 421 4.3.2 bye\n"
}

// quoteUnterminated makes the text of a one-line "S: " directive a
// Go-quoted string without its line end.
func quoteUnterminated(directive string) string {
	return strconv.Quote(strings.TrimSuffix(strings.TrimPrefix(directive, "S: "), "\n"))
}

// slug is a short subtest name for a script fragment.
func slug(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
		if b.Len() > 24 {
			break
		}
	}
	return strings.Trim(b.String(), "-")
}

// runBounded runs the probe and fails the test unless it returns within
// -timeout plus one second (the contract's bound).
func runBounded(t *testing.T, timeout time.Duration, args ...string) probeResult {
	t.Helper()
	done := make(chan probeResult, 1)
	var stdout, stderr bytes.Buffer
	go func() {
		code := run(context.Background(), args, &stdout, &stderr)
		done <- probeResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
	}()
	var r probeResult
	select {
	case r = <-done:
	case <-time.After(timeout + time.Second):
		t.Fatalf("the probe did not exit within -timeout %v plus one second", timeout)
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &r.json), "stdout: %s", r.stdout)
	for _, k := range contractKeys {
		assert.Contains(t, r.json, k, "JSON key %q is a contract", k)
	}
	for _, c := range r.stdout {
		assert.False(t, c == 0x7f || (c < 0x20 && c != '\n') || (c >= 0x80 && c <= 0x9f) || unicode.Is(unicode.Cf, c),
			"raw control %U on stdout", c)
	}
	return r
}

// checkCase asserts a redteamCase's verdict on r.
func checkCase(t *testing.T, tc redteamCase, r probeResult) {
	t.Helper()
	assert.Equal(t, tc.code, r.code, "exit status; stdout %s", r.stdout)
	kind := r.errorKind(t)
	if len(tc.kinds) == 0 {
		assert.Empty(t, kind, "error must be null")
	} else {
		assert.Contains(t, tc.kinds, kind, "error.kind; stdout %s", r.stdout)
	}
	assert.Equal(t, tc.tls, r.json["tls"], "tls")
	after := stringList(r.json["capabilities_after"])
	if tc.after != nil {
		assert.Equal(t, tc.after, after, "capabilities_after is the fresh list from inside TLS")
	}
	if !tc.tls {
		assert.Nil(t, r.json["capabilities_after"], "no capabilities_after without TLS")
		assert.Nil(t, r.json["tls_version"])
	}
	for _, c := range after {
		for _, stale := range []string{"X-BEFORE", "X-INJECTED", "X-INJECT2", "AUTH=PLAIN", "AUTH PLAIN LOGIN", "SASL PLAIN"} {
			assert.NotEqual(t, stale, c, "capability %q carried over from before TLS", c)
		}
	}
	if tc.code == exitPlaintext {
		assert.Nil(t, r.json["error"])
	}
}

// TestRedteamMail runs every attack row against SMTP, LMTP, IMAP and POP3.
func TestRedteamMail(t *testing.T) {
	pki := scripttest.NewPKI(t)
	caFile := writeCA(t, pki)
	for _, d := range mailDialects() {
		cases := append(mailCases(d), protocolSpecificCases(d.protocol, d)...)
		for _, tc := range cases {
			t.Run(d.protocol+"/"+tc.name, func(t *testing.T) {
				runRedteamCase(t, pki, caFile, d.protocol, tc)
			})
		}
	}
}

func runRedteamCase(t *testing.T, pki *scripttest.PKI, caFile, protocol string, tc redteamCase) {
	t.Helper()
	timeout := tc.timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	addr, peer := scripttest.Listen(t, tc.script, &scripttest.Options{TLSConfig: pki.Server()})
	args := append([]string{"-json", "-protocol", protocol, "-cafile", caFile, "-servername", scripttest.TestName,
		"-timeout", timeout.String()}, tc.flags...)
	r := runBounded(t, timeout, append(args, addr)...)
	checkCase(t, tc, r)
	err := peer.Wait()
	if tc.peerOK {
		assert.NoError(t, err, "the peer's script")
	}
}

// protocolSpecificCases are the rows only one protocol has.
func protocolSpecificCases(protocol string, d mailDialect) []redteamCase {
	switch protocol {
	case "smtp", "lmtp":
		verb := "EHLO"
		if protocol == "lmtp" {
			verb = "LHLO"
		}
		return []redteamCase{
			// RFC 5321 multi-line 220: a complete reply, nothing behind it.
			{name: "goahead-multiline", script: d.greet + d.starttls + "S: 220-go\nS: 220 ahead\n" + d.inside,
				code: exitTLS, tls: true, after: d.after, peerOK: true},
			{name: "goahead-multiline-carrying-caps", script: d.greet + d.starttls + "S: 220-AUTH PLAIN\nS+ \"220-X-INJECTED\\r\\n\"\nS: 220 go\n" + d.inside,
				code: exitTLS, tls: true, after: d.after, peerOK: true},
			{name: "goahead-continued-then-silence", script: d.greet + d.starttls + "S: 220-go\n!hold", timeout: 500 * time.Millisecond,
				code: exitFailed, kinds: []string{"timeout"}},
			{name: "goahead-continued-then-injection", script: d.greet + d.starttls + "S: 220-go\nS+ \"220 ahead\\r\\n250 X-INJECTED\\r\\n\"\n!eof",
				code: exitFailed, kinds: []string{"injected-data"}, peerOK: true},
			{name: "ehlo-refused-required", script: d.greetOnly + "C: " + verb + " localhost\nS: 502 5.5.2 no\n!eof",
				code: exitFailed, kinds: []string{"not-offered"}, peerOK: true},
			{name: "ehlo-refused-always", script: d.greetOnly + "C: " + verb + " localhost\nS: 500 no\n" + d.starttls + d.goAhead + d.inside,
				flags: []string{"-policy", "always"}, code: exitTLS, tls: true, after: d.after, peerOK: true},
			{name: "starttls-221-closing", script: d.greet + d.starttls + "S: 221 bye\n!eof", code: exitFailed, kinds: []string{"refused"}, peerOK: true},
			{name: "starttls-421-closing", script: d.greet + d.starttls + "S: 421 4.3.2 bye\n!eof", code: exitFailed, kinds: []string{"refused"}, peerOK: true},
			{name: "greeting-nul", script: "S: \"220 mx\\x00evil\\r\\n\"\n" + "C: " + verb + " localhost\nS: 250 mx\n!eof",
				code: exitFailed, kinds: []string{"protocol", "not-offered"}},
			{name: "keyword-with-nul", script: d.greetOnly + "C: " + verb + " localhost\nS: 250-mx\nS: \"250 STARTTLS\\x00\\r\\n\"\n!hold",
				timeout: time.Second, code: exitFailed, kinds: []string{"not-offered", "protocol"}},
			{name: "bare-lf-goahead-with-injection", script: d.greet + d.starttls + "S: \"220 go\\n250 X-INJECTED\\r\\n\"\n!hold",
				timeout: time.Second, code: exitFailed, kinds: []string{"injected-data", "protocol"}},
			// A bare CR inside the go-ahead line: either the line is
			// refused, or it is one line and nothing is buffered behind
			// it, and the handshake with this silent peer times out.
			{name: "bare-cr-goahead-with-injection", script: d.greet + d.starttls + "S: \"220 go\\r250 X-INJECTED\\r\\n\"\n!hold",
				timeout: time.Second, code: exitFailed, kinds: []string{"injected-data", "protocol", "timeout"}},
			{name: "greeting-not-220", script: "S: 250 hello\n!eof", code: exitFailed, kinds: []string{"protocol"}},
		}
	case "imap":
		return []redteamCase{
			// Thunderbird/Mail.app: PREAUTH makes STARTTLS impossible.
			{name: "preauth-required", script: "S: * PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] welcome\n!eof",
				code: exitFailed, kinds: []string{"preauth"}, peerOK: true},
			{name: "preauth-always", script: "S: * PREAUTH welcome\n!eof", flags: []string{"-policy", "always"},
				code: exitFailed, kinds: []string{"preauth"}, peerOK: true},
			{name: "preauth-opportunistic", script: "S: * PREAUTH welcome\n!eof", flags: []string{"-policy", "opportunistic"},
				code: exitFailed, kinds: []string{"preauth"}, peerOK: true},
			// Capabilities in the greeting and in the STARTTLS reply
			// are pre-TLS and never survive.
			{name: "caps-in-greeting-and-ok", script: "S: * OK [CAPABILITY IMAP4rev1 AUTH=PLAIN X-BEFORE STARTTLS] ready\n" +
				d.starttls + "S: {s} OK [CAPABILITY IMAP4rev1 AUTH=PLAIN X-INJECT2] begin\n" + d.inside,
				code: exitTLS, tls: true, after: d.after, peerOK: true},
			{name: "untagged-before-goahead", script: d.greet + d.starttls + "S: * OK still here\nS: * CAPABILITY IMAP4rev1 AUTH=PLAIN X-INJECTED\nS: {s} OK begin\n" + d.inside,
				code: exitTLS, tls: true, after: d.after, peerOK: true},
			{name: "untagged-after-goahead-same-write", script: d.greet + d.starttls + "S: {s} OK begin\nS+ \"* OK [ALERT] x\\r\\n\"\n!eof",
				code: exitFailed, kinds: []string{"injected-data"}, peerOK: true},
			{name: "untagged-after-goahead-later", script: d.greet + d.starttls + "S: {s} OK begin\n!sleep 30ms\nS: * CAPABILITY IMAP4rev1 AUTH=PLAIN\n!hold",
				code: exitFailed, kinds: []string{"handshake", "injected-data"}},
			{name: "bye-to-starttls", script: d.greet + d.starttls + "S: * BYE shutting down\n!eof", code: exitFailed, kinds: []string{"refused"}, peerOK: true},
			{name: "bad-to-starttls", script: d.greet + d.starttls + "S: {s} BAD no\n!eof", code: exitFailed, kinds: []string{"refused"}, peerOK: true},
			{name: "huge-literal", script: d.greet + d.starttls + "S: * 1 FETCH (BODY[] {70000}\n!hold", timeout: 2 * time.Second,
				code: exitFailed, kinds: []string{"too-large"}},
			{name: "huge-literal-in-capability", script: d.greetOnly + d.discover + "S: * CAPABILITY {99999999}\n!hold", timeout: 2 * time.Second,
				code: exitFailed, kinds: []string{"too-large"}},
			{name: "implicit-preauth", script: "!tls\nS: * PREAUTH [CAPABILITY IMAP4rev1 X-BEFORE] welcome\n" + strings.TrimPrefix(d.inside, "!tls\n"),
				flags: []string{"-mode", "implicit"}, code: exitTLS, tls: true, after: d.after, peerOK: true},
			{name: "greeting-tagged", script: "S: a OK ready\n!eof", code: exitFailed, kinds: []string{"protocol"}},
			{name: "greeting-no", script: "S: * NO go away\n!eof", code: exitFailed, kinds: []string{"protocol", "greeting-rejected"}},
			{name: "keyword-with-nul", script: "S: \"* OK [CAPABILITY IMAP4rev1 STARTTLS\\x00] ready\\r\\n\"\n!hold",
				timeout: time.Second, code: exitFailed, kinds: []string{"protocol", "not-offered"}},
			{name: "bare-lf-goahead-with-injection", script: d.greet + d.starttls + "S: \"{s} OK go\\n* CAPABILITY X-INJECTED\\r\\n\"\n!hold",
				timeout: time.Second, code: exitFailed, kinds: []string{"injected-data", "protocol"}},
			{name: "goahead-forged-before-command", script: "S: * OK [CAPABILITY IMAP4rev1 STARTTLS] ready\nS+ \"* OK forged\\r\\n\"\n!eof",
				code: exitFailed, kinds: []string{"injected-data", "protocol"}, peerOK: true},
		}
	case "pop3":
		return []redteamCase{
			{name: "caps-sent-with-greeting", script: "S: +OK ready\nS+ \"+OK\\r\\nSTLS\\r\\nUSER\\r\\n.\\r\\n\"\n!eof",
				code: exitFailed, kinds: []string{"protocol", "injected-data"}, peerOK: true},
			{name: "goahead-then-dot", script: d.greet + d.starttls + d.goAhead + "S+ \".\\r\\n\"\n!eof",
				code: exitFailed, kinds: []string{"injected-data"}, peerOK: true},
			{name: "capa-refused-required", script: "S: +OK ready\nC: CAPA\nS: -ERR no\n!eof",
				code: exitFailed, kinds: []string{"not-offered"}, peerOK: true},
			{name: "capa-refused-always", script: "S: +OK ready\nC: CAPA\nS: -ERR no\n" + d.starttls + d.goAhead + d.inside,
				flags: []string{"-policy", "always"}, code: exitTLS, tls: true, after: d.after, peerOK: true},
			{name: "keyword-with-nul", script: "S: +OK ready\nC: CAPA\nS: +OK\nS: \"STLS\\x00\\r\\n\"\nS: .\n!hold",
				timeout: time.Second, code: exitFailed, kinds: []string{"protocol", "not-offered"}},
			{name: "bare-lf-goahead-with-injection", script: d.greet + d.starttls + "S: \"+OK go\\n+OK X-INJECTED\\r\\n\"\n!hold",
				timeout: time.Second, code: exitFailed, kinds: []string{"injected-data", "protocol"}},
			{name: "greeting-garbage", script: "S: * OK hello\n!eof", code: exitFailed, kinds: []string{"protocol"}},
		}
	}
	return nil
}

// TestRedteamLine: injection, stripping and refusal for ManageSieve, NNTP
// and FTP.
func TestRedteamLine(t *testing.T) {
	pki := scripttest.NewPKI(t)
	caFile := writeCA(t, pki)
	sieveGreet := func(starttls bool) string {
		s := "S: \"\\\"IMPLEMENTATION\\\" \\\"Example\\\"\\r\\n\"\nS: \"\\\"SASL\\\" \\\"PLAIN\\\"\\r\\n\"\n"
		if starttls {
			s += "S: \"\\\"STARTTLS\\\"\\r\\n\"\n"
		}
		return s + "S: OK\n"
	}
	nntpGreet := func(starttls bool) string {
		s := "S: 200 news.example.test ready\nC: CAPABILITIES\nS: 101 Capability list:\nS: VERSION 2\nS: AUTHINFO USER\n"
		if starttls {
			s += "S: STARTTLS\n"
		}
		return s + "S: .\n"
	}
	ftpGreet := func(starttls bool) string {
		s := "S: 220 ftp.example.test ready\nC: FEAT\nS: 211-Features:\nS: \" PBSZ\\r\\n\"\n"
		if starttls {
			s += "S: \" AUTH TLS\\r\\n\"\n"
		}
		return s + "S: 211 End\n"
	}
	type lineProto struct {
		protocol                   string
		greet                      func(bool) string
		starttls, goAhead, refusal string
		forged                     string
		inside                     string
		after                      []string
	}
	for _, p := range []lineProto{
		{protocol: "sieve", greet: sieveGreet, starttls: "C: STARTTLS\n", goAhead: "S: OK\n", refusal: "S: NO \"not now\"\n",
			forged: `"\"SASL\" \"PLAIN LOGIN\"\r\nOK\r\n"`,
			inside: "!tls\nS: \"\\\"IMPLEMENTATION\\\" \\\"Example\\\"\\r\\n\"\nS: \"\\\"X-AFTER\\\"\\r\\n\"\nS: OK\n",
			after:  []string{"IMPLEMENTATION Example", "X-AFTER"}},
		{protocol: "nntp", greet: nntpGreet, starttls: "C: STARTTLS\n", goAhead: "S: 382 Continue with TLS negotiation\n",
			refusal: "S: 580 Can not initiate TLS negotiation\n", forged: `"281 Authentication accepted\r\n"`,
			inside: "!tls\nC: CAPABILITIES\nS: 101 Capability list:\nS: VERSION 2\nS: X-AFTER\nS: .\n",
			after:  []string{"VERSION 2", "X-AFTER"}},
		{protocol: "ftp", greet: ftpGreet, starttls: "C: AUTH TLS\n", goAhead: "S: 234 Proceed with negotiation.\n",
			refusal: "S: 431 Unable to accept security mechanism\n", forged: `"230 Logged in\r\n"`,
			inside: "!tls\nC: FEAT\nS: 211-Features:\nS: \" X-AFTER\\r\\n\"\nS: 211 End\n",
			after:  []string{"X-AFTER"}},
	} {
		cases := []redteamCase{
			{name: "baseline", script: p.greet(true) + p.starttls + p.goAhead + p.inside, code: exitTLS, tls: true, after: p.after, peerOK: true},
			{name: "stripped-required", script: p.greet(false) + "!eof", code: exitFailed, kinds: []string{"not-offered"}, peerOK: true},
			{name: "stripped-opportunistic", script: p.greet(false) + "!eof", flags: []string{"-policy", "opportunistic"},
				code: exitPlaintext, peerOK: true},
			{name: "stripped-always", script: p.greet(false) + p.starttls + p.goAhead + p.inside, flags: []string{"-policy", "always"},
				code: exitTLS, tls: true, after: p.after, peerOK: true},
			{name: "refused", script: p.greet(true) + p.starttls + p.refusal + "!eof", code: exitFailed, kinds: []string{"refused"}, peerOK: true},
			{name: "inject-same-write", script: p.greet(true) + p.starttls + p.goAhead + "S+ " + p.forged + "\n!eof",
				code: exitFailed, kinds: []string{"injected-data"}, peerOK: true},
			{name: "inject-same-write-partial", script: p.greet(true) + p.starttls + p.goAhead + "S+ \"2\"\n!eof",
				code: exitFailed, kinds: []string{"injected-data"}, peerOK: true},
			{name: "inject-later-write", script: p.greet(true) + p.starttls + p.goAhead + "!sleep 30ms\nS+ " + p.forged + "\n!hold",
				code: exitFailed, kinds: []string{"handshake", "injected-data"}},
			{name: "silent-after-starttls", script: p.greet(true) + p.starttls + "!hold", timeout: 500 * time.Millisecond,
				code: exitFailed, kinds: []string{"timeout"}},
			{name: "huge-line", script: "S: \"" + strings.Repeat("A", 5000) + "\\r\\n\"\n", code: exitFailed, kinds: []string{"too-large"}},
		}
		for _, tc := range cases {
			t.Run(p.protocol+"/"+tc.name, func(t *testing.T) {
				runRedteamCase(t, pki, caFile, p.protocol, tc)
			})
		}
	}
}

// ldapResponse is an ExtendedResponse to message 1 with resultCode code,
// followed by extra.
func ldapResponse(code byte, extra ...byte) []byte {
	return append([]byte{0x30, 0x0c, 0x02, 0x01, 0x01, 0x78, 0x07, 0x0a, 0x01, code, 0x04, 0x00, 0x04, 0x00}, extra...)
}

// TestRedteamBinary: injection, not offered and refusal for PostgreSQL,
// LDAP and XMPP.
func TestRedteamBinary(t *testing.T) {
	pki := scripttest.NewPKI(t)
	caFile := writeCA(t, pki)
	xmppHead := "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='" +
		scripttest.TestName + "' id='1' version='1.0'>"
	xmppTLS := "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
	xmppOffer := xmppHead + "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"
	xmppStripped := xmppHead + "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"
	xmppProceed := "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
	xmpp := func(features, answer string, thenTLS bool) func(*bytepeer.Conn) error {
		return func(p *bytepeer.Conn) error {
			if _, err := p.ExpectUntil("streams'>"); err != nil {
				return err
			}
			if err := p.SendString(features); err != nil {
				return err
			}
			if answer == "" {
				return p.Hold()
			}
			if err := p.Expect([]byte(xmppTLS)); err != nil {
				return err
			}
			if err := p.SendString(answer); err != nil {
				return err
			}
			if thenTLS {
				if err := p.TLS(); err != nil {
					return err
				}
			}
			return p.Hold()
		}
	}
	ldapPeer := func(answers ...[]byte) func(*bytepeer.Conn) error {
		return func(p *bytepeer.Conn) error {
			if err := p.Expect(ldap.StartTLSRequest()); err != nil {
				return err
			}
			for i, a := range answers {
				if i > 0 {
					p.Sleep(30 * time.Millisecond)
				}
				if err := p.Send(a); err != nil {
					return err
				}
			}
			return p.Hold()
		}
	}
	pgLater := func(p *bytepeer.Conn) error {
		if err := p.Expect(postgres.SSLRequest()); err != nil {
			return err
		}
		if err := p.SendString("S"); err != nil {
			return err
		}
		p.Sleep(30 * time.Millisecond)
		if err := p.SendString("R\x00\x00\x00\x08\x00\x00\x00\x00"); err != nil {
			return err
		}
		return p.Hold()
	}
	for _, tc := range []struct {
		protocol string
		name     string
		peer     func(*bytepeer.Conn) error
		flags    []string
		code     int
		kinds    []string
	}{
		{"postgres", "not-offered-N", pgPeer("N"), nil, exitFailed, []string{"not-offered"}},
		{"postgres", "not-offered-N-opportunistic", pgPeer("N"), []string{"-policy", "opportunistic"}, exitPlaintext, nil},
		{"postgres", "refused-error-response", pgPeer("E\x00\x00\x00\x1bSFATAL\x00C08P01\x00Mno TLS\x00\x00"), nil, exitFailed, []string{"refused"}},
		{"postgres", "inject-same-write", pgPeer("SR\x00\x00\x00\x08\x00\x00\x00\x00"), nil, exitFailed, []string{"injected-data"}},
		{"postgres", "inject-later-write", pgLater, nil, exitFailed, []string{"handshake", "injected-data"}},
		{"ldap", "not-offered-protocolError", ldapPeer(ldapResponse(2)), nil, exitFailed, []string{"not-offered"}},
		{"ldap", "refused-unavailable", ldapPeer(ldapResponse(52)), nil, exitFailed, []string{"refused"}},
		{"ldap", "inject-same-write", ldapPeer(ldapResponse(0, 0x30, 0x0c, 0x02, 0x01, 0x02, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00)),
			nil, exitFailed, []string{"injected-data"}},
		{"ldap", "inject-later-write", ldapPeer(ldapResponse(0), []byte{0x30, 0x0c, 0x02, 0x01, 0x02, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00}),
			nil, exitFailed, []string{"handshake", "injected-data"}},
		{"xmpp", "not-offered-stripped", xmpp(xmppStripped, "", false), nil, exitFailed, []string{"not-offered"}},
		{"xmpp", "refused-failure", xmpp(xmppOffer, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", false), nil, exitFailed, []string{"refused"}},
		{"xmpp", "inject-same-write", xmpp(xmppOffer, xmppProceed+"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>", false),
			nil, exitFailed, []string{"injected-data"}},
		{"xmpp", "inject-same-write-partial", xmpp(xmppOffer, xmppProceed+"<", false), nil, exitFailed, []string{"injected-data"}},
		{"xmpp", "inject-proceed-before-starttls", xmpp(xmppOffer+xmppProceed, "", false), nil, exitFailed, []string{"injected-data"}},
		{"xmpp", "not-offered-starttls-wrong-namespace", xmpp(xmppHead+"<stream:features><starttls xmlns='urn:evil'/></stream:features>", "", false),
			nil, exitFailed, []string{"not-offered"}},
		{"xmpp", "greeting-stream-error", xmpp(xmppHead+"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>", "", false),
			nil, exitFailed, []string{"greeting-rejected"}},
		{"xmpp", "refused-stream-error", xmpp(xmppOffer, "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>", false),
			nil, exitFailed, []string{"refused"}},
		{"xmpp", "proceed-wrong-namespace", xmpp(xmppOffer, "<proceed xmlns='urn:evil'/>", false), nil, exitFailed, []string{"protocol"}},
		{"xmpp", "huge-element", xmpp(xmppHead+"<stream:features>"+strings.Repeat("<x>a</x>", 200000)+"</stream:features>", "", false),
			nil, exitFailed, []string{"too-large"}},
		{"ldap", "refused-notice-of-disconnection", ldapPeer(append([]byte{0x30, 0x24, 0x02, 0x01, 0x00, 0x78, 0x1f, 0x0a, 0x01, 0x34, 0x04, 0x00, 0x04, 0x00, 0x8a, 0x16},
			ldap.OIDNoticeOfDisconnection...)), nil, exitFailed, []string{"refused"}},
		{"ldap", "huge-length", ldapPeer([]byte{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff}), nil, exitFailed, []string{"too-large"}},
		{"ldap", "not-offered-opportunistic", ldapPeer(ldapResponse(2)), []string{"-policy", "opportunistic"}, exitPlaintext, nil},
		{"postgres", "huge-error-response", pgPeer("E\x7f\xff\xff\xff"), nil, exitFailed, []string{"too-large"}},
	} {
		t.Run(tc.protocol+"/"+tc.name, func(t *testing.T) {
			addr, peer := bytepeer.Listen(t, tc.peer, &bytepeer.Options{TLSConfig: pki.Server()})
			args := append([]string{"-json", "-protocol", tc.protocol, "-cafile", caFile, "-servername", scripttest.TestName,
				"-timeout", "5s"}, tc.flags...)
			r := runBounded(t, 5*time.Second, append(args, addr)...)
			checkCase(t, redteamCase{code: tc.code, kinds: tc.kinds}, r)
			peer.Wait()
		})
	}
}
