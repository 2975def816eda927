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
// [Serve] returns it after answering the command and closing.
var ErrQuit = errors.New("starttls: client quit before tls")

// Defaults of [ServerOptions].
const (
	// DefaultHandshakeTimeout bounds the TLS handshake after the go-ahead.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultIdleTimeout bounds the wait for each pre-TLS command.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultPreTLSTimeout bounds the whole pre-TLS phase.
	DefaultPreTLSTimeout = 5 * time.Minute
	// DefaultMaxErrors is how many refused pre-TLS commands a client may
	// send before the connection is closed.
	DefaultMaxErrors = 10
)

// ServerOptions configures a pre-TLS server front run by [Serve]: the part
// of a server that requires TLS and answers only what its [ServerDialogue]
// allows before it. Fields document their zero values; a nil
// *ServerOptions is the zero value, which fails for want of TLSConfig.
type ServerOptions struct {
	// TLSConfig is the server's TLS configuration, used as given
	// (crypto/tls does not modify it). Required: without it Serve fails
	// with ErrConfig before writing anything.
	TLSConfig *tls.Config
	// Hostname is the name a dialogue puts in its greeting and replies.
	// Zero means "localhost". The core itself does not use it.
	Hostname string
	// HandshakeTimeout bounds the handshake from the go-ahead on. Zero
	// means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// IdleTimeout bounds the wait for each pre-TLS command, from the end
	// of the previous reply to the end of the command (literals
	// included): a client trickling a command byte by byte is cut when it
	// passes. Zero means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// PreTLSTimeout bounds the whole pre-TLS phase, from the start of Serve
	// to the upgrade command, whatever the client does within each
	// IdleTimeout (a NOOP every 59 s, for ever). The handshake that
	// follows has HandshakeTimeout of its own. Zero means
	// DefaultPreTLSTimeout.
	PreTLSTimeout time.Duration
	// MaxErrors is the number of refused pre-TLS commands after which the
	// connection is closed: the next refused command is answered with the
	// dialogue's too-many-errors farewell instead of its reply. Zero means
	// DefaultMaxErrors.
	MaxErrors int
	// Conn sets the line bounds, a transcript and a [Redactor] (which
	// takes precedence over the dialogue's). The Conn is always in the
	// server role (C: for lines read, S: for lines written). Nil means the
	// defaults.
	Conn *Options
}

// duration returns d, or def when d is not positive.
func duration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// ServerUpgrader is a protocol's pre-TLS front, the server-side mirror of
// [Upgrader] as a protocol package presents it: it runs the plaintext
// dialogue on a freshly accepted connection until the client has started
// TLS (usually by calling [Serve] with its [ServerDialogue]), and returns
// the session connection over the *tls.Conn ([Conn.TLS]) with a clean
// state: the caller's post-TLS loop starts with nothing learned before TLS
// and expects the client to ask for the capabilities again.
//
// On error the connection is closed. Errors are those of [Serve].
type ServerUpgrader interface {
	// Protocol returns the protocol's name, used in errors.
	Protocol() string
	// Serve runs the front on conn under ctx, which bounds the whole
	// pre-TLS phase and the handshake.
	Serve(ctx context.Context, conn net.Conn) (*Conn, error)
}

// ServerSwitch describes the server half of one STARTTLS transition.
type ServerSwitch struct {
	// Protocol names the protocol in errors.
	Protocol string
	// GoAhead is the reply line that tells the client to start TLS.
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
// upgrade command line was read from c, for a server with its own
// pre-TLS loop ([Serve] calls it for a [ServerDialogue]):
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
// handshake is dropped when ctx ends. A ctx already done writes nothing.
// Bytes that arrive after the go-ahead are read by the handshake as TLS
// records and make it fail.
//
// On error the connection is closed, and the error matches ErrConfig (a nil
// sw or TLSConfig), ErrInjectedData, ErrHandshake (with the crypto/tls
// error in the chain), context.DeadlineExceeded or context.Canceled, or
// io.ErrUnexpectedEOF. On success the caller owns the returned Conn and its
// *tls.Conn ([Conn.TLS]); ctx no longer touches it.
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
// caller has set on the conn ([Serve]'s handshake timeout): errors treat
// it as ctx's own deadline (see stepErrorLimit).
func serverSwitch(ctx context.Context, limit time.Time, c *Conn, sw *ServerSwitch) (*Conn, error) {
	if sw == nil || sw.TLSConfig == nil {
		protocol := ""
		if sw != nil {
			protocol = sw.Protocol
		}
		return nil, &Error{Protocol: protocol, Step: StepConfig, Kind: ErrConfig, Err: errors.New("nil TLSConfig")}
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
