package nntp_test

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tlsup/tlsup/examples/nntp"
	"github.com/tlsup/tlsup/internal/clienttest"
	"github.com/tlsup/tlsup/starttls"
)

var client = clienttest.Client{
	Protocol: "nntp",
	Upgrade: func(ctx context.Context, conn net.Conn, cfg *tls.Config, policy starttls.Policy, mode starttls.Mode, opts *starttls.Options) (*tls.Conn, *starttls.Result, error) {
		return nntp.Upgrade(ctx, conn, &nntp.Options{TLSConfig: cfg, Policy: policy, Mode: mode, Conn: opts})
	},
}

// The dialogue of a well-behaved server, in parts.
const (
	greeting   = "S: 200 news.example.test InterNetNews NNRP server INN 2.7.1 ready (no posting)\n"
	capsBefore = `
		C: CAPABILITIES
		S: 101 Capability list:
		S: VERSION 2
		S: READER
		S: STARTTLS
		S: AUTHINFO SASL
		S: .
	`
	goAhead = `
		C: STARTTLS
		S: 382 Begin TLS negotiation now
		!tls
	`
	capsAfter = `
		C: CAPABILITIES
		S: 101 Capability list:
		S: VERSION 2
		S: READER
		S: AUTHINFO USER SASL
		S: .
	`
	good = greeting + capsBefore + goAhead + capsAfter
)

var (
	before = []string{"VERSION 2", "READER", "STARTTLS", "AUTHINFO SASL"}
	after  = []string{"VERSION 2", "READER", "AUTHINFO USER SASL"}
)

// list is a CAPABILITIES exchange answering lines.
func list(lines ...string) string {
	s := "C: CAPABILITIES\nS: 101 Capability list:\n"
	for _, l := range lines {
		s += "S: " + l + "\n"
	}
	return s + "S: .\n"
}

func TestUpgrade(t *testing.T) {
	clienttest.RunCases(t, client, []clienttest.Case{{
		Name: "required", Script: good, Before: before, After: after,
		Check: func(t *testing.T, res *starttls.Result, err error) {
			assert.Equal(t, "news.example.test InterNetNews NNRP server INN 2.7.1 ready (no posting)", res.Greeting)
			assert.Equal(t, starttls.StartTLS, res.Mode)
		},
	}, {
		Name: "always", Script: good, Policy: starttls.Always, Before: before, After: after,
	}, {
		Name: "opportunistic", Script: good, Policy: starttls.Opportunistic, Before: before, After: after,
	}, {
		Name:   "greeting 201",
		Script: "S: 201 read only\n" + capsBefore + goAhead + capsAfter, After: after,
	}, {
		// RFC 4642, Section 2.2.2: STARTTLS listed again inside TLS is
		// reported as sent; it is not an error.
		Name: "starttls after tls", Script: greeting + capsBefore + goAhead + list("VERSION 2", "STARTTLS"),
		After: []string{"VERSION 2", "STARTTLS"},
	}, {
		Name: "implicit", Mode: starttls.Implicit, Script: "!tls\n" + greeting + capsAfter, After: after,
		Check: func(t *testing.T, res *starttls.Result, err error) {
			assert.Nil(t, res.Before)
			assert.Equal(t, starttls.Implicit, res.Mode)
		},
	}, {
		Name: "dot-stuffed lines", Script: greeting + list("VERSION 2", "..STARTTLS", "STARTTLS") + goAhead + capsAfter,
		Before: []string{"VERSION 2", ".STARTTLS", "STARTTLS"},
	}, {
		Name: "lower case keyword", Script: greeting + list("starttls") + goAhead + capsAfter,
		Before: []string{"starttls"},
	}})
}

func TestStripped(t *testing.T) {
	stripped := greeting + list("VERSION 2", "READER")
	refused := greeting + "C: CAPABILITIES\nS: 500 What?\n"
	cases := []clienttest.Case{{
		// !eof: STARTTLS must not be sent.
		Name: "required", Script: stripped + "!eof", Err: starttls.ErrNotOffered, Step: starttls.StepDiscover,
	}, {
		Name: "always", Script: stripped + goAhead + capsAfter, Policy: starttls.Always, After: after,
	}, {
		Name: "opportunistic", Script: stripped, Policy: starttls.Opportunistic, Plaintext: true,
		Before: []string{"VERSION 2", "READER"},
	}, {
		Name: "capabilities refused, required", Script: refused + "!eof", Err: starttls.ErrNotOffered,
	}, {
		Name: "capabilities refused, always", Script: refused + goAhead + capsAfter, Policy: starttls.Always, After: after,
	}, {
		Name: "capabilities refused, opportunistic", Script: refused, Policy: starttls.Opportunistic, Plaintext: true,
		Check: func(t *testing.T, res *starttls.Result, err error) { assert.Zero(t, res.Before.Len()) },
	}}
	for _, lookalike := range []string{"STARTTLSX", "XSTARTTLS", "XFEATURE STARTTLS", "START TLS", "STARTTLS-2",
		"ſTARTTLS", ".STARTTLS", "IMPLEMENTATION STARTTLS"} {
		line := lookalike
		if strings.HasPrefix(line, ".") {
			line = "." + line // dot-stuffed on the wire
		}
		cases = append(cases, clienttest.Case{
			Name: "look-alike " + lookalike, Script: greeting + list("VERSION 2", line) + "!eof",
			Err: starttls.ErrNotOffered, Step: starttls.StepDiscover,
		})
	}
	clienttest.RunCases(t, client, cases)
}

func TestRefusedAndFake(t *testing.T) {
	cases := []clienttest.Case{{
		Name: "580", Script: greeting + capsBefore + "C: STARTTLS\nS: 580 Can not initiate TLS negotiation\n",
		Err: starttls.ErrRefused, Step: starttls.StepStartTLS,
		Reply: &starttls.ReplyError{Command: "STARTTLS", Code: 580, Text: "Can not initiate TLS negotiation"},
	}, {
		Name: "502", Script: greeting + capsBefore + "C: STARTTLS\nS: 502 Command unavailable\n",
		Err: starttls.ErrRefused, Reply: &starttls.ReplyError{Command: "STARTTLS", Code: 502, Text: "Command unavailable"},
	}, {
		Name: "483 under always", Script: greeting + list("READER") + "C: STARTTLS\nS: 483 Encryption required\n",
		Policy: starttls.Always, Err: starttls.ErrRefused,
	}, {
		Name: "refusal under opportunistic is an error", Policy: starttls.Opportunistic,
		Script: greeting + capsBefore + "C: STARTTLS\nS: 580 no\n", Err: starttls.ErrRefused,
	}, {
		Name: "greeting 400", Script: "S: 400 Service temporarily unavailable\n",
		Err: starttls.ErrGreetingRejected, Step: starttls.StepGreeting,
		Reply: &starttls.ReplyError{Code: 400, Text: "Service temporarily unavailable"},
	}, {
		Name: "greeting 502", Script: "S: 502 Service permanently unavailable\n", Err: starttls.ErrGreetingRejected,
	}}
	for _, fake := range []string{"200 ok", "201 ok", "101 Capability list:", "281 Authentication accepted", "382x", "38 go", "hello", ""} {
		cases = append(cases, clienttest.Case{
			Name: "go-ahead " + fake, Script: greeting + capsBefore + "C: STARTTLS\nS: " + fake + "\n",
			Err: starttls.ErrProtocol, Step: starttls.StepStartTLS,
		})
	}
	for _, g := range []string{"500 What?", "101 list", "100 help", "hello", "2000 ok", "600 ok"} {
		cases = append(cases, clienttest.Case{Name: "greeting " + g, Script: "S: " + g + "\n",
			Err: starttls.ErrProtocol, Step: starttls.StepGreeting})
	}
	for _, c := range []string{"211 group", "382 go"} {
		cases = append(cases, clienttest.Case{Name: "capabilities answered " + c,
			Script: greeting + "C: CAPABILITIES\nS: " + c + "\n", Err: starttls.ErrProtocol, Step: starttls.StepDiscover})
	}
	clienttest.RunCases(t, client, cases)
}

// TestInjection: bytes behind the greeting. Bytes behind the go-ahead, in
// its write or a moment later, are the conformance suite's
// (BufferedInjection, LateInjection).
func TestInjection(t *testing.T) {
	clienttest.RunCases(t, client, []clienttest.Case{{
		Name:   "forged list with the greeting",
		Script: greeting + "S+ 101 Capability list:\nS+ STARTTLS\nS+ .\n",
		Err:    starttls.ErrProtocol, Step: starttls.StepGreeting,
	}})
}

func TestBounds(t *testing.T) {
	clienttest.RunCases(t, client, []clienttest.Case{{
		Name:   "endless list",
		Script: greeting + "C: CAPABILITIES\nS: 101 Capability list:\n" + clienttest.Lines("XFOO", starttls.DefaultMaxResponseLines+1),
		Err:    starttls.ErrTooLarge, Step: starttls.StepDiscover, PeerFails: true,
	}, {
		Name:   "long line",
		Script: greeting + "C: CAPABILITIES\nS: 101 Capability list:\nS: " + strings.Repeat("X", 5000) + "\n",
		Err:    starttls.ErrTooLarge, PeerFails: true,
	}, {
		Name:   "NUL in a line",
		Script: greeting + "C: CAPABILITIES\nS: 101 Capability list:\nS: \"STARTTLS\\x00\\r\\n\"\nS: .\n",
		Err:    starttls.ErrProtocol, Step: starttls.StepDiscover, PeerFails: true,
	}})
}

func TestInterrupted(t *testing.T) {
	t.Run("starttls", func(t *testing.T) { clienttest.Interrupted(t, client, starttls.StartTLS, good) })
	t.Run("implicit", func(t *testing.T) { clienttest.Interrupted(t, client, starttls.Implicit, "!tls\n"+greeting+capsAfter) })
}

// TestRedact: AUTHINFO PASS and SASL are redacted, AUTHINFO USER is not.
// That a session's password never reaches a transcript while the rest of
// the dialogue does is the conformance suite's (SessionAndRedaction, with
// conformance.Auth).
func TestRedact(t *testing.T) {
	u := &nntp.Upgrader{}
	for _, tt := range []struct {
		line string
		keep int
		ok   bool
	}{
		{"AUTHINFO PASS hunter2", len("AUTHINFO PASS"), true},
		{"authinfo pass hunter2", len("authinfo pass"), true},
		{"AUTHINFO SASL PLAIN AGFsaWNlAGh1bnRlcjI=", len("AUTHINFO SASL PLAIN"), true},
		{"AUTHINFO SASL PLAIN", 0, false},
		{"AUTHINFO USER alice", 0, false},
		{"AUTHINFO PASS", 0, false},
		// A password of spaces is hidden too (found by FuzzRedact).
		{"AUTHINFO PASS  ", len("AUTHINFO PASS"), true},
		{"AUTHINFO SASL PLAIN  ", len("AUTHINFO SASL PLAIN"), true},
		{"AUTHINFO PASS  hunter2", len("AUTHINFO PASS"), true},
		// RFC 3977 separates words by spaces or tabs.
		{"AUTHINFO\tPASS\thunter2", len("AUTHINFO\tPASS"), true},
		{"AUTHINFO \t PASS \thunter2", len("AUTHINFO \t PASS"), true},
		{"AUTHINFO\tSASL\tPLAIN\tAGFsaWNl", len("AUTHINFO\tSASL\tPLAIN"), true},
		{"CAPABILITIES", 0, false},
		{"", 0, false},
	} {
		keep, ok := u.Redact([]byte(tt.line))
		assert.Equal(t, tt.ok, ok, "Redact(%q)", tt.line)
		if ok {
			assert.Equal(t, tt.keep, keep, "Redact(%q)", tt.line)
		}
	}
}

func TestUpgraderFacts(t *testing.T) {
	u := &nntp.Upgrader{}
	assert.Equal(t, "nntp", u.Protocol())
	assert.Equal(t, "STARTTLS", u.Keyword())
	assert.Equal(t, 563, u.ImplicitPort())
}
