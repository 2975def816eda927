package starttls

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// Greeting is what an [Upgrader] learned from the server's greeting.
type Greeting struct {
	// Text is the greeting text after the code or status, escaped with
	// [Escape]; for a multi-line SMTP greeting, the first line.
	Text string
	// Capabilities are capabilities announced inside the greeting (an IMAP
	// [CAPABILITY ...] response code), nil when there were none. They are
	// used only for the decision to send STARTTLS and never outlive TLS.
	Capabilities *Capabilities
}

// Upgrader speaks one protocol's side of a client STARTTLS upgrade. The core
// ([Upgrade]) drives it and owns the policy, the empty-buffer check, the
// handshake and the context; an Upgrader only reads and writes protocol
// lines on the [Conn] it is given. The context is also applied to the
// connection as a deadline by the core, so an implementation need not watch
// it.
type Upgrader interface {
	// Protocol returns the protocol name used in errors: "smtp", "lmtp",
	// "imap" or "pop3".
	Protocol() string
	// Keyword returns the capability that advertises the upgrade:
	// "STARTTLS", or "STLS" for POP3.
	Keyword() string
	// Greet reads the server greeting. It returns an error matching
	// ErrGreetingRejected when the server refuses the session, ErrPreauth
	// for an IMAP PREAUTH greeting on a connection that is not TLS, and
	// ErrProtocol for anything malformed.
	Greet(ctx context.Context, c *Conn) (Greeting, error)
	// Discover asks for the capabilities (EHLO or LHLO, CAPABILITY, CAPA).
	// A well-formed refusal is returned as an error matching ErrRefused,
	// which before TLS the core treats as "nothing offered".
	Discover(ctx context.Context, c *Conn) (*Capabilities, error)
	// StartTLS sends the STARTTLS (STLS) command and reads its reply. It
	// returns nil only for the protocol's go-ahead, an error matching
	// ErrRefused for a refusal and ErrProtocol for anything else. It must
	// not read beyond the go-ahead line.
	StartTLS(ctx context.Context, c *Conn) error
}

// Config configures a client upgrade. Only TLSConfig is required.
type Config struct {
	// TLSConfig is cloned for the handshake; it must set ServerName (the
	// name verified) or InsecureSkipVerify. The name never comes from the
	// server's banner. See package tlsconf for constructors.
	TLSConfig *tls.Config
	// Policy decides what happens when STARTTLS is missing. The zero value
	// is Required.
	Policy Policy
	// Mode decides between STARTTLS and implicit TLS. The zero value, Auto,
	// picks implicit TLS when the remote port is the protocol's implicit
	// port (465, 993, 995).
	Mode Mode
	// Conn configures the line reader; nil means the defaults.
	Conn *Options
}

// Result describes an upgrade. Upgrade returns it even on error, filled as
// far as the upgrade got.
type Result struct {
	// Protocol is the Upgrader's protocol name.
	Protocol string
	// Mode is StartTLS or Implicit, never Auto.
	Mode Mode
	// Policy is the policy applied.
	Policy Policy
	// Greeting is the server greeting text, escaped. It was sent before TLS
	// in StartTLS mode: show it as untrusted text, never as an alert.
	Greeting string
	// Before are the capabilities seen before TLS; nil in Implicit mode.
	// They are untrusted and are reported for diagnosis only.
	Before *Capabilities
	// After are the capabilities discovered again inside TLS; nil without
	// TLS. Nothing of Before is carried into them.
	After *Capabilities
	// TLS is true once a handshake completed (verified, unless the
	// TLSConfig skips verification). It can be true on error, when the
	// discovery after the handshake failed.
	TLS bool
	// Plaintext is true when the Opportunistic policy continued without
	// TLS because STARTTLS was not advertised.
	Plaintext bool
	// State is the TLS connection state; zero without TLS.
	State tls.ConnectionState
	// Conn is the session connection to continue on: the line reader over
	// the *tls.Conn, or over the plaintext conn when Plaintext is true. It
	// may hold bytes already read (see Conn.Buffered); read through it
	// rather than the *tls.Conn to see them. Nil on error.
	Conn *Conn
	// Elapsed is the time the upgrade took.
	Elapsed time.Duration
}

// Upgrade runs a client STARTTLS upgrade on conn, which is fresh (nothing
// read from it yet):
//
//  1. read the greeting and discover capabilities (u.Greet, u.Discover);
//  2. apply cfg.Policy: without STARTTLS advertised, Required fails with
//     ErrNotOffered (STARTTLS is not sent), Always sends it anyway,
//     Opportunistic returns the plaintext session with Result.Plaintext;
//  3. send STARTTLS and read the go-ahead (u.StartTLS);
//  4. fail with ErrInjectedData if a single byte was buffered beyond it
//     (plaintext that arrives a moment later, where the server's first TLS
//     record belongs, fails the handshake and is reported as
//     ErrInjectedData too);
//  5. run tls.Client on conn itself with a clone of cfg.TLSConfig and
//     HandshakeContext;
//  6. discover capabilities again inside TLS, forgetting all of step 1.
//
// In Implicit mode the handshake comes first and the greeting and discovery
// happen inside TLS.
//
// ctx bounds every step, the handshake included: its deadline is set on
// conn, so a peer trickling bytes cannot extend it, and cancelling ctx
// interrupts any blocked read or write at once. On return ctx no longer
// touches conn, and conn's deadlines are cleared.
//
// A nil cfg, or one without TLSConfig, fails at StepConnect.
//
// On error conn is closed (fail closed) and the error is an [*Error] that
// matches, with errors.Is, one of ErrNotOffered, ErrRefused (with a
// [*ReplyError] for errors.As), ErrInjectedData, ErrPreauth,
// ErrGreetingRejected, ErrProtocol, ErrTooLarge, ErrHandshake (with the
// crypto/tls or crypto/x509 error, such as *tls.CertificateVerificationError,
// in the chain), context.DeadlineExceeded or context.Canceled (with
// os.ErrDeadlineExceeded) when ctx ended, or io.ErrUnexpectedEOF when the
// peer hung up. On success the caller owns the returned *tls.Conn (nil with
// Result.Plaintext) and the session continues on Result.Conn.
func Upgrade(ctx context.Context, conn net.Conn, u Upgrader, cfg *Config) (*tls.Conn, *Result, error) {
	start := time.Now()
	if cfg == nil {
		// No TLSConfig: run fails closed below, rather than a nil
		// dereference.
		cfg = &Config{}
	}
	res := &Result{Protocol: u.Protocol(), Policy: cfg.Policy}
	mode := cfg.Mode
	if mode == Auto {
		mode = resolveAddr(u.Protocol(), conn.RemoteAddr())
	}
	res.Mode = mode
	up := &upgrade{ctx: ctx, conn: conn, u: u, cfg: cfg, res: res}
	tlsConn, err := up.run()
	res.Elapsed = time.Since(start)
	if err != nil {
		res.Conn = nil
		return nil, res, err
	}
	return tlsConn, res, nil
}

// resolveAddr is Auto's Mode.Resolve for a conn's remote address; a TCP
// address is read without formatting it.
func resolveAddr(protocol string, addr net.Addr) Mode {
	switch a := addr.(type) {
	case nil:
		return StartTLS
	case *net.TCPAddr:
		if p, ok := WellKnownPorts(protocol); ok && p.Implicit != 0 && a.Port == p.Implicit {
			return Implicit
		}
		return StartTLS
	}
	return Auto.Resolve(protocol, addr.String())
}

type upgrade struct {
	ctx  context.Context
	conn net.Conn
	u    Upgrader
	cfg  *Config
	res  *Result
}

func (up *upgrade) run() (tlsConn *tls.Conn, err error) {
	if up.cfg.TLSConfig == nil {
		up.conn.Close()
		return nil, &Error{Protocol: up.u.Protocol(), Step: StepConnect, Err: errors.New("nil TLSConfig")}
	}
	w := watchContext(up.ctx, up.conn)
	defer func() {
		w.release()
		if err != nil {
			// The raw conn first: a TLS close_notify to a peer that has
			// stopped reading could block for seconds (crypto/tls allows
			// it five), and failing closed must not wait on the peer.
			up.conn.Close()
			if tlsConn != nil {
				tlsConn.Close()
			}
		}
	}()
	if up.res.Mode == Implicit {
		return up.implicit()
	}
	c := NewConn(up.conn, up.cfg.Conn)
	g, err := up.u.Greet(up.ctx, c)
	up.res.Greeting = g.Text
	if err != nil {
		return nil, up.fail(StepGreeting, nil, err)
	}
	before := g.Capabilities
	if before == nil {
		before, err = up.u.Discover(up.ctx, c)
		if errors.Is(err, ErrRefused) {
			// RFC 5321, Section 3.2 (EHLO refused), RFC 2449 (no CAPA):
			// nothing can have been offered.
			before, err = &Capabilities{}, nil
		}
		if err != nil {
			return nil, up.fail(StepDiscover, nil, err)
		}
	}
	up.res.Before = before
	if !before.Has(up.u.Keyword()) {
		switch up.cfg.Policy {
		case Opportunistic:
			up.res.Plaintext = true
			up.res.Conn = c
			return nil, nil
		case Always:
			// Send it anyway: a stripped capability list is exactly the
			// attack this policy defeats.
		default:
			return nil, up.fail(StepDiscover, ErrNotOffered, nil)
		}
	}
	if c.Buffered() > 0 {
		// The server spoke before being asked: whatever it is, it must not
		// be read as the answer to STARTTLS.
		return nil, up.fail(StepStartTLS, ErrInjectedData,
			fmt.Errorf("%d unsolicited bytes before the STARTTLS command", c.Buffered()))
	}
	if err := up.u.StartTLS(up.ctx, c); err != nil {
		return nil, up.fail(StepStartTLS, nil, err)
	}
	if n := c.Buffered(); n > 0 {
		return nil, up.fail(StepStartTLS, ErrInjectedData,
			fmt.Errorf("%d bytes buffered behind the go-ahead", n))
	}
	c.Mark("-- TLS --")
	tlsConn, err = up.handshake(true)
	if err != nil {
		return nil, err
	}
	// RFC 3207, Section 4.2; RFC 9051, Section 6.2.1; RFC 2595, Section 4:
	// discard knowledge obtained before TLS and ask again.
	tc := c
	tc.switchTo(tlsConn) // c's buffer is empty: checked above
	after, err := up.u.Discover(up.ctx, tc)
	if err != nil {
		return tlsConn, up.fail(StepRediscover, nil, err)
	}
	up.res.After = after
	up.res.Conn = tc
	return tlsConn, nil
}

func (up *upgrade) implicit() (*tls.Conn, error) {
	tlsConn, err := up.handshake(false)
	if err != nil {
		return nil, err
	}
	tc := NewConn(tlsConn, up.cfg.Conn)
	tc.Mark("-- TLS --")
	g, err := up.u.Greet(up.ctx, tc)
	up.res.Greeting = g.Text
	if err != nil {
		return tlsConn, up.fail(StepGreeting, nil, err)
	}
	after, err := up.u.Discover(up.ctx, tc)
	if err != nil {
		return tlsConn, up.fail(StepRediscover, nil, err)
	}
	up.res.After = after
	up.res.Conn = tc
	return tlsConn, nil
}

// handshake runs the client handshake; afterGoAhead is true on the
// STARTTLS path, where plaintext in place of the server's first record was
// injected (in implicit mode it is a server that does not speak TLS).
func (up *upgrade) handshake(afterGoAhead bool) (*tls.Conn, error) {
	tlsConn := tls.Client(up.conn, up.cfg.TLSConfig.Clone())
	if err := tlsConn.HandshakeContext(handshakeContext(up.ctx)); err != nil {
		kind := ErrHandshake
		if afterGoAhead {
			kind = handshakeKind(err)
		}
		return nil, up.fail(StepHandshake, kind, err)
	}
	up.res.TLS = true
	up.res.State = tlsConn.ConnectionState()
	return tlsConn, nil
}

// handshakeContext is the context given to HandshakeContext while the
// core's watch (watchContext) is applying ctx to the raw conn: it keeps
// ctx's values (ClientHelloInfo.Context and CertificateRequestInfo.Context
// see them) but not its cancellation, which the watch already enforces by
// setting a past deadline on the raw conn. crypto/tls would otherwise start
// a goroutine per handshake to watch the same context; measured, that
// goroutine cost about 1.5 % of a loopback upgrade.
//
// A context that can never be cancelled (no Done channel, such as
// context.Background) is passed as it is: crypto/tls starts no goroutine
// for it, and wrapping it would only cost an allocation.
func handshakeContext(ctx context.Context) context.Context {
	if ctx.Done() == nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

// handshakeKind classifies a failed handshake. Plaintext where the peer's
// first TLS record should be (crypto/tls's "first record does not look like
// a TLS handshake", the one RecordHeaderError that carries the conn) is
// injected data that arrived just too late for the buffer check: a forged
// line sent a moment after the go-ahead, or a command pipelined behind
// STARTTLS in a second write. It is reported as ErrInjectedData, still
// wrapping ErrHandshake and the crypto/tls error. Any other failure is
// ErrHandshake.
func handshakeKind(err error) error {
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) && rh.Conn != nil {
		return errInjectedHandshake
	}
	return ErrHandshake
}

// errInjectedHandshake matches both ErrInjectedData and ErrHandshake.
var errInjectedHandshake = &kindPair{ErrInjectedData, ErrHandshake}

type kindPair [2]error

func (k *kindPair) Error() string {
	return "data injected before tls: plaintext where the first tls record belongs"
}

func (k *kindPair) Unwrap() []error { return k[:] }

func (up *upgrade) fail(step Step, kind, err error) error {
	return stepError(up.ctx, up.u.Protocol(), step, kind, err)
}

// stepError builds the *Error for a failed step: it adds the context's error
// when the context ended (so that errors.Is finds context.DeadlineExceeded)
// and turns a bare io.EOF into io.ErrUnexpectedEOF.
func stepError(ctx context.Context, protocol string, step Step, kind, err error) error {
	return stepErrorLimit(ctx, time.Time{}, protocol, step, kind, err)
}

// stepErrorLimit is stepError for a step that ran under ctx bounded further
// by limit (when not zero), a deadline the caller set on the conn in place
// of deriving a context with it (see [Front.Upgrade]): once limit has
// passed the error carries context.DeadlineExceeded, exactly as if ctx had
// been derived with context.WithDeadline(ctx, limit).
func stepErrorLimit(ctx context.Context, limit time.Time, protocol string, step Step, kind, err error) error {
	if err != nil {
		if errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.ErrUnexpectedEOF
		}
		ctxErr := ctx.Err()
		if ctxErr == nil && !limit.IsZero() {
			// The derived context's timer would have fired at limit.
			if !time.Now().Before(limit) {
				ctxErr = context.DeadlineExceeded
			}
		} else if ctxErr == nil && errors.Is(err, os.ErrDeadlineExceeded) {
			// The conn's deadline is ctx's, and the poller may see it pass
			// before ctx's own timer has marked ctx done.
			if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
				ctxErr = context.DeadlineExceeded
			}
		}
		if ctxErr != nil && !errors.Is(err, ctxErr) && !isReply(err) {
			err = fmt.Errorf("%w: %w", ctxErr, err)
		}
	}
	if kind == nil && err != nil {
		var e *Error
		if errors.As(err, &e) {
			return err
		}
	}
	return &Error{Protocol: protocol, Step: step, Kind: kind, Err: err}
}

func isReply(err error) bool {
	var r *ReplyError
	var p ProtocolError
	return errors.As(err, &r) || errors.As(err, &p) || errors.Is(err, ErrTooLarge)
}

// aLongTimeAgo is a deadline in the past, which interrupts blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// WatchContext applies ctx to conn until the returned release function is
// called: ctx's deadline becomes conn's deadline, and ctx being cancelled
// sets a deadline in the past, which aborts any blocked Read or Write at
// once. release stops the watch, waits until the watcher can no longer touch
// conn, and clears conn's deadlines. It is the tool protocol packages use
// for their own blocking calls; [Upgrade] and [ServerUpgrade] call it
// themselves.
func WatchContext(ctx context.Context, conn net.Conn) (release func()) {
	return watchContext(ctx, conn).release
}

// watch is one WatchContext, in a single allocation (none of its own when
// it is a field of a [Front]); the core calls its methods directly.
type watch struct {
	conn     net.Conn
	stop     func() bool
	mu       sync.Mutex
	released bool
	aborted  bool
}

func watchContext(ctx context.Context, conn net.Conn) *watch {
	w := &watch{}
	w.start(ctx, conn)
	return w
}

// start begins watching ctx on conn; w is a zero watch.
func (w *watch) start(ctx context.Context, conn net.Conn) {
	w.conn = conn
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	if ctx.Done() != nil {
		w.stop = context.AfterFunc(ctx, w.abort)
	}
}

// abort interrupts blocked I/O on the conn, unless released.
func (w *watch) abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.released {
		w.aborted = true
		w.conn.SetDeadline(aLongTimeAgo)
	}
}

// setDeadline replaces the conn's deadline with d while the watch runs,
// unless ctx has already aborted it: under the watch's lock, an abort
// either came first and is kept, or comes later and overrides d.
func (w *watch) setDeadline(d time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.aborted && !w.released {
		w.conn.SetDeadline(d)
	}
}

func (w *watch) release() {
	if w.stop != nil {
		w.stop()
	}
	w.mu.Lock()
	w.released = true
	w.mu.Unlock()
	w.conn.SetDeadline(time.Time{})
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
		return nil, stepErrorLimit(ctx, limit, sw.Protocol, StepHandshake, handshakeKind(err), err)
	}
	return c.handOver(tlsConn), nil
}
