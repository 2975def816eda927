package imap

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"net"

	"github.com/tlsup/tlsup/starttls"
)

// Upgrader speaks the IMAP side of a client upgrade for
// [starttls.Upgrade]. The zero value is ready to use.
//
// Each command gets a fresh tag of 12 random hexadecimal digits after a
// "t", drawn from crypto/rand: tags are unique on a connection without any
// state in the Upgrader, which may therefore serve any number of
// connections at once, and no server response written before a command
// was seen can carry its tag.
type Upgrader struct {
	// MaxLiteral bounds each literal in a response, in bytes. Zero means
	// DefaultMaxLiteral (64 KiB).
	MaxLiteral int64
}

var _ starttls.Upgrader = (*Upgrader)(nil)

// Protocol returns "imap".
func (u *Upgrader) Protocol() string { return "imap" }

// Keyword returns "STARTTLS".
func (u *Upgrader) Keyword() string { return "STARTTLS" }

// StartTLS sends STARTTLS with a fresh tag and reads the answer (RFC 9051,
// Section 6.2.1). Untagged responses before the completion are read and
// dropped, a CAPABILITY response among them included. The tagged OK is the
// go-ahead, and a [CAPABILITY ...] code in it is ignored: it was sent
// before TLS. Nothing beyond the OK line is read.
//
// Errors: a NO or BAD completion, or an untagged BYE, is a
// *starttls.ReplyError matching starttls.ErrRefused; a continuation request
// ("+"), a completion with another tag, or a malformed response is
// starttls.ErrProtocol; the bounds give starttls.ErrTooLarge; read errors
// are returned as they are.
func (u *Upgrader) StartTLS(ctx context.Context, c *starttls.Conn) error {
	done, err := u.command(c, "STARTTLS", nil)
	if err != nil {
		return err
	}
	return u.completion("STARTTLS", done)
}

// command writes command with a fresh tag and reads responses with
// [ReadResponses] up to its tagged completion, which it returns. Untagged
// responses go to untagged, when not nil, except BYE, which ends the
// exchange as a refusal.
func (u *Upgrader) command(c *starttls.Conn, command string, untagged func(*Response) error) (*Response, error) {
	tag := newTag()
	if err := c.WriteCommand(tag, command); err != nil {
		return nil, err
	}
	var done *Response
	err := ReadResponses(c, u.MaxLiteral, func(r *Response) (bool, error) {
		switch {
		case r.Tag == "+":
			// RFC 9051, Section 7.5: a continuation request only
			// answers a command waiting for more data; neither
			// CAPABILITY nor STARTTLS does.
			return false, starttls.NewProtocolError("continuation request \"+ %s\" in answer to %s",
				starttls.Escape(r.Text), command)
		case r.Tag == "*" && r.Status == "BYE":
			// RFC 9051, Section 7.1.5: the server is closing.
			return false, &starttls.ReplyError{Protocol: u.Protocol(), Command: command, Status: r.Status,
				Text: starttls.Escape(clientRespText(r))}
		case r.Tag == "*":
			if untagged != nil {
				if err := untagged(r); err != nil {
					return false, err
				}
			}
			return true, nil
		case r.Tag != tag:
			// A server never answers a command that was not sent: a
			// completion with another tag was forged or belongs to
			// no one, and must not end this command.
			return false, starttls.NewProtocolError("completion tagged \"%s\" while waiting for %s",
				starttls.Escape(r.Tag), command)
		}
		done = r
		return false, nil
	})
	return done, err
}

// completion returns nil for a tagged OK and the refusal otherwise.
func (u *Upgrader) completion(command string, r *Response) error {
	if r.Status == "OK" {
		return nil
	}
	// RFC 9051, Section 7.1.2 and 7.1.3: NO is a failure, BAD a
	// protocol-level error; either way the command was refused.
	return &starttls.ReplyError{Protocol: u.Protocol(), Command: command, Status: r.Status,
		Text: starttls.Escape(clientRespText(r))}
}

// newTag returns a fresh, unpredictable command tag.
func newTag() string {
	var b [6]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24 and later)
	return "t" + hex.EncodeToString(b[:])
}

// Options configures [Upgrade] and [Dial]. A nil *Options means the
// defaults: Required policy, Auto mode, and for Dial a verifying TLS config
// for the dialled host.
type Options struct {
	// TLSConfig is cloned for the handshake. Zero: for Dial, a verifying
	// config for the host part of the address; for Upgrade, an error,
	// since a bare conn carries no name to verify.
	TLSConfig *tls.Config
	// Policy is the downgrade policy; zero is starttls.Required.
	Policy starttls.Policy
	// Mode is StartTLS or Implicit; zero (Auto) means implicit TLS on port
	// 993 and STARTTLS elsewhere.
	Mode starttls.Mode
	// MaxLiteral bounds each literal in a response; zero means
	// DefaultMaxLiteral.
	MaxLiteral int64
	// Conn sets the line bounds and the transcript; nil means defaults.
	Conn *starttls.Options
}

func (o *Options) split() (*Upgrader, *starttls.Config) {
	if o == nil {
		o = &Options{}
	}
	return &Upgrader{MaxLiteral: o.MaxLiteral},
		&starttls.Config{TLSConfig: o.TLSConfig, Policy: o.Policy, Mode: o.Mode, Conn: o.Conn}
}

// Upgrade upgrades conn, a fresh IMAP connection, to TLS: greeting,
// CAPABILITY (unless the greeting carried the list), STARTTLS, handshake,
// and a fresh CAPABILITY inside TLS whose answer alone fills
// Result.After. In implicit mode the handshake comes first and PREAUTH is
// accepted. See [starttls.Upgrade] for the steps, the context contract and
// the errors; besides those, a plaintext PREAUTH greeting matches
// starttls.ErrPreauth. On error conn is closed.
func Upgrade(ctx context.Context, conn net.Conn, opts *Options) (*tls.Conn, *starttls.Result, error) {
	u, cfg := opts.split()
	return starttls.Upgrade(ctx, conn, u, cfg)
}

// Dial connects to addr ("host:port") and upgrades the connection as
// [Upgrade] does; with Mode Auto, port 993 gets implicit TLS. A failed
// connect is a *starttls.Error at step starttls.StepConnect.
func Dial(ctx context.Context, network, addr string, opts *Options) (*tls.Conn, *starttls.Result, error) {
	u, cfg := opts.split()
	return starttls.Dial(ctx, network, addr, u, cfg)
}
