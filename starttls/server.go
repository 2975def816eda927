package starttls

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
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

// newServerConn wraps a freshly accepted conn for a pre-TLS front, with the
// options' line bounds and transcript, the server role, and redactor unless
// the options name one.
func (o *ServerOptions) newServerConn(conn net.Conn, redactor Redactor) *Conn {
	var opts Options
	if o != nil && o.Conn != nil {
		opts = *o.Conn
	}
	opts.Server = true
	if opts.Redactor == nil {
		opts.Redactor = redactor
	}
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

// ServerSwitch describes the server half of one STARTTLS transition.
type ServerSwitch struct {
	// Protocol names the protocol in errors.
	Protocol string
	// GoAhead is the reply line that tells the client to start TLS
	// ("220 2.0.0 Ready to start TLS", "a1 OK Begin TLS", "+OK Begin TLS").
	GoAhead string
	// Refusal is the reply sent, instead of the go-ahead, when bytes are
	// buffered behind the STARTTLS command. Empty means close without a
	// reply.
	Refusal string
	// TLSConfig is the server's TLS configuration; it is used as given
	// (crypto/tls does not modify it).
	TLSConfig *tls.Config
}

// ServerUpgrade is the server half of STARTTLS, called right after the
// STARTTLS (STLS) command line was read from c:
//
//  1. if a single byte is buffered behind the command (pipelined commands,
//     the CVE-2011-0411 class), it writes sw.Refusal if set, closes the
//     connection and fails with ErrInjectedData: those bytes were sent
//     before TLS and are never carried into it nor answered inside it;
//  2. it writes the go-ahead;
//  3. it runs tls.Server on c's wrapped conn with HandshakeContext(ctx);
//  4. it returns a fresh Conn on the *tls.Conn, with c's options; the
//     new Conn reuses c's empty read buffer, and c can no longer be read
//     from (its reads fail with net.ErrClosed).
//
// ctx bounds the whole transition, so a client that never completes the
// handshake is dropped when ctx ends. Bytes that arrive after the go-ahead
// are read by the handshake as TLS records and make it fail.
//
// On error the connection is closed, and the error matches ErrInjectedData,
// ErrHandshake (with the crypto/tls error in the chain),
// context.DeadlineExceeded or context.Canceled, or io.ErrUnexpectedEOF.
// On success the caller owns the returned Conn and its *tls.Conn
// ([Conn.TLS]); ctx no longer touches it.
func ServerUpgrade(ctx context.Context, c *Conn, sw *ServerSwitch) (tc *Conn, err error) {
	raw := c.NetConn()
	w := watchContext(ctx, raw)
	defer func() {
		w.release()
		if err != nil {
			raw.Close()
		}
	}()
	return serverSwitch(ctx, time.Time{}, c, sw)
}

// serverSwitch is the body of [ServerUpgrade], run while a watch applies
// ctx to c's conn; the caller releases the watch and closes the conn on
// error. limit, when not zero, is a deadline sooner than ctx's that the
// caller has set on the conn (a [Front]'s handshake timeout): errors treat
// it as ctx's own deadline (see stepErrorLimit).
func serverSwitch(ctx context.Context, limit time.Time, c *Conn, sw *ServerSwitch) (*Conn, error) {
	if sw == nil || sw.TLSConfig == nil {
		protocol := ""
		if sw != nil {
			protocol = sw.Protocol
		}
		return nil, &Error{Protocol: protocol, Step: StepStartTLS, Err: errors.New("nil TLSConfig")}
	}
	if n := c.Buffered(); n > 0 {
		if sw.Refusal != "" {
			c.WriteLine(sw.Refusal)
		}
		return nil, stepErrorLimit(ctx, limit, sw.Protocol, StepStartTLS, ErrInjectedData,
			fmt.Errorf("%d bytes pipelined behind the STARTTLS command", n))
	}
	if err := c.WriteLine(sw.GoAhead); err != nil {
		return nil, stepErrorLimit(ctx, limit, sw.Protocol, StepStartTLS, nil, err)
	}
	c.Mark("-- TLS --")
	tlsConn := tls.Server(c.NetConn(), sw.TLSConfig)
	if err := tlsConn.HandshakeContext(handshakeContext(ctx)); err != nil {
		tlsConn.Close()
		return nil, stepErrorLimit(ctx, limit, sw.Protocol, StepHandshake, ErrHandshake, plaintextAnswer(err, false))
	}
	return c.handOver(tlsConn), nil
}
