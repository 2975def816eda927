// Package xmpp upgrades an XMPP client-to-server stream to TLS with
// STARTTLS (RFC 6120, Section 5), on top of github.com/tlsup/tlsup/starttls,
// as a third party would write it: nothing in the core knows XMPP. Port
// 5222 upgrades with STARTTLS; port 5223 starts TLS with the first byte
// (XEP-0368, direct TLS), and the core's Auto mode picks it through
// [Upgrader.ImplicitPort].
//
// The client opens the stream to the domain (Section 4.2), reads the
// server's stream header and <stream:features> (Section 4.3.2), sends
// <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/> when it is offered
// (or under the Always policy), and reads the answer (Section 5.4.2):
// <proceed/> is the go-ahead, <failure/> a refusal (starttls.ErrRefused), a
// stream error a refusal too (the server closing, Section 4.9), anything
// else starttls.ErrProtocol. After the handshake the stream is restarted
// (Section 5.4.3.3) and the features are read again: they are
// Result.After, and nothing of the plaintext features survives.
//
// # Security
//
// The server's XML is read by encoding/xml in strict mode over a reader
// that takes one byte at a time from the starttls.Conn: no DTD is
// processed (a DOCTYPE, where entity declarations live, is
// starttls.ErrProtocol, so there is no entity expansion beyond the five
// predefined entities), nor comments or processing instructions (restricted
// XML, Section 11.1); every top-level element is bounded in bytes and in
// depth (starttls.ErrTooLarge); and nothing is read behind the '>' of
// <proceed/>: bytes an attacker appends to it stay in the Conn's buffer,
// where the core refuses the switch (starttls.ErrInjectedData), and bytes
// a moment later fail the handshake (starttls.ErrHandshake). Only a
// <proceed/> in the TLS namespace is a go-ahead; a <starttls/> feature in
// another namespace is not an offer. No SASL exchange is ever started
// before TLS: authenticate on the stream the upgrade returns.
package xmpp

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"

	"golang.org/x/net/idna"

	"github.com/tlsup/tlsup/starttls"
)

// Ports of XMPP client-to-server streams.
const (
	// Port is the client-to-server port, where TLS starts with STARTTLS.
	Port = 5222
	// PortDirectTLS is the port where TLS starts with the first byte
	// (XEP-0368).
	PortDirectTLS = 5223
)

// Upgrader speaks the client side of XMPP's STARTTLS for
// starttls.Upgrade. It holds the state of the stream it reads, so one
// Upgrader serves one connection; Domain is required.
type Upgrader struct {
	// Domain is the XMPP domain the stream is opened to (the stream's
	// 'to'); Unicode names are sent in their IDNA ASCII form. It is not
	// the name the certificate is verified against: that is the
	// TLSConfig's ServerName, which [Dial] sets to Domain. Zero is an
	// error.
	Domain string
	// MaxElementSize bounds the bytes of the stream header and of each
	// element read (the features, the answer to STARTTLS). Zero means
	// DefaultMaxElementSize.
	MaxElementSize int
	// MaxDepth bounds the nesting inside an element. Zero means
	// DefaultMaxDepth.
	MaxDepth int

	stream    *stream
	streamTLS bool // the current stream was opened inside TLS
	from      string
}

var _ starttls.Upgrader = (*Upgrader)(nil)

// Protocol returns "xmpp".
func (u *Upgrader) Protocol() string { return "xmpp" }

// Keyword returns "starttls", the feature that offers the upgrade.
func (u *Upgrader) Keyword() string { return "starttls" }

// ImplicitPort returns 5223, direct TLS (XEP-0368).
func (u *Upgrader) ImplicitPort() int { return PortDirectTLS }

// Greet opens the stream and reads the server's stream header. The
// greeting text is the header's 'from', escaped (it is untrusted before
// TLS). A header that is not <stream:stream> in the streams namespace, or
// a version other than 1.x, is starttls.ErrProtocol.
func (u *Upgrader) Greet(ctx context.Context, c *starttls.Conn) (starttls.Greeting, error) {
	if err := u.open(c); err != nil {
		return starttls.Greeting{}, err
	}
	return starttls.Greeting{Text: starttls.Escape(clip(u.from))}, nil
}

// open writes the client's stream header and reads the server's with a
// fresh decoder (a new stream: RFC 6120, Section 4.3.3).
func (u *Upgrader) open(c *starttls.Conn) error {
	domain, err := u.domain()
	if err != nil {
		return err
	}
	header := "<?xml version='1.0'?><stream:stream to='" + domain +
		"' version='1.0' xml:lang='en' xmlns='" + nsClient + "' xmlns:stream='" + nsStream + "'>"
	if _, err := c.Write([]byte(header)); err != nil {
		return err
	}
	c.Mark("C: " + header) // XML, not lines: the transcript gets a note per element
	size, depth := u.MaxElementSize, u.MaxDepth
	if size <= 0 {
		size = DefaultMaxElementSize
	}
	if depth <= 0 {
		depth = DefaultMaxDepth
	}
	u.stream = newStream(c, size, depth)
	u.streamTLS = c.TLS() != nil
	start, err := u.stream.header()
	if err != nil {
		return err
	}
	// RFC 6120, Section 4.7.5: version 1.0 announces stream features.
	if v, _ := attr(start.Attr, "version"); !strings.HasPrefix(v, "1.") {
		return starttls.NewProtocolError("xmpp: stream version %q, want 1.x", starttls.Escape(clip(v)))
	}
	u.from, _ = attr(start.Attr, "from")
	c.Mark("S: <stream:stream from='" + starttls.Escape(clip(u.from)) + "'>")
	return nil
}

// domain checks Domain and returns its ASCII form, safe inside the quoted
// attribute.
func (u *Upgrader) domain() (string, error) {
	if u.Domain == "" {
		return "", fmt.Errorf("%w: xmpp: no Domain to open the stream to", starttls.ErrConfig)
	}
	ascii, err := idna.Lookup.ToASCII(u.Domain)
	if err != nil {
		return "", fmt.Errorf("%w: xmpp: domain %q: %v", starttls.ErrUnsafeArgument, u.Domain, err)
	}
	if strings.ContainsAny(ascii, "'\"<>&") {
		return "", fmt.Errorf("%w: xmpp: domain %q", starttls.ErrUnsafeArgument, u.Domain)
	}
	return ascii, nil
}

// Discover reads <stream:features>. Inside TLS on a stream opened before
// it, it first restarts the stream (RFC 6120, Section 5.4.3.3), so the
// features it returns are the server's answer over TLS. Each entry is a
// feature's element name, with its values where it has some: "starttls"
// (or "starttls required"), "mechanisms PLAIN SCRAM-SHA-1", "bind". A
// starttls element outside the TLS namespace is recorded in Clark notation
// ("{ns}starttls") and is no offer. A stream error in place of the
// features is a *starttls.ReplyError matching
// starttls.ErrGreetingRejected.
func (u *Upgrader) Discover(ctx context.Context, c *starttls.Conn) (*starttls.Capabilities, error) {
	if u.stream == nil || (c.TLS() != nil && !u.streamTLS) {
		if err := u.open(c); err != nil {
			return nil, err
		}
	}
	n, err := u.stream.element()
	if err != nil {
		return nil, err
	}
	if n.name.Space == nsStream && n.name.Local == "error" {
		return nil, streamError(n, "", starttls.ErrGreetingRejected)
	}
	if n.name.Space != nsStream || n.name.Local != "features" {
		return nil, starttls.NewProtocolError("xmpp: %s where the stream features belong", name(n.name))
	}
	caps := features(n)
	c.Mark("S: <stream:features> " + strings.Join(caps.List(), ", "))
	return caps, nil
}

// features lists the children of <stream:features>.
func features(n *node) *starttls.Capabilities {
	caps := &starttls.Capabilities{}
	for _, f := range n.children {
		entry := f.name.Local
		switch {
		case f.name.Local == "starttls" && f.name.Space != nsTLS:
			entry = "{" + f.name.Space + "}starttls"
		case f.name.Local == "starttls":
			if f.child(nsTLS, "required") != nil {
				entry += " required"
			}
		case f.name.Space == nsSASL && f.name.Local == "mechanisms":
			for _, m := range f.children {
				if m.name.Space == nsSASL && m.name.Local == "mechanism" {
					entry += " " + strings.TrimSpace(m.text.String())
				}
			}
		}
		caps.Add(starttls.Escape(clip(entry)))
	}
	return caps
}

// startTLS is the STARTTLS command (RFC 6120, Section 5.4.2.1).
const startTLS = "<starttls xmlns='" + nsTLS + "'/>"

// StartTLS sends <starttls/> and reads the answer, and not a byte after
// its end: nil for <proceed/> in the TLS namespace; a *starttls.ReplyError
// matching starttls.ErrRefused for <failure/> (status "failure") or a
// stream error (status "stream error", with its condition and text);
// starttls.ErrProtocol for anything else, a <proceed/> in another
// namespace included.
func (u *Upgrader) StartTLS(ctx context.Context, c *starttls.Conn) error {
	if u.stream == nil {
		return fmt.Errorf("%w: xmpp: StartTLS before the stream was opened", starttls.ErrConfig)
	}
	if _, err := c.Write([]byte(startTLS)); err != nil {
		return err
	}
	c.Mark("C: " + startTLS)
	n, err := u.stream.element()
	if err != nil {
		return err
	}
	c.Mark("S: " + name(n.name))
	switch {
	case n.name.Space == nsTLS && n.name.Local == "proceed":
		if len(n.children) > 0 || strings.TrimSpace(n.text.String()) != "" {
			return starttls.NewProtocolError("xmpp: <proceed/> with content")
		}
		return nil
	case n.name.Space == nsTLS && n.name.Local == "failure":
		return &starttls.ReplyError{Protocol: "xmpp", Command: "starttls", Status: "failure"}
	case n.name.Space == nsStream && n.name.Local == "error":
		return streamError(n, "starttls", starttls.ErrRefused)
	}
	return starttls.NewProtocolError("xmpp: %s in answer to starttls", name(n.name))
}

// streamError reports a <stream:error> (RFC 6120, Section 4.9): its
// condition and text, escaped and bounded.
func streamError(n *node, command string, kind error) error {
	condition, text := "", ""
	for _, c := range n.children {
		if c.name.Space != nsErrors {
			continue
		}
		if c.name.Local == "text" {
			text = strings.TrimSpace(c.text.String())
		} else if condition == "" {
			condition = c.name.Local
		}
	}
	msg := condition
	if text != "" {
		msg += ": " + text
	}
	return &starttls.ReplyError{Protocol: "xmpp", Command: command, Status: "stream error",
		Text: starttls.Escape(clip(msg)), Kind: kind}
}

// Options configures [Upgrade] and [Dial]. A nil *Options is an error for
// Upgrade (it needs a domain); for Dial it means the defaults, with the
// host part of the address as the domain.
type Options struct {
	// Domain is the XMPP domain (the stream's 'to'). Zero: for Dial, the
	// TLSConfig's ServerName if set, else the host part of the address;
	// for Upgrade, the TLSConfig's ServerName.
	Domain string
	// TLSConfig is cloned for the handshake. Zero: for Dial, a verifying
	// config for the domain; for Upgrade, an error.
	TLSConfig *tls.Config
	// Policy is the downgrade policy; zero is starttls.Required.
	Policy starttls.Policy
	// Mode is StartTLS or Implicit; zero (Auto) means direct TLS on port
	// 5223 and STARTTLS elsewhere.
	Mode starttls.Mode
	// MaxElementSize and MaxDepth bound the XML read (see Upgrader);
	// zero means the defaults.
	MaxElementSize, MaxDepth int
	// Conn sets the transcript; nil means the defaults.
	Conn *starttls.Options
}

func (o *Options) split(host string) (*Upgrader, *starttls.Config) {
	if o == nil {
		o = &Options{}
	}
	domain := o.Domain
	cfg := &starttls.Config{TLSConfig: o.TLSConfig, Policy: o.Policy, Mode: o.Mode, Conn: o.Conn}
	if domain == "" && o.TLSConfig != nil {
		domain = o.TLSConfig.ServerName
	}
	if domain == "" {
		domain = host
	}
	if host != "" && (cfg.TLSConfig == nil || (cfg.TLSConfig.ServerName == "" && !cfg.TLSConfig.InsecureSkipVerify)) {
		// Dial: verify the domain, not the address dialled.
		if cfg.TLSConfig == nil {
			cfg.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		} else {
			cfg.TLSConfig = cfg.TLSConfig.Clone()
		}
		if ascii, err := idna.Lookup.ToASCII(domain); err == nil {
			cfg.TLSConfig.ServerName = ascii
		}
	}
	return &Upgrader{Domain: domain, MaxElementSize: o.MaxElementSize, MaxDepth: o.MaxDepth}, cfg
}

// Upgrade opens an XMPP stream on conn, a fresh connection, runs STARTTLS
// and the handshake, and restarts the stream inside TLS. See
// starttls.Upgrade for the context contract, the errors, and who owns
// conn: on error it is closed. The session continues on Result.Conn, just
// after the features read inside TLS (Result.After): authenticate there.
func Upgrade(ctx context.Context, conn net.Conn, opts *Options) (*tls.Conn, *starttls.Result, error) {
	u, cfg := opts.split("")
	return starttls.Upgrade(ctx, conn, u, cfg)
}

// Dial connects to addr ("host:port") and upgrades the connection as
// [Upgrade] does; with Mode Auto, port 5223 gets direct TLS. A failed
// connect is a *starttls.Error at step starttls.StepConnect.
func Dial(ctx context.Context, network, addr string, opts *Options) (*tls.Conn, *starttls.Result, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = ""
	}
	u, cfg := opts.split(host)
	return starttls.Dial(ctx, network, addr, u, cfg)
}
