package starttls

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"time"
)

// ErrQuit: the client ended the session (QUIT, LOGOUT) before starting TLS.
// A pre-TLS front returns it after answering the command and closing.
var ErrQuit = errors.New("starttls: client quit before tls")

// Defaults of [ServerOptions].
const (
	// DefaultHandshakeTimeout bounds the TLS handshake after the go-ahead.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultIdleTimeout bounds the wait for each pre-TLS command.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultMaxErrors is how many refused pre-TLS commands a client may
	// send before the connection is closed.
	DefaultMaxErrors = 10
)

// ServerOptions configures a protocol's pre-TLS front (smtp.Server,
// imap.Server, pop3.Server): the part of a server that requires TLS and
// answers only the greeting, capability discovery, NOOP, QUIT and STARTTLS
// before it. Fields document their zero values.
type ServerOptions struct {
	// TLSConfig is the server's TLS configuration. Required.
	TLSConfig *tls.Config
	// Hostname is the name in the greeting and EHLO reply. Zero means
	// "localhost".
	Hostname string
	// HandshakeTimeout bounds the handshake from the go-ahead on. Zero
	// means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// IdleTimeout bounds the wait for each pre-TLS command. Zero means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxErrors is the number of refused pre-TLS commands after which the
	// connection is closed. Zero means DefaultMaxErrors.
	MaxErrors int
	// Conn sets the line bounds and a transcript (set Server: true in it
	// for C:/S: prefixes from the server's side). Nil means the defaults,
	// with Server set.
	Conn *Options
}

// HandshakeTimeoutOrDefault returns HandshakeTimeout or its default; o may be
// nil.
func (o *ServerOptions) HandshakeTimeoutOrDefault() time.Duration {
	if o == nil || o.HandshakeTimeout <= 0 {
		return DefaultHandshakeTimeout
	}
	return o.HandshakeTimeout
}

// IdleTimeoutOrDefault returns IdleTimeout or its default; o may be nil.
func (o *ServerOptions) IdleTimeoutOrDefault() time.Duration {
	if o == nil || o.IdleTimeout <= 0 {
		return DefaultIdleTimeout
	}
	return o.IdleTimeout
}

// MaxErrorsOrDefault returns MaxErrors or its default; o may be nil.
func (o *ServerOptions) MaxErrorsOrDefault() int {
	if o == nil || o.MaxErrors <= 0 {
		return DefaultMaxErrors
	}
	return o.MaxErrors
}

// HostnameOrDefault returns Hostname or "localhost"; o may be nil.
func (o *ServerOptions) HostnameOrDefault() string {
	if o == nil || o.Hostname == "" {
		return "localhost"
	}
	return o.Hostname
}

// NewServerConn wraps a freshly accepted conn for a pre-TLS front, with the
// options' line bounds and transcript and the server role.
func (o *ServerOptions) NewServerConn(conn net.Conn) *Conn {
	var opts Options
	if o != nil && o.Conn != nil {
		opts = *o.Conn
	}
	opts.Server = true
	return NewConn(conn, &opts)
}

// ServerUpgrader is a protocol's pre-TLS front, the server-side mirror of
// [Upgrader]: it runs the plaintext dialogue on a freshly accepted
// connection until the client has started TLS, and returns the session
// connection over the *tls.Conn ([Conn.TLS]) with a clean state: the caller's
// post-TLS loop starts with no EHLO name, no transaction and no
// authentication, and expects the client's fresh EHLO, CAPABILITY or CAPA.
//
// On error the connection is closed. Errors match ErrQuit (the client left
// before TLS), ErrInjectedData, ErrTooLarge, ErrProtocol (too many refused
// commands), ErrHandshake, context errors and io.ErrUnexpectedEOF.
type ServerUpgrader interface {
	// Protocol returns "smtp", "lmtp", "imap" or "pop3".
	Protocol() string
	// Serve runs the front on conn under ctx, which bounds the whole
	// pre-TLS phase and the handshake.
	Serve(ctx context.Context, conn net.Conn) (*Conn, error)
}
