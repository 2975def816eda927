// Package clienttest is the conformance suite of the client side: the
// behaviour the core owns (cancel, hang-up and silence at each step, the
// deadline against a trickling peer, certificate faults, configuration
// errors, modes, Dial, injection, the pre-cancelled context, redaction in
// transcripts), tested once and run by every protocol package with its own
// script fragments, as internal/servertest does for the server fronts.
//
// A protocol describes its dialogue in a [Protocol]; [Run] plays every case
// against the protocol's Upgrade and Dial through scripttest peers. Each
// protocol package keeps only the cases that are its own (its grammar, its
// refusals, its stripping variants).
//
// Every wait is bounded; no helper calls t.Fatal off the test goroutine.
package clienttest

import (
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/tlsup/tlsup/starttls"
)

// UpgradeFunc is a protocol package's Upgrade with cfg's fields mapped to
// its options.
type UpgradeFunc func(ctx context.Context, conn net.Conn, cfg *starttls.Config) (*tls.Conn, *starttls.Result, error)

// DialFunc is a protocol package's Dial with cfg's fields mapped to its
// options.
type DialFunc func(ctx context.Context, network, addr string, cfg *starttls.Config) (*tls.Conn, *starttls.Result, error)

// Protocol is what the suite knows of one protocol: its entry points and
// the fragments of a well-behaved server's dialogue, in scripttest syntax
// with the server as the peer ("S:" lines sent, "C:" lines expected).
// Fragments are joined in dialogue order into one script, so a placeholder
// remembered in one fragment (an IMAP tag, "C: {t} CAPABILITY" in Ask) may
// be used by the fragments after it ("S: {t} OK done" in Offer).
type Protocol struct {
	// Name is the protocol name in errors and results ("smtp").
	Name string
	// ImplicitPort is the port Mode Auto takes for implicit TLS; 0 for
	// none.
	ImplicitPort int
	// ImplicitService is ImplicitPort's service name ("submissions"), in
	// Go's own service table so that it resolves on any machine.
	ImplicitService string
	// Service is the name of the protocol's STARTTLS port ("smtp"), also
	// in Go's own service table.
	Service string
	// Upgrade is the package's Upgrade.
	Upgrade UpgradeFunc
	// Dial is the package's Dial.
	Dial DialFunc

	// Greeting is the server's greeting; its first line is also used,
	// raw, for the partial, trickled and oversized greetings.
	Greeting string
	// Ask is the client's capability request, one "C:" line, before TLS
	// and inside it (with Unasked, in Mode Implicit only).
	Ask string
	// Unasked: the client asks nothing around STARTTLS. The greeting
	// carries the capabilities (advertising the upgrade) and the server
	// sends them again unasked once TLS is on, as ManageSieve does (RFC
	// 5804, Sections 1.7 and 2.2); only in Mode Implicit, where nothing
	// comes unasked, does the client send Ask after the greeting. There
	// is then no discovery wait before TLS, and the rediscovery wait
	// follows the handshake with no client line.
	Unasked bool
	// Offer answers Ask before TLS, advertising the upgrade; empty with
	// Unasked.
	Offer string
	// StartTLS is the client's upgrade command, one "C:" line.
	StartTLS string
	// GoAhead is the server's go-ahead, without the "!tls" after it.
	GoAhead string
	// After answers Ask inside TLS (with Unasked, follows the handshake
	// unasked).
	After string
	// AfterList is what After parses to: the Result.After list wanted.
	AfterList []string
	// Forged is a line a man in the middle would inject behind the
	// go-ahead (a forged capability line), as sent, without "S: ".
	Forged string
	// Auth are lines the client sends inside TLS that carry a secret,
	// each with the server's answer and how the transcript must record
	// it.
	Auth []Credential
}

// Credential is one line that carries a secret.
type Credential struct {
	// Line is the client's line, as sent; Reply the server's one-line
	// answer.
	Line, Reply string
	// Secret is the part that must never reach a transcript ("" for a
	// line that carries none, recorded as it is); Recorded the
	// line the transcript holds instead, without "C: " (the mechanism or
	// verb shown, "AUTH PLAIN <redacted>").
	Secret, Recorded string
}

// Run runs every case of the suite against p, each as a subtest.
func Run(t *testing.T, p Protocol) {
	t.Helper()
	for _, c := range []struct {
		name string
		run  func(*testing.T, Protocol)
	}{
		{"Success", Success},
		{"Trickle", Trickle},
		{"HangUp", HangUp},
		{"Silence", Silence},
		{"Cancel", Cancel},
		{"PreCancelled", PreCancelled},
		{"Deadline", Deadline},
		{"TooLarge", TooLarge},
		{"Config", Config},
		{"CertificateFaults", CertificateFaults},
		{"Modes", Modes},
		{"Dial", Dial},
		{"BufferedInjection", BufferedInjection},
		{"LateInjection", LateInjection},
		{"SessionAndRedaction", SessionAndRedaction},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, p) })
	}
}

// step is a point of the dialogue at which the client waits for the
// server.
type step struct {
	name string
	step starttls.Step
	// script brings the client to the wait: it has just sent its command
	// (or, for the greeting, nothing).
	script string
	// clientLines is how many lines the client has written by then.
	clientLines int
	tls         bool // inside TLS
	// afterHandshake: the client has written nothing since the
	// handshake, which began the wait (rediscovery, Unasked).
	afterHandshake bool
}

// steps returns the waits of a STARTTLS upgrade, in order. The handshake
// wait comes after the go-ahead; the peer's "!tls" is the caller's to add.
func (p Protocol) steps() []step {
	if p.Unasked {
		// No discovery wait: the greeting was it.
		return []step{
			{"greeting", starttls.StepGreeting, "", 0, false, false},
			{"starttls", starttls.StepStartTLS, p.toStartTLS(), 1, false, false},
			{"handshake", starttls.StepHandshake, p.toGoAhead(), 1, false, false},
			{"rediscover", starttls.StepRediscover, join(p.toGoAhead(), "!tls"), 1, true, true},
		}
	}
	return []step{
		{"greeting", starttls.StepGreeting, "", 0, false, false},
		{"discover", starttls.StepDiscover, join(p.Greeting, p.Ask), 1, false, false},
		{"starttls", starttls.StepStartTLS, p.toStartTLS(), 2, false, false},
		{"handshake", starttls.StepHandshake, p.toGoAhead(), 2, false, false},
		{"rediscover", starttls.StepRediscover, join(p.toGoAhead(), "!tls", p.Ask), 3, true, false},
	}
}

// ask is the client's capability request around STARTTLS, none with
// Unasked.
func (p Protocol) ask() string {
	if p.Unasked {
		return ""
	}
	return p.Ask
}

// toStartTLS is the dialogue up to the upgrade command.
func (p Protocol) toStartTLS() string {
	return join(p.Greeting, p.ask(), p.Offer, p.StartTLS)
}

// toGoAhead is the dialogue up to the go-ahead.
func (p Protocol) toGoAhead() string {
	return join(p.toStartTLS(), p.GoAhead)
}

// full is a whole successful STARTTLS dialogue.
func (p Protocol) full() string {
	return join(p.toGoAhead(), "!tls", p.ask(), p.After)
}

// greetingText is the first greeting line's text, as sent: unquoted and
// without its CRLF when the script line is a Go-quoted string (a line
// that starts with a double quote, as ManageSieve's do, must be).
func (p Protocol) greetingText() string {
	for _, line := range strings.Split(p.Greeting, "\n") {
		if text, ok := strings.CutPrefix(strings.TrimSpace(line), "S: "); ok {
			if unquoted, err := strconv.Unquote(text); err == nil && strings.HasPrefix(text, `"`) {
				return strings.TrimSuffix(unquoted, "\r\n")
			}
			return text
		}
	}
	return ""
}

// oneWrite returns the script fragment with all its server lines sent in
// one write, so that a client that closes at once cannot make the peer's
// later writes of a multi-line greeting (ManageSieve's) fail.
func oneWrite(fragment string) string {
	var b strings.Builder
	first := true
	for _, line := range strings.Split(fragment, "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "S: "); ok {
			if !first {
				line = "S+ " + rest
			}
			first = false
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// raw is a script line that sends s as it is, no line end added.
func raw(s string) string {
	return "S: " + strconv.Quote(s)
}

func join(parts ...string) string {
	return strings.Join(parts, "\n") + "\n"
}
