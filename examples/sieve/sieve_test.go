package sieve_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tlsup/tlsup/examples/sieve"
	"github.com/tlsup/tlsup/internal/clienttest"
	"github.com/tlsup/tlsup/starttls"
)

var client = clienttest.Client{
	Protocol: "sieve",
	Upgrade: func(ctx context.Context, conn net.Conn, cfg *tls.Config, policy starttls.Policy, mode starttls.Mode, opts *starttls.Options) (*tls.Conn, *starttls.Result, error) {
		return sieve.Upgrade(ctx, conn, &sieve.Options{TLSConfig: cfg, Policy: policy, Mode: mode, Conn: opts})
	},
}

// srv returns script lines that send each line as it is, CRLF added:
// quoted, because a script line starting with a double quote is a Go
// string for internal/scripttest.
func srv(lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("S: " + strconv.Quote(l+"\r\n") + "\n")
	}
	return b.String()
}

// The dialogue of a well-behaved server (RFC 5804, Section 2.2), in parts.
var (
	greeting = srv(
		`"IMPLEMENTATION" "Example ManageSieve"`,
		`"SIEVE" "fileinto reject envelope"`,
		`"SASL" ""`,
		`"STARTTLS"`,
		`"VERSION" "1.0"`,
		`OK "ready"`)
	goAhead   = "C: STARTTLS\n" + srv(`OK "Begin TLS negotiation now."`) + "!tls\n"
	capsAfter = srv(
		`"IMPLEMENTATION" "Example ManageSieve"`,
		`"SIEVE" "fileinto reject envelope"`,
		`"SASL" "PLAIN LOGIN"`,
		`"VERSION" "1.0"`,
		`OK "TLS negotiation successful."`)
	good = greeting + goAhead + capsAfter
)

var (
	before = []string{"IMPLEMENTATION Example ManageSieve", "SIEVE fileinto reject envelope", "SASL", "STARTTLS", "VERSION 1.0"}
	after  = []string{"IMPLEMENTATION Example ManageSieve", "SIEVE fileinto reject envelope", "SASL PLAIN LOGIN", "VERSION 1.0"}
)

// caps is a capability response of lines ending in OK.
func caps(lines ...string) string {
	return srv(append(lines, "OK")...)
}

// TestUpgrade: ManageSieve's own dialogue. The core's cases (success in
// each mode, hang-ups, silence, cancel, bounds, certificates, injection
// behind the go-ahead, redaction) are the conformance suite's
// (conformance_test.go).
func TestUpgrade(t *testing.T) {
	clienttest.RunCases(t, client, []clienttest.Case{{
		Name: "greeting text is the IMPLEMENTATION", Script: good, Before: before, After: after,
		Check: func(t *testing.T, res *starttls.Result, err error) {
			assert.Equal(t, "Example ManageSieve", res.Greeting)
		},
	}, {
		Name: "always", Script: good, Policy: starttls.Always, Before: before, After: after,
	}, {
		Name: "opportunistic", Script: good, Policy: starttls.Opportunistic, Before: before, After: after,
	}, {
		// RFC 5804, Section 4: strings are quoted or literals.
		Name: "literals and escapes",
		Script: srv(`"IMPLEMENTATION" {12}`, `Example "x" `, `"SIEVE" {10+}`, `"fileinto"`, `"X\\Y"`, `"STARTTLS"`, "OK") +
			goAhead + capsAfter,
		Before: []string{`IMPLEMENTATION Example "x" `, `SIEVE "fileinto"`, `X\Y`, "STARTTLS"},
	}, {
		Name: "atoms in lower case", Script: srv(`"starttls"`, `ok (WARNINGS) "fine"`) + "C: STARTTLS\n" + srv("ok") +
			"!tls\n" + caps(`"VERSION" "1.0"`),
		After: []string{"VERSION 1.0"},
	}, {
		// The capabilities after TLS are the ones sent after TLS; a
		// STARTTLS there is reported as sent.
		Name: "starttls after tls", Script: greeting + goAhead + caps(`"STARTTLS"`), After: []string{"STARTTLS"},
	}})
}

func TestStripped(t *testing.T) {
	stripped := caps(`"IMPLEMENTATION" "x"`, `"SASL" "PLAIN"`)
	cases := []clienttest.Case{{
		Name: "required", Script: stripped + "!eof", Err: starttls.ErrNotOffered, Step: starttls.StepDiscover,
	}, {
		Name: "always", Script: stripped + goAhead + capsAfter, Policy: starttls.Always, After: after,
	}, {
		Name: "opportunistic", Script: stripped, Policy: starttls.Opportunistic, Plaintext: true,
		Before: []string{"IMPLEMENTATION x", "SASL PLAIN"},
	}, {
		Name: "empty greeting", Script: srv("OK") + "!eof", Err: starttls.ErrNotOffered,
	}}
	for _, lookalike := range []string{`"STARTTLSX"`, `"XSTARTTLS"`, `"ſTARTTLS"`, `"START TLS"`, `"SIEVE" "STARTTLS"`,
		`"IMPLEMENTATION" "STARTTLS"`, `"SASL" "STARTTLS PLAIN"`, `"X" {8}`, `"X-STARTTLS" "1"`} {
		script := caps(`"VERSION" "1.0"`, lookalike)
		if strings.HasSuffix(lookalike, "{8}") {
			// STARTTLS as the bytes of a literal, not as a line.
			script = srv(`"VERSION" "1.0"`, `"X" {10}`, `"STARTTLS"`, "OK")
		}
		tt := clienttest.Case{Name: "look-alike " + lookalike, Script: script + "!eof",
			Err: starttls.ErrNotOffered, Step: starttls.StepDiscover}
		if lookalike == `"START TLS"` {
			// A capability name holds no space.
			tt.Err, tt.Step, tt.PeerFails = starttls.ErrProtocol, starttls.StepGreeting, true
		}
		cases = append(cases, tt)
	}
	clienttest.RunCases(t, client, cases)
}

func TestRefusedAndFake(t *testing.T) {
	cases := []clienttest.Case{{
		Name: "NO", Script: greeting + "C: STARTTLS\n" + srv(`NO "TLS support isn't enabled."`),
		Err: starttls.ErrRefused, Step: starttls.StepStartTLS,
		Reply: &starttls.ReplyError{Command: "STARTTLS", Status: "NO", Text: "TLS support isn't enabled."},
	}, {
		Name: "NO with code", Script: greeting + "C: STARTTLS\n" + srv(`NO (TRYLATER) "busy"`),
		Err: starttls.ErrRefused, Reply: &starttls.ReplyError{Command: "STARTTLS", Status: "NO", Text: "(TRYLATER) busy"},
	}, {
		Name: "BYE", Script: greeting + "C: STARTTLS\n" + srv(`BYE "Too many connections"`),
		Err: starttls.ErrRefused, Reply: &starttls.ReplyError{Command: "STARTTLS", Status: "BYE", Text: "Too many connections"},
	}, {
		Name: "greeting NO", Script: srv(`"IMPLEMENTATION" "x"`, `NO "go away"`),
		Err: starttls.ErrGreetingRejected, Step: starttls.StepGreeting,
		Reply: &starttls.ReplyError{Status: "NO", Text: "go away"},
	}, {
		Name: "greeting BYE", Script: srv(`BYE (REFERRAL "sieve://other.example.test") "moved"`),
		Err:   starttls.ErrGreetingRejected,
		Reply: &starttls.ReplyError{Status: "BYE", Text: `(REFERRAL "sieve://other.example.test") moved`},
	}}
	// Not go-aheads: OK with a response code, capabilities, garbage.
	for _, fake := range []string{`OK (TAG "a1") "done"`, `OK (WARNINGS) "x"`, `OK (SASL "cmVzcA==")`,
		`"STARTTLS"`, `"IMPLEMENTATION" "x"`, "OKAY", "+OK", "* OK", `OK "a" "b"`, `OK (`, `"unterminated`, ""} {
		cases = append(cases, clienttest.Case{
			Name: "go-ahead " + fake, Script: greeting + "C: STARTTLS\n" + srv(fake, "OK"),
			Err: starttls.ErrProtocol, Step: starttls.StepStartTLS, PeerFails: true,
		})
	}
	for _, g := range []string{"hello", "* OK IMAP4rev1", `"IMPLEMENTATION" "x" "y"`, `IMPLEMENTATION "x"`,
		`"" "x"`, `"A\B"`, `"X" {3}x`, `"X" {99999999999}`, `"X" {-1}`, `OK ("x")`, `"a"(`, "\"\x01\" \"y\"", "\"X\" \"a\x00\""} {
		cases = append(cases, clienttest.Case{Name: "greeting " + g, Script: srv(g, "OK"),
			Err: starttls.ErrProtocol, Step: starttls.StepGreeting, PeerFails: true})
	}
	cases = append(cases, clienttest.Case{
		Name: "control character in a value", Script: srv("\"X\" \"a\x01b\"", "OK"),
		Err: starttls.ErrProtocol, Step: starttls.StepGreeting, PeerFails: true,
	}, clienttest.Case{
		Name: "CRLF in a literal value", Script: srv(`"X" {4}`, "a\r\nb", "OK"),
		Err: starttls.ErrProtocol, Step: starttls.StepGreeting, PeerFails: true,
	})
	clienttest.RunCases(t, client, cases)
}

// TestInjection: bytes behind the greeting. Bytes behind the go-ahead, in
// its write or a moment later, are the conformance suite's
// (BufferedInjection, LateInjection).
func TestInjection(t *testing.T) {
	clienttest.RunCases(t, client, []clienttest.Case{{
		Name:   "bytes after the greeting",
		Script: greeting + "S+ \"OK\\r\\n\"\n",
		Err:    starttls.ErrProtocol, Step: starttls.StepGreeting,
	}})
}

func TestBounds(t *testing.T) {
	clienttest.RunCases(t, client, []clienttest.Case{{
		Name: "endless list", Script: strings.Repeat(srv(`"X" "y"`), starttls.DefaultMaxResponseLines+1),
		Err: starttls.ErrTooLarge, Step: starttls.StepGreeting, PeerFails: true,
	}, {
		Name: "endless literals", Script: strings.Repeat(srv(`"X" {1}`, "y"), starttls.DefaultMaxResponseLines/2+1),
		Err: starttls.ErrTooLarge, Step: starttls.StepGreeting, PeerFails: true,
	}, {
		Name: "huge literal", Script: srv(`"IMPLEMENTATION" {100000}`),
		Err: starttls.ErrTooLarge, Step: starttls.StepGreeting,
	}, {
		Name:   "literal cut short",
		Script: srv(`"IMPLEMENTATION" {100}`, "short"),
		Err:    io.ErrUnexpectedEOF, Step: starttls.StepGreeting,
	}})
}

func TestInterrupted(t *testing.T) {
	clienttest.Interrupted(t, client, starttls.StartTLS, good)
}

// TestRedact: which lines carry an AUTHENTICATE initial response, and
// what of them is kept. That it never reaches a transcript is the
// conformance suite's (SessionAndRedaction).
func TestRedact(t *testing.T) {
	u := &sieve.Upgrader{}
	for _, tt := range []struct {
		line string
		keep int
		ok   bool
	}{
		{`AUTHENTICATE "PLAIN" "AGFs"`, len(`AUTHENTICATE "PLAIN"`), true},
		{`authenticate "PLAIN" {12+}`, len(`authenticate "PLAIN"`), true},
		{`AUTHENTICATE PLAIN AGFs`, len(`AUTHENTICATE PLAIN`), true},
		{`AUTHENTICATE "PLAIN"`, 0, false},
		{`AUTHENTICATE "PLA`, 0, false},
		{`AUTHENTICATE `, 0, false},
		{`STARTTLS`, 0, false},
	} {
		keep, ok := u.Redact([]byte(tt.line))
		assert.Equal(t, tt.ok, ok, "Redact(%q)", tt.line)
		if ok {
			assert.Equal(t, tt.keep, keep, "Redact(%q)", tt.line)
		}
	}
	assert.Equal(t, "sieve", u.Protocol())
	assert.Equal(t, "STARTTLS", u.Keyword())
	_, hasImplicit := any(u).(starttls.ImplicitPorter)
	assert.False(t, hasImplicit, "ManageSieve has no implicit-TLS port")
}
