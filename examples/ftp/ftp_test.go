package ftp_test

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tlsup/tlsup/examples/ftp"
	"github.com/tlsup/tlsup/internal/clienttest"
	"github.com/tlsup/tlsup/starttls"
)

var client = clienttest.Client{
	Protocol: "ftp",
	Upgrade: func(ctx context.Context, conn net.Conn, cfg *tls.Config, policy starttls.Policy, mode starttls.Mode, opts *starttls.Options) (*tls.Conn, *starttls.Result, error) {
		return ftp.Upgrade(ctx, conn, &ftp.Options{TLSConfig: cfg, Policy: policy, Mode: mode, Conn: opts})
	},
}

// The dialogue of a well-behaved server, in parts.
const (
	greeting   = "S: 220 (vsFTPd 3.0.3)\n"
	featBefore = `
		C: FEAT
		S: 211-Features:
		S: " AUTH SSL\r\n"
		S: " AUTH TLS\r\n"
		S: " PBSZ\r\n"
		S: " PROT\r\n"
		S: " UTF8\r\n"
		S: 211 End
	`
	goAhead = `
		C: AUTH TLS
		S: 234 Proceed with negotiation.
		!tls
	`
	featAfter = `
		C: FEAT
		S: 211-Features:
		S: " PBSZ\r\n"
		S: " PROT\r\n"
		S: " UTF8\r\n"
		S: " REST STREAM\r\n"
		S: 211 End
	`
	good = greeting + featBefore + goAhead + featAfter
)

var (
	before = []string{"AUTH SSL", "AUTH TLS", "PBSZ", "PROT", "UTF8"}
	after  = []string{"PBSZ", "PROT", "UTF8", "REST STREAM"}
)

// feat is a FEAT exchange listing features.
func feat(features ...string) string {
	s := "C: FEAT\nS: 211-Features:\n"
	for _, f := range features {
		s += "S: \" " + f + "\\r\\n\"\n"
	}
	return s + "S: 211 End\n"
}

func TestUpgrade(t *testing.T) {
	clienttest.RunCases(t, client, []clienttest.Case{{
		Name: "required", Script: good, Before: before, After: after,
		Check: func(t *testing.T, res *starttls.Result, err error) {
			assert.Equal(t, "(vsFTPd 3.0.3)", res.Greeting)
		},
	}, {
		Name: "always", Script: good, Policy: starttls.Always, Before: before, After: after,
	}, {
		Name: "opportunistic", Script: good, Policy: starttls.Opportunistic, Before: before, After: after,
	}, {
		Name: "multi-line greeting", Script: "S: 220-Welcome\nS: to the example server\nS: 220-more\nS: 220 ready\n" +
			featBefore + goAhead + featAfter, After: after,
		Check: func(t *testing.T, res *starttls.Result, err error) { assert.Equal(t, "Welcome", res.Greeting) },
	}, {
		Name: "120 then 220", Script: "S: 120 ready in 1 minute\nS: 220 ready\n" + featBefore + goAhead + featAfter,
	}, {
		Name: "mechanisms in one entry", Script: greeting + feat("AUTH SSL;TLS") + goAhead + featAfter,
		Before: []string{"AUTH SSL;TLS"},
	}, {
		Name: "lower case", Script: greeting + feat("auth tls") + goAhead + featAfter, Before: []string{"auth tls"},
	}, {
		Name: "auth tls after tls", Script: greeting + featBefore + goAhead + feat("AUTH TLS", "PBSZ"),
		After: []string{"AUTH TLS", "PBSZ"},
	}, {
		Name: "implicit", Mode: starttls.Implicit, Script: "!tls\n" + greeting + featAfter, After: after,
		Check: func(t *testing.T, res *starttls.Result, err error) { assert.Nil(t, res.Before) },
	}, {
		Name:   "single-line feat",
		Script: greeting + "C: FEAT\nS: 211 no features\n" + goAhead + featAfter, Policy: starttls.Always,
		Check: func(t *testing.T, res *starttls.Result, err error) { assert.Zero(t, res.Before.Len()) },
	}})
}

func TestStripped(t *testing.T) {
	stripped := greeting + feat("PBSZ", "PROT")
	cases := []clienttest.Case{{
		Name: "required", Script: stripped + "!eof", Err: starttls.ErrNotOffered, Step: starttls.StepDiscover,
	}, {
		Name: "always", Script: stripped + goAhead + featAfter, Policy: starttls.Always, After: after,
	}, {
		Name: "opportunistic", Script: stripped, Policy: starttls.Opportunistic, Plaintext: true,
		Before: []string{"PBSZ", "PROT"},
	}}
	// RFC 2389, Section 3: a server without FEAT answers 500 or 502; then
	// only Always sends AUTH TLS.
	for _, code := range []string{"500 Unknown command.", "502 Command not implemented."} {
		noFeat := greeting + "C: FEAT\nS: " + code + "\n"
		cases = append(cases, clienttest.Case{
			Name: code + " required", Script: noFeat + "!eof", Err: starttls.ErrNotOffered,
		}, clienttest.Case{
			Name: code + " always", Script: noFeat + goAhead + featAfter, Policy: starttls.Always, After: after,
		}, clienttest.Case{
			Name: code + " opportunistic", Script: noFeat, Policy: starttls.Opportunistic, Plaintext: true,
		})
	}
	for _, lookalike := range []string{"AUTH SSL", "AUTH TLSX", "AUTH XTLS", "XAUTH TLS", "AUTHTLS", "AUTH-TLS",
		"AUTH", "AUTH ſSL", "MLST AUTH TLS", "PROT TLS", "AUTH TLS-C", "AUTH TLS-P"} {
		cases = append(cases, clienttest.Case{
			Name: "look-alike " + lookalike, Script: greeting + feat("PBSZ", lookalike) + "!eof",
			Err: starttls.ErrNotOffered, Step: starttls.StepDiscover,
		})
	}
	cases = append(cases, clienttest.Case{
		// A feature line must start with a space (RFC 2389, Section 3.2).
		Name: "feature line without its space", Script: greeting + "C: FEAT\nS: 211-Features:\nS: AUTH TLS\nS: 211 End\n!eof",
		Err: starttls.ErrNotOffered,
	}, clienttest.Case{
		// The first line's text is not a feature.
		Name: "auth tls on the first line", Script: greeting + "C: FEAT\nS: 211-AUTH TLS\nS: \" PBSZ\\r\\n\"\nS: 211 End\n!eof",
		Err: starttls.ErrNotOffered,
	})
	clienttest.RunCases(t, client, cases)
}

func TestRefusedAndFake(t *testing.T) {
	var cases []clienttest.Case
	for _, refusal := range []string{"431 Need some unavailable resource to process security.",
		"504 Unknown AUTH type.", "534 Request denied for policy reasons.", "530 Please login with USER and PASS.",
		"421 Service not available", "500 AUTH not understood"} {
		code := refusal[:3]
		cases = append(cases, clienttest.Case{
			Name: "refused " + code, Script: greeting + featBefore + "C: AUTH TLS\nS: " + refusal + "\n",
			Err: starttls.ErrRefused, Step: starttls.StepStartTLS,
			Reply: &starttls.ReplyError{Command: "AUTH TLS", Code: mustAtoi(code), Text: refusal[4:]},
		})
	}
	for _, fake := range []string{"200 OK", "230 Login successful.", "334 ADAT=", "220 ready", "211 End", "234x", "23 go", "hello"} {
		cases = append(cases, clienttest.Case{
			Name: "go-ahead " + fake, Script: greeting + featBefore + "C: AUTH TLS\nS: " + fake + "\n",
			Err: starttls.ErrProtocol, Step: starttls.StepStartTLS,
		})
	}
	for _, g := range []string{"421 Service not available, closing control connection.", "530 Not allowed", "554 no"} {
		cases = append(cases, clienttest.Case{Name: "greeting " + g[:3], Script: "S: " + g + "\n",
			Err: starttls.ErrGreetingRejected, Step: starttls.StepGreeting,
			Reply: &starttls.ReplyError{Code: mustAtoi(g[:3]), Text: g[4:]}})
	}
	for _, g := range []string{"200 ok", "230 logged in", "hello", "2200 ok", "600 ok"} {
		cases = append(cases, clienttest.Case{Name: "greeting " + g, Script: "S: " + g + "\n",
			Err: starttls.ErrProtocol, Step: starttls.StepGreeting})
	}
	cases = append(cases, clienttest.Case{
		Name: "120 for ever", Script: clienttest.Lines("120 soon", 4), Err: starttls.ErrProtocol, Step: starttls.StepGreeting,
		PeerFails: true,
	}, clienttest.Case{
		Name: "feat answered 200", Script: greeting + "C: FEAT\nS: 200 ok\n", Err: starttls.ErrProtocol, Step: starttls.StepDiscover,
	})
	clienttest.RunCases(t, client, cases)
}

func mustAtoi(s string) int {
	n := 0
	for _, d := range s {
		n = n*10 + int(d-'0')
	}
	return n
}

// TestInjection: bytes behind the greeting. Bytes behind the go-ahead, in
// its write or a moment later, are the conformance suite's
// (BufferedInjection, LateInjection).
func TestInjection(t *testing.T) {
	clienttest.RunCases(t, client, []clienttest.Case{{
		Name:   "forged feat with the greeting",
		Script: greeting + "S+ 211-Features:\nS+ \" AUTH TLS\\r\\n\"\nS+ 211 End\n",
		Err:    starttls.ErrProtocol, Step: starttls.StepGreeting,
	}})
}

func TestBounds(t *testing.T) {
	clienttest.RunCases(t, client, []clienttest.Case{{
		Name:   "endless feat",
		Script: greeting + "C: FEAT\nS: 211-Features:\n" + clienttest.Lines("\" XFOO\\r\\n\"", starttls.DefaultMaxResponseLines+1),
		Err:    starttls.ErrTooLarge, Step: starttls.StepDiscover, PeerFails: true,
	}, {
		Name:   "endless greeting",
		Script: "S: 220-hello\n" + clienttest.Lines("more", starttls.DefaultMaxResponseLines+1),
		Err:    starttls.ErrTooLarge, Step: starttls.StepGreeting, PeerFails: true,
	}, {
		Name:   "long line",
		Script: greeting + "C: FEAT\nS: 211-Features:\nS: " + strings.Repeat("X", 5000) + "\n",
		Err:    starttls.ErrTooLarge, PeerFails: true,
	}})
}

func TestInterrupted(t *testing.T) {
	t.Run("starttls", func(t *testing.T) { clienttest.Interrupted(t, client, starttls.StartTLS, good) })
	t.Run("implicit", func(t *testing.T) { clienttest.Interrupted(t, client, starttls.Implicit, "!tls\n"+greeting+featAfter) })
}

// TestRedact: USER, PASS and ACCT arguments are redacted. That they never
// reach a transcript in a session is the conformance suite's
// (SessionAndRedaction, with conformance.Auth).
func TestRedact(t *testing.T) {
	u := &ftp.Upgrader{}
	for _, tt := range []struct {
		line string
		keep int
		ok   bool
	}{
		{"USER alice", 4, true}, {"pass hunter2", 4, true}, {"ACCT x", 4, true},
		{"PASS", 0, false}, {"FEAT", 0, false}, {"USERS x", 0, false}, {"", 0, false},
	} {
		keep, ok := u.Redact([]byte(tt.line))
		assert.Equal(t, tt.ok, ok, "Redact(%q)", tt.line)
		if ok {
			assert.Equal(t, tt.keep, keep, "Redact(%q)", tt.line)
		}
	}
}

func TestOffered(t *testing.T) {
	u := &ftp.Upgrader{}
	for _, tt := range []struct {
		entries []string
		want    bool
	}{
		{[]string{"AUTH TLS"}, true},
		{[]string{"AUTH SSL", "AUTH TLS"}, true},
		{[]string{"AUTH SSL;TLS"}, true},
		{[]string{"AUTH TLS-C;SSL;TLS"}, true},
		{[]string{"auth tls"}, true},
		{[]string{"AUTH SSL"}, false},
		{[]string{"AUTH TLSX"}, false},
		{[]string{"XAUTH TLS"}, false},
		{[]string{"AUTH"}, false},
		{nil, false},
	} {
		assert.Equal(t, tt.want, u.Offered(starttls.NewCapabilities(tt.entries...)), "Offered(%q)", tt.entries)
	}
	assert.Equal(t, "ftp", u.Protocol())
	assert.Equal(t, "AUTH", u.Keyword())
	assert.Equal(t, 990, u.ImplicitPort())
}
