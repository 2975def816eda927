package sieve

import (
	"context"
	"crypto/tls"
	"net"

	"github.com/tlsup/tlsup/starttls"
)

// Upgrader speaks the ManageSieve side of a client upgrade for
// [starttls.Upgrade]: greeting (the capability list), STARTTLS, and the
// capabilities the server sends again after the handshake. The zero value
// is ready to use and holds no state, so nothing learned on one connection
// reaches another.
type Upgrader struct{}

var (
	_ starttls.Upgrader = (*Upgrader)(nil)
	_ starttls.Redactor = (*Upgrader)(nil)
)

// Protocol returns "sieve".
func (u *Upgrader) Protocol() string { return "sieve" }

// Keyword returns "STARTTLS" (RFC 5804, Section 1.7).
func (u *Upgrader) Keyword() string { return "STARTTLS" }

// Greet reads the greeting (RFC 5804, Section 1.7): the capability list,
// ended by OK. Greeting.Text is the IMPLEMENTATION value, escaped, and
// Greeting.Capabilities the list, used only to decide on STARTTLS. A
// greeting ended by NO or BYE is starttls.ErrGreetingRejected with a
// *starttls.ReplyError; anything malformed, and bytes sent after the OK
// ahead of any command, match starttls.ErrProtocol.
//
// Inside TLS (Mode Implicit), Greet also sends CAPABILITY, whose answer
// Discover then reads.
func (u *Upgrader) Greet(ctx context.Context, c *starttls.Conn) (starttls.Greeting, error) {
	r, err := readResponse(c, true)
	if err != nil {
		return starttls.Greeting{}, err
	}
	caps := starttls.NewCapabilities(r.caps...)
	impl, _ := caps.Get("IMPLEMENTATION")
	g := starttls.Greeting{Text: starttls.Escape(impl), Capabilities: caps}
	if r.status != "OK" {
		return g, r.replyError("", starttls.ErrGreetingRejected)
	}
	if n := c.Buffered(); n > 0 {
		return g, starttls.NewProtocolError("%d bytes sent after the greeting before any command", n)
	}
	if c.TLS() != nil {
		// Implicit TLS: no capabilities will come unasked (RFC 5804,
		// Section 2.2 sends them only after STARTTLS), so ask for the
		// ones Discover reads next.
		if err := c.WriteLine("CAPABILITY"); err != nil {
			return g, err
		}
	}
	return g, nil
}

// Discover returns the capability list. Inside TLS it reads the list the
// server sends unasked after the handshake (RFC 5804, Section 2.2) or the
// answer to the CAPABILITY that Greet sent in Mode Implicit; before TLS it
// sends CAPABILITY (Section 2.4) and reads the answer. A list ended by NO
// or BYE is a *starttls.ReplyError matching starttls.ErrRefused; anything
// malformed matches starttls.ErrProtocol, and a list over the bounds
// starttls.ErrTooLarge. A server older than RFC 5804 that sends nothing
// after the handshake leaves Discover waiting until the context ends: the
// RFC requires the list, and asking for it as well would leave a second
// answer unread on a conforming server.
func (u *Upgrader) Discover(ctx context.Context, c *starttls.Conn) (*starttls.Capabilities, error) {
	if c.TLS() == nil {
		if err := c.WriteLine("CAPABILITY"); err != nil {
			return nil, err
		}
	}
	r, err := readResponse(c, true)
	if err != nil {
		return nil, err
	}
	if r.status != "OK" {
		return nil, r.replyError("CAPABILITY", starttls.ErrRefused)
	}
	return starttls.NewCapabilities(r.caps...), nil
}

// StartTLS sends STARTTLS and reads the answer (RFC 5804, Section 2.2): a
// plain OK is the go-ahead; NO, and BYE (the server closes), are a
// *starttls.ReplyError matching starttls.ErrRefused. An OK with a response
// code (no code belongs to the go-ahead: a TAG or a WARNINGS answers some
// other command) and capability lines before the answer match
// starttls.ErrProtocol. It reads nothing beyond the answer.
func (u *Upgrader) StartTLS(ctx context.Context, c *starttls.Conn) error {
	if err := c.WriteLine("STARTTLS"); err != nil {
		return err
	}
	r, err := readResponse(c, false)
	if err != nil {
		return err
	}
	switch {
	case r.status != "OK":
		return r.replyError("STARTTLS", starttls.ErrRefused)
	case r.code != "":
		return starttls.NewProtocolError("STARTTLS answered OK with response code (%s)", starttls.Escape(r.code))
	}
	return nil
}

// Redact reports whether line, read or written, carries credentials:
// AUTHENTICATE with an initial response (RFC 5804, Section 2.1) keeps the
// command and the mechanism, and the rest is recorded as "<redacted>".
func (u *Upgrader) Redact(line []byte) (keep int, ok bool) {
	const verb = "AUTHENTICATE "
	if len(line) <= len(verb) || !starttls.EqualFold(string(line[:len(verb)]), verb) {
		return 0, false
	}
	// The mechanism is a quoted string or an atom; a secret follows it.
	rest := line[len(verb):]
	end := 0
	if rest[0] == '"' {
		end = 1
		for end < len(rest) && rest[end] != '"' {
			end++
		}
		end++
	} else {
		for end < len(rest) && rest[end] != ' ' {
			end++
		}
	}
	if end >= len(rest) {
		return 0, false // no initial response
	}
	return len(verb) + end, true
}

// Options configures [Upgrade] and [Dial]. A nil *Options means the
// defaults: Required policy, STARTTLS, and for Dial a verifying TLS config
// for the dialled host.
type Options struct {
	// TLSConfig is cloned for the handshake. Zero: for Dial, a verifying
	// config for the host part of the address with the system roots; for
	// Upgrade, an error, since a bare conn carries no name to verify.
	TLSConfig *tls.Config
	// Policy is the downgrade policy; zero is starttls.Required.
	Policy starttls.Policy
	// Mode is StartTLS or Implicit; zero (Auto) means STARTTLS, as
	// ManageSieve has no implicit-TLS port.
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

// Upgrade upgrades conn, a fresh ManageSieve connection, to TLS: greeting,
// STARTTLS, handshake, and the capabilities the server sends again inside
// TLS. See [starttls.Upgrade] for the steps, the context contract and who
// owns conn: on error it is closed.
//
// Errors are *starttls.Error values matching starttls.ErrNotOffered
// (STARTTLS not in the greeting, under the Required policy),
// starttls.ErrRefused (STARTTLS answered NO or BYE; a *starttls.ReplyError
// is in the chain), starttls.ErrInjectedData, starttls.ErrGreetingRejected,
// starttls.ErrProtocol, starttls.ErrTooLarge, starttls.ErrHandshake (with
// the crypto/tls error, such as *tls.CertificateVerificationError),
// context.DeadlineExceeded or context.Canceled, or io.ErrUnexpectedEOF.
func Upgrade(ctx context.Context, conn net.Conn, opts *Options) (*tls.Conn, *starttls.Result, error) {
	u, cfg := opts.split()
	return starttls.Upgrade(ctx, conn, u, cfg)
}

// Dial connects to addr ("host:port", usually port 4190) and upgrades the
// connection as [Upgrade] does. A failed connect is a *starttls.Error at
// step starttls.StepConnect.
func Dial(ctx context.Context, network, addr string, opts *Options) (*tls.Conn, *starttls.Result, error) {
	u, cfg := opts.split()
	return starttls.Dial(ctx, network, addr, u, cfg)
}
