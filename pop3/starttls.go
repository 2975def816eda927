package pop3

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"

	"github.com/tlsup/tlsup/starttls"
)

// Upgrader speaks the POP3 side of a client upgrade for [starttls.Upgrade]:
// greeting, CAPA and STLS. The zero value is ready to use and holds no
// state, so nothing learned on one connection reaches another.
type Upgrader struct{}

var _ starttls.Upgrader = (*Upgrader)(nil)

// Protocol returns "pop3".
func (u *Upgrader) Protocol() string { return "pop3" }

// Keyword returns "STLS", the CAPA capability that advertises the upgrade
// (RFC 2595, Section 4).
func (u *Upgrader) Keyword() string { return "STLS" }

// StartTLS sends STLS and reads the one-line reply (RFC 2595, Section 4):
// "+OK" is the go-ahead; "-ERR", with or without a response code such as
// [SYS/TEMP], [SYS/PERM] or [IN-USE], is a *starttls.ReplyError matching
// starttls.ErrRefused; anything else matches starttls.ErrProtocol. It reads
// nothing beyond the reply line; the core refuses to go on when more bytes
// are buffered.
func (u *Upgrader) StartTLS(ctx context.Context, c *starttls.Conn) error {
	if err := c.WriteLine("STLS"); err != nil {
		return err
	}
	r, err := ReadResponse(c)
	if err != nil {
		return err
	}
	if !r.OK {
		return refusal("STLS", r, starttls.ErrRefused)
	}
	return nil
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
	// 995 and STLS elsewhere (RFC 8314, Section 3.3).
	Mode starttls.Mode
	// Conn sets the line bounds and the transcript; nil means the
	// defaults.
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
	return &Upgrader{}, &starttls.Config{TLSConfig: o.TLSConfig, Policy: o.Policy, Mode: o.Mode, Conn: o.Conn, Logger: o.Logger, Dialer: o.Dialer}
}

// Upgrade upgrades conn, a fresh POP3 connection, to TLS: greeting, CAPA,
// STLS, handshake and a fresh CAPA inside TLS (in Implicit mode: handshake,
// then greeting and CAPA inside TLS). See [starttls.Upgrade] for the steps,
// the context contract and who owns conn: on error it is closed.
//
// Errors are *starttls.Error values matching starttls.ErrNotOffered (STLS
// not in the CAPA list, or CAPA answered -ERR, under the Required policy),
// starttls.ErrRefused (STLS answered -ERR; a *starttls.ReplyError is in
// the chain), starttls.ErrInjectedData, starttls.ErrGreetingRejected,
// starttls.ErrProtocol, starttls.ErrTooLarge, starttls.ErrHandshake (with
// the crypto/tls error, such as *tls.CertificateVerificationError),
// context.DeadlineExceeded or context.Canceled, or io.ErrUnexpectedEOF.
func Upgrade(ctx context.Context, conn net.Conn, opts *Options) (*tls.Conn, *starttls.Result, error) {
	u, cfg := opts.split()
	return starttls.Upgrade(ctx, conn, u, cfg)
}

// Dial connects to addr ("host:port") and upgrades the connection as
// [Upgrade] does; with Mode Auto, port 995 gets implicit TLS. A failed
// connect is a *starttls.Error at step starttls.StepConnect.
func Dial(ctx context.Context, network, addr string, opts *Options) (*tls.Conn, *starttls.Result, error) {
	u, cfg := opts.split()
	return starttls.Dial(ctx, network, addr, u, cfg)
}
