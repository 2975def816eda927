package ftp

import (
	"context"
	"crypto/tls"
	"net"
	"strings"

	"github.com/tlsup/tlsup/starttls"
)

// ImplicitPort is the port of FTP over implicit TLS ("ftps", a port
// assignment that RFC 4217 does not standardise but servers use).
const ImplicitPort = 990

// maxPreliminary bounds the 120 ("ready in nnn minutes") replies read
// before the greeting proper.
const maxPreliminary = 3

// Upgrader speaks the FTP side of a client upgrade for [starttls.Upgrade]:
// greeting, FEAT and AUTH TLS. The zero value is ready to use and holds no
// state, so nothing learned on one connection reaches another.
type Upgrader struct{}

var (
	_ starttls.Upgrader       = (*Upgrader)(nil)
	_ starttls.ImplicitPorter = (*Upgrader)(nil)
	_ starttls.Redactor       = (*Upgrader)(nil)
	_ starttls.OfferChecker   = (*Upgrader)(nil)
)

// Protocol returns "ftp".
func (u *Upgrader) Protocol() string { return "ftp" }

// Keyword returns "AUTH", the FEAT keyword of the entries that list
// security mechanisms; [Upgrader.Offered] decides whether TLS is one.
func (u *Upgrader) Keyword() string { return "AUTH" }

// ImplicitPort returns 990: with starttls.Auto, TLS starts with the first
// byte there.
func (u *Upgrader) ImplicitPort() int { return ImplicitPort }

// Offered reports whether caps advertise AUTH TLS (RFC 4217, Section 6):
// an entry whose keyword is AUTH and whose mechanisms, separated by spaces
// or semicolons ("AUTH TLS", "AUTH SSL;TLS"), include TLS, ignoring ASCII
// case.
func (u *Upgrader) Offered(caps *starttls.Capabilities) bool {
	for _, entry := range caps.List() {
		keyword, mechanisms, _ := strings.Cut(entry, " ")
		if !starttls.EqualFold(keyword, "AUTH") {
			continue
		}
		for _, m := range strings.FieldsFunc(mechanisms, func(r rune) bool { return r == ' ' || r == ';' }) {
			if starttls.EqualFold(m, "TLS") {
				return true
			}
		}
	}
	return false
}

// Greet reads the greeting (RFC 959, Section 5.4): 220 opens the session,
// after at most three 120 replies ("service ready in nnn minutes"); 421
// and any other 4xx or 5xx refuse it (starttls.ErrGreetingRejected, with a
// *starttls.ReplyError); anything else matches starttls.ErrProtocol, and so
// do bytes sent with the greeting ahead of any command (a forged FEAT
// reply waiting to be read as the answer).
func (u *Upgrader) Greet(ctx context.Context, c *starttls.Conn) (starttls.Greeting, error) {
	var r Reply
	var err error
	for range maxPreliminary + 1 {
		if r, err = ReadReply(c); err != nil || r.Code != 120 {
			break
		}
	}
	if err != nil {
		return starttls.Greeting{}, err
	}
	g := starttls.Greeting{Text: r.Text()}
	switch {
	case r.Code == 220:
	case r.Code >= 400:
		return g, replyError("", r, starttls.ErrGreetingRejected)
	default:
		return g, starttls.NewProtocolError("greeting with code %d: %s", r.Code, r.Text())
	}
	if n := c.Buffered(); n > 0 {
		return g, starttls.NewProtocolError("%d bytes sent with the greeting before any command", n)
	}
	return g, nil
}

// Discover sends FEAT (RFC 2389, Section 3) and returns the feature lines
// of the 211 reply without their leading space, as sent; the first and
// last lines ("211-Features:", "211 End") and lines that do not start with
// a space are not features; a feature holding CR or NUL matches
// starttls.ErrProtocol. A 4xx or 5xx answer (500 or 502 from a server
// without FEAT) is a *starttls.ReplyError matching starttls.ErrRefused,
// which before TLS the core takes as "nothing offered". Any other code
// matches starttls.ErrProtocol; a reply over c's bounds matches
// starttls.ErrTooLarge.
func (u *Upgrader) Discover(ctx context.Context, c *starttls.Conn) (*starttls.Capabilities, error) {
	if err := c.WriteLine("FEAT"); err != nil {
		return nil, err
	}
	r, err := ReadReply(c)
	if err != nil {
		return nil, err
	}
	switch {
	case r.Code == 211:
	case r.Code >= 400:
		return nil, replyError("FEAT", r, starttls.ErrRefused)
	default:
		return nil, unexpected("FEAT", r)
	}
	return features(r)
}

// features returns the feature lines of a 211 FEAT reply: the lines
// between the first and the last that start with a space, without it. A
// feature holding CR or NUL, which could split or cut it downstream,
// matches starttls.ErrProtocol.
func features(r Reply) (*starttls.Capabilities, error) {
	caps := &starttls.Capabilities{}
	if len(r.Lines) < 2 {
		return caps, nil
	}
	for _, line := range r.Lines[1 : len(r.Lines)-1] {
		feature := strings.TrimLeft(line, " ")
		if !strings.HasPrefix(line, " ") || feature == "" {
			continue
		}
		if i := strings.IndexAny(feature, "\r\x00"); i >= 0 {
			return nil, starttls.NewProtocolError("FEAT line \"%s\" holds a control character at offset %d",
				starttls.Escape(feature), i)
		}
		caps.Add(feature)
	}
	return caps, nil
}

// StartTLS sends AUTH TLS and reads the reply (RFC 4217, Section 4): 234 is
// the go-ahead; 431 (unavailable), 504 (not understood), 534 (policy), 530
// and any other 4xx or 5xx are a *starttls.ReplyError matching
// starttls.ErrRefused; anything else (200, 230, 334: not a go-ahead for
// TLS) matches starttls.ErrProtocol. It reads nothing beyond the reply.
func (u *Upgrader) StartTLS(ctx context.Context, c *starttls.Conn) error {
	if err := c.WriteLine("AUTH TLS"); err != nil {
		return err
	}
	r, err := ReadReply(c)
	if err != nil {
		return err
	}
	switch {
	case r.Code == 234:
		return nil
	case r.Code >= 400:
		return replyError("AUTH TLS", r, starttls.ErrRefused)
	}
	return unexpected("AUTH TLS", r)
}

// Redact reports whether line, read or written, carries credentials: the
// argument of USER, PASS or ACCT (RFC 959, Section 4.1.1) is recorded as
// "<redacted>".
func (u *Upgrader) Redact(line []byte) (keep int, ok bool) {
	verb, _, found := strings.Cut(string(line), " ")
	if !found {
		return 0, false
	}
	for _, secret := range []string{"USER", "PASS", "ACCT"} {
		if starttls.EqualFold(verb, secret) {
			return len(verb), true
		}
	}
	return 0, false
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
	// 990 and AUTH TLS elsewhere.
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

// Upgrade secures conn, a fresh FTP control connection: greeting, FEAT,
// AUTH TLS, handshake and a fresh FEAT inside TLS (in Implicit mode:
// handshake, then greeting and FEAT inside TLS). See [starttls.Upgrade] for
// the steps, the context contract and who owns conn: on error it is closed.
// The caller continues on Result.Conn, typically with "PBSZ 0" and
// "PROT P" before any data connection.
//
// Errors are *starttls.Error values matching starttls.ErrNotOffered (no
// AUTH TLS in FEAT, or FEAT refused, under the Required policy),
// starttls.ErrRefused (AUTH TLS answered 4xx or 5xx; a *starttls.ReplyError
// is in the chain), starttls.ErrInjectedData, starttls.ErrGreetingRejected,
// starttls.ErrProtocol, starttls.ErrTooLarge, starttls.ErrHandshake (with
// the crypto/tls error, such as *tls.CertificateVerificationError),
// context.DeadlineExceeded or context.Canceled, or io.ErrUnexpectedEOF.
func Upgrade(ctx context.Context, conn net.Conn, opts *Options) (*tls.Conn, *starttls.Result, error) {
	u, cfg := opts.split()
	return starttls.Upgrade(ctx, conn, u, cfg)
}

// Dial connects to addr ("host:port") and upgrades the connection as
// [Upgrade] does; with Mode Auto, port 990 gets implicit TLS. A failed
// connect is a *starttls.Error at step starttls.StepConnect.
func Dial(ctx context.Context, network, addr string, opts *Options) (*tls.Conn, *starttls.Result, error) {
	u, cfg := opts.split()
	return starttls.Dial(ctx, network, addr, u, cfg)
}
