package smtp

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"golang.org/x/net/idna"

	"github.com/tlsup/tlsup/starttls"
)

// Upgrader speaks the SMTP (or LMTP) side of a client upgrade for
// [starttls.Upgrade]. The zero value sends "EHLO localhost".
type Upgrader struct {
	// LocalName is the name sent with EHLO/LHLO: a domain (Unicode names
	// are sent in their IDNA ASCII form) or an address literal such as
	// "[192.0.2.1]". Zero means "localhost".
	LocalName string
	// LMTP selects LMTP (RFC 2033): LHLO instead of EHLO.
	LMTP bool
}

var _ starttls.Upgrader = (*Upgrader)(nil)

// Protocol returns "smtp", or "lmtp" when LMTP is set.
func (u *Upgrader) Protocol() string {
	if u.LMTP {
		return "lmtp"
	}
	return "smtp"
}

// Keyword returns "STARTTLS".
func (u *Upgrader) Keyword() string { return "STARTTLS" }

// StartTLS sends STARTTLS and reads the reply (RFC 3207, Section 4): 220 is
// the go-ahead; 4xx and 5xx (454 TLS not available, 501, 421 closing) and
// 221 (the server is closing) are a *starttls.ReplyError matching
// starttls.ErrRefused; anything else (a 250, a 354) is starttls.ErrProtocol.
func (u *Upgrader) StartTLS(ctx context.Context, c *starttls.Conn) error {
	if err := c.WriteLine("STARTTLS"); err != nil {
		return err
	}
	r, err := ReadReply(c)
	if err != nil {
		return err
	}
	switch {
	case r.Code == 220:
		return nil
	case r.Code >= 400, r.Code == 221:
		return replyError(u.Protocol(), "STARTTLS", r, starttls.ErrRefused)
	}
	return unexpected("STARTTLS", r)
}

func (u *Upgrader) localName() (string, error) {
	name := u.LocalName
	if name == "" {
		return "localhost", nil
	}
	if strings.HasPrefix(name, "[") {
		if !strings.HasSuffix(name, "]") || strings.ContainsAny(name, " \t\r\n\x00") {
			return "", fmt.Errorf("%w: EHLO address literal %q", starttls.ErrUnsafeArgument, name)
		}
		return name, nil
	}
	ascii, err := idna.Lookup.ToASCII(name)
	if err != nil {
		return "", fmt.Errorf("%w: EHLO name %q: %v", starttls.ErrUnsafeArgument, name, err)
	}
	return ascii, nil
}

// Options configures [Upgrade] and [Dial]. A nil *Options means the
// defaults: Required policy, Auto mode, "EHLO localhost", and for Dial a
// verifying TLS config for the dialled host.
type Options struct {
	// TLSConfig is cloned for the handshake. Zero: for Dial, a verifying
	// config for the host part of the address (tlsconf.Client); for
	// Upgrade, an error, since a bare conn carries no name to verify.
	TLSConfig *tls.Config
	// Policy is the downgrade policy; zero is starttls.Required.
	Policy starttls.Policy
	// Mode is StartTLS or Implicit; zero (Auto) means implicit TLS on port
	// 465 and STARTTLS elsewhere.
	Mode starttls.Mode
	// LocalName is the EHLO/LHLO name, a host name (Unicode names are
	// sent in IDNA ASCII form) or an address literal ("[192.0.2.1]");
	// zero means "localhost". A name that cannot be sent fails with
	// starttls.ErrUnsafeArgument before anything is written.
	LocalName string
	// LMTP selects LHLO (RFC 2033).
	LMTP bool
	// Conn sets the line bounds and the transcript; nil means defaults.
	Conn *starttls.Options
	// Logger receives one record per upgrade (see starttls.Config.Logger);
	// nil means none.
	Logger *slog.Logger
	// Dialer makes Dial's connection (a SOCKS5 or other route; see
	// starttls.Config.Dialer); nil means a net.Dialer. Upgrade ignores it.
	Dialer starttls.ContextDialer
}

func (o *Options) split() (*Upgrader, *starttls.Config) {
	if o == nil {
		o = &Options{}
	}
	return &Upgrader{LocalName: o.LocalName, LMTP: o.LMTP},
		&starttls.Config{TLSConfig: o.TLSConfig, Policy: o.Policy, Mode: o.Mode, Conn: o.Conn, Logger: o.Logger, Dialer: o.Dialer}
}

// Upgrade upgrades conn, a fresh SMTP connection, to TLS: greeting, EHLO,
// STARTTLS, handshake and a fresh EHLO inside TLS. See [starttls.Upgrade]
// for the steps, the context contract, the errors, and who owns conn: on
// error it is closed.
func Upgrade(ctx context.Context, conn net.Conn, opts *Options) (*tls.Conn, *starttls.Result, error) {
	u, cfg := opts.split()
	return starttls.Upgrade(ctx, conn, u, cfg)
}

// Dial connects to addr ("host:port") and upgrades the connection as
// [Upgrade] does; with Mode Auto, port 465 gets implicit TLS. A failed
// connect is a *starttls.Error at step starttls.StepConnect.
func Dial(ctx context.Context, network, addr string, opts *Options) (*tls.Conn, *starttls.Result, error) {
	u, cfg := opts.split()
	return starttls.Dial(ctx, network, addr, u, cfg)
}
