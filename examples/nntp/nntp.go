package nntp

import (
	"context"
	"crypto/tls"
	"net"

	"github.com/tlsup/tlsup/starttls"
)

// ImplicitPort is the port of NNTP over implicit TLS (RFC 4642, Section 1;
// RFC 8143, Section 3).
const ImplicitPort = 563

// Upgrader speaks the NNTP side of a client upgrade for [starttls.Upgrade]:
// greeting, CAPABILITIES and STARTTLS. The zero value is ready to use and
// holds no state, so nothing learned on one connection reaches another.
type Upgrader struct{}

var (
	_ starttls.Upgrader       = (*Upgrader)(nil)
	_ starttls.ImplicitPorter = (*Upgrader)(nil)
	_ starttls.Redactor       = (*Upgrader)(nil)
)

// Protocol returns "nntp".
func (u *Upgrader) Protocol() string { return "nntp" }

// Keyword returns "STARTTLS", the capability that advertises the upgrade
// (RFC 4642, Section 2.1).
func (u *Upgrader) Keyword() string { return "STARTTLS" }

// ImplicitPort returns 563: with starttls.Auto, TLS starts with the first
// byte there.
func (u *Upgrader) ImplicitPort() int { return ImplicitPort }

// Greet reads the greeting (RFC 3977, Section 5.1): 200 (posting allowed)
// and 201 (posting prohibited) open the session; 400 and 502 refuse it
// (starttls.ErrGreetingRejected, with a *starttls.ReplyError); anything
// else matches starttls.ErrProtocol, and so do bytes sent with the greeting
// ahead of any command (a forged capability list waiting to be read as the
// answer to CAPABILITIES).
func (u *Upgrader) Greet(ctx context.Context, c *starttls.Conn) (starttls.Greeting, error) {
	code, text, err := readStatus(c)
	if err != nil {
		return starttls.Greeting{}, err
	}
	g := starttls.Greeting{Text: starttls.Escape(text)}
	switch code {
	case 200, 201:
	case 400, 502:
		return g, replyError("", code, text, starttls.ErrGreetingRejected)
	default:
		return g, starttls.NewProtocolError("greeting with code %d: %s", code, starttls.Escape(text))
	}
	if n := c.Buffered(); n > 0 {
		return g, starttls.NewProtocolError("%d bytes sent with the greeting before any command", n)
	}
	return g, nil
}

// Discover sends CAPABILITIES (RFC 3977, Section 5.2) and returns the lines
// of the 101 list, dot-unstuffed, empty lines skipped. A 4xx or 5xx answer
// (500 from a server older than RFC 3977) is a *starttls.ReplyError
// matching starttls.ErrRefused, which before TLS the core takes as "nothing
// offered". Any other code, or a line holding CR or NUL, matches
// starttls.ErrProtocol; a list over c's line or line-count bounds matches
// starttls.ErrTooLarge.
func (u *Upgrader) Discover(ctx context.Context, c *starttls.Conn) (*starttls.Capabilities, error) {
	if err := c.WriteLine("CAPABILITIES"); err != nil {
		return nil, err
	}
	code, text, err := readStatus(c)
	if err != nil {
		return nil, err
	}
	switch {
	case code == 101:
	case code >= 400:
		return nil, replyError("CAPABILITIES", code, text, starttls.ErrRefused)
	default:
		return nil, starttls.NewProtocolError("unexpected reply to CAPABILITIES: %d %s", code, starttls.Escape(text))
	}
	lines, err := readList(c)
	if err != nil {
		return nil, err
	}
	return starttls.NewCapabilities(lines...), nil
}

// StartTLS sends STARTTLS and reads the reply (RFC 4642, Section 2.2.1):
// 382 is the go-ahead; 580 (TLS failed to start), 502 (not allowed now) and
// any other 4xx or 5xx are a *starttls.ReplyError matching
// starttls.ErrRefused; anything else, a 200 among them, matches
// starttls.ErrProtocol. It reads nothing beyond the reply line.
func (u *Upgrader) StartTLS(ctx context.Context, c *starttls.Conn) error {
	if err := c.WriteLine("STARTTLS"); err != nil {
		return err
	}
	code, text, err := readStatus(c)
	if err != nil {
		return err
	}
	switch {
	case code == 382:
		return nil
	case code >= 400:
		return replyError("STARTTLS", code, text, starttls.ErrRefused)
	}
	return starttls.NewProtocolError("unexpected reply to STARTTLS: %d %s", code, starttls.Escape(text))
}

// Redact reports whether line, read or written, carries credentials:
// AUTHINFO PASS (RFC 4643, Section 2.3) and AUTHINFO SASL with an initial
// response (Section 2.4). keep covers the command words and the SASL
// mechanism; the rest is recorded as "<redacted>".
func (u *Upgrader) Redact(line []byte) (keep int, ok bool) {
	words := fields(line, 3)
	if len(words) < 2 || !starttls.EqualFold(string(line[words[0][0]:words[0][1]]), "AUTHINFO") {
		return 0, false
	}
	// Whatever follows the command words (and the mechanism) is the
	// secret, even when it is only spaces: a password of spaces is still
	// a password.
	switch sub := string(line[words[1][0]:words[1][1]]); {
	case starttls.EqualFold(sub, "PASS") && words[1][1] < len(line):
		return words[1][1], true
	case starttls.EqualFold(sub, "SASL") && len(words) == 3 && words[2][1] < len(line):
		return words[2][1], true
	}
	return 0, false
}

// fields returns the start and end of up to n words of line, separated by
// spaces and tabs (RFC 3977, Section 3.1: "one or more space or TAB
// characters").
func fields(line []byte, n int) [][2]int {
	blank := func(b byte) bool { return b == ' ' || b == '\t' }
	var out [][2]int
	i := 0
	for len(out) < n {
		for i < len(line) && blank(line[i]) {
			i++
		}
		if i == len(line) {
			break
		}
		start := i
		for i < len(line) && !blank(line[i]) {
			i++
		}
		out = append(out, [2]int{start, i})
	}
	return out
}

// Options configures [Upgrade] and [Dial]. A nil *Options means the
// defaults: Required policy, Auto mode, and for Dial a verifying TLS config
// for the dialled host.
type Options struct {
	// TLSConfig is cloned for the handshake. Zero: for Dial, a verifying
	// config for the host part of the address with the system roots; for
	// Upgrade, an error, since a bare conn carries no name to verify.
	TLSConfig *tls.Config
	// Policy is the downgrade policy; zero is starttls.Required.
	Policy starttls.Policy
	// Mode is StartTLS or Implicit; zero (Auto) means implicit TLS on port
	// 563 and STARTTLS elsewhere.
	Mode starttls.Mode
	// Conn sets the line bounds and the transcript; nil means the
	// defaults.
	Conn *starttls.Options
}

func (o *Options) split() (*Upgrader, *starttls.Config) {
	if o == nil {
		o = &Options{}
	}
	return &Upgrader{}, &starttls.Config{TLSConfig: o.TLSConfig, Policy: o.Policy, Mode: o.Mode, Conn: o.Conn}
}

// Upgrade upgrades conn, a fresh NNTP connection, to TLS: greeting,
// CAPABILITIES, STARTTLS, handshake and a fresh CAPABILITIES inside TLS (in
// Implicit mode: handshake, then greeting and CAPABILITIES inside TLS). See
// [starttls.Upgrade] for the steps, the context contract and who owns conn:
// on error it is closed.
//
// Errors are *starttls.Error values matching starttls.ErrNotOffered
// (STARTTLS not listed, or CAPABILITIES refused, under the Required
// policy), starttls.ErrRefused (STARTTLS answered 580 or 502; a
// *starttls.ReplyError is in the chain), starttls.ErrInjectedData,
// starttls.ErrGreetingRejected, starttls.ErrProtocol, starttls.ErrTooLarge,
// starttls.ErrHandshake (with the crypto/tls error, such as
// *tls.CertificateVerificationError), context.DeadlineExceeded or
// context.Canceled, or io.ErrUnexpectedEOF.
func Upgrade(ctx context.Context, conn net.Conn, opts *Options) (*tls.Conn, *starttls.Result, error) {
	u, cfg := opts.split()
	return starttls.Upgrade(ctx, conn, u, cfg)
}

// Dial connects to addr ("host:port") and upgrades the connection as
// [Upgrade] does; with Mode Auto, port 563 gets implicit TLS. A failed
// connect is a *starttls.Error at step starttls.StepConnect.
func Dial(ctx context.Context, network, addr string, opts *Options) (*tls.Conn, *starttls.Result, error) {
	u, cfg := opts.split()
	return starttls.Dial(ctx, network, addr, u, cfg)
}
