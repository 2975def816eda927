package starttls

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"
)

// Greeting is what an [Upgrader] learned from the server's greeting.
type Greeting struct {
	// Text is the greeting text, escaped with [Escape]: for a line-based
	// protocol the text after the code or status of the first line; ""
	// for a protocol without a greeting.
	Text string
	// Capabilities are capabilities announced inside the greeting (an IMAP
	// [CAPABILITY ...] response code, a ManageSieve greeting), nil when
	// there were none. Before TLS they are used only for the decision to
	// send STARTTLS and never outlive TLS.
	Capabilities *Capabilities
}

// Upgrader speaks one protocol's side of a client STARTTLS upgrade. The core
// ([Upgrade]) drives it and owns the policy, the empty-buffer check, the
// handshake and the context; an Upgrader only reads and writes its
// protocol's messages on the [Conn] it is given. The context is also
// applied to the connection as a deadline by the core, so an implementation
// need not watch it.
//
// An Upgrader may also implement [ImplicitPorter] (its implicit-TLS port,
// for Mode Auto), [Redactor] (which of its lines carry credentials, for
// transcripts) and [OfferChecker] (when one keyword does not say whether
// the upgrade is offered). ExampleUpgrader plugs in a protocol the core has
// never heard of.
type Upgrader interface {
	// Protocol returns the protocol's name, used in errors and results.
	Protocol() string
	// Keyword returns the capability that advertises the upgrade
	// ("STARTTLS", "STLS"). "" means the protocol advertises nothing: the
	// core then sends the upgrade request under every policy, and
	// StartTLS reports a missing upgrade with ErrNotOffered.
	Keyword() string
	// Greet reads the server greeting. It returns an error matching
	// ErrGreetingRejected when the server refuses the session, ErrPreauth
	// for a greeting that makes the upgrade impossible on a connection
	// that is not TLS, and ErrProtocol for anything malformed.
	Greet(ctx context.Context, c *Conn) (Greeting, error)
	// Discover asks for the capabilities. It is called before TLS (unless
	// the greeting carried them) and again inside TLS, where [Conn.TLS] is
	// not nil. A well-formed refusal is returned as an error matching
	// ErrRefused, which before TLS the core treats as "nothing offered".
	Discover(ctx context.Context, c *Conn) (*Capabilities, error)
	// StartTLS sends the upgrade request and reads its answer. It returns
	// nil only for the protocol's go-ahead, an error matching ErrRefused
	// for a refusal, ErrNotOffered for an answer that says the server has
	// no TLS at all, and ErrProtocol for anything else. It must not read
	// beyond the go-ahead.
	StartTLS(ctx context.Context, c *Conn) error
}

// OfferChecker is implemented by an [Upgrader] whose upgrade is not
// advertised by a single capability keyword (an FTP FEAT line "AUTH TLS",
// where the keyword "AUTH" alone says nothing). The core calls Offered
// instead of checking caps.Has(u.Keyword()).
type OfferChecker interface {
	// Offered reports whether caps, discovered before TLS, advertise the
	// upgrade.
	Offered(caps *Capabilities) bool
}

// Config configures a client upgrade. Only TLSConfig is required.
type Config struct {
	// TLSConfig is cloned for the handshake; it must set ServerName (the
	// name verified) or InsecureSkipVerify, or the upgrade fails with
	// ErrConfig before any I/O. The name never comes from the server's
	// banner. See package tlsconf for constructors.
	TLSConfig *tls.Config
	// Policy decides what happens when STARTTLS is missing. The zero value
	// is Required.
	Policy Policy
	// Mode decides between STARTTLS and implicit TLS. The zero value, Auto,
	// picks implicit TLS when the remote port is the Upgrader's implicit
	// port (see [ImplicitPorter]).
	Mode Mode
	// Conn configures the line reader; nil means the defaults. When its
	// Redactor is nil and the Upgrader implements [Redactor], the
	// Upgrader's is used.
	Conn *Options
	// Logger, when not nil, receives one record per upgrade at Info
	// (protocol, mode, policy, remote, TLS version, cipher suite, resumed,
	// server name, elapsed, outcome), the steps at Debug, and the redacted
	// transcript at [LevelTranscript]. Zero means no logging.
	Logger *slog.Logger
	// Dialer makes Dial's connection; anything with DialContext (a
	// *net.Dialer, a SOCKS5 dialer from golang.org/x/net/proxy, an HTTP
	// CONNECT or custom route). The name verified is never the route's:
	// it is TLSConfig.ServerName or the host of the address given to
	// Dial. Zero means a net.Dialer. Upgrade ignores it.
	Dialer ContextDialer
}

// ContextDialer is what [Config.Dialer] needs: net.Dialer and
// golang.org/x/net/proxy's dialers have it.
type ContextDialer interface {
	// DialContext connects to addr on network ("tcp"), bounded by ctx.
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
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
	// TLS because the upgrade was not offered.
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
	// Timings are the durations of the steps (Dial's connect included).
	Timings Timings
	// Resumed is true when the handshake resumed a TLS session (see
	// tlsconf.SessionCache); State.DidResume says the same.
	Resumed bool
}

// Upgrade runs a client STARTTLS upgrade on conn, which is fresh (nothing
// read from it yet):
//
//  1. read the greeting and discover capabilities (u.Greet, u.Discover);
//  2. apply cfg.Policy: without the upgrade advertised, Required fails with
//     ErrNotOffered (nothing more is sent), Always sends it anyway,
//     Opportunistic returns the plaintext session with Result.Plaintext;
//  3. send STARTTLS and read the go-ahead (u.StartTLS); an answer that
//     says "no TLS here" (ErrNotOffered, for protocols that advertise
//     nothing) is decided by the policy as in step 2;
//  4. switch with [ClientUpgrade]'s checks: fail with ErrInjectedData if a
//     single byte is buffered beyond the go-ahead, run tls.Client on conn
//     itself with a clone of cfg.TLSConfig and HandshakeContext;
//  5. discover capabilities again inside TLS, forgetting all of step 1.
//
// In Implicit mode the handshake comes first and the greeting and discovery
// happen inside TLS.
//
// ctx bounds every step, the handshake included: its deadline is set on
// conn, so a peer trickling bytes cannot extend it, and cancelling ctx
// interrupts any blocked read or write at once. A ctx already done when
// Upgrade is called fails it before anything is read or written. On return
// ctx no longer touches conn, and conn's deadlines are cleared.
//
// A nil cfg, a nil TLSConfig or one that sets neither ServerName nor
// InsecureSkipVerify fails with ErrConfig at StepConfig before any I/O.
//
// On error conn is closed (fail closed) and the error is an [*Error] that
// matches, with errors.Is, one of ErrConfig, ErrNotOffered, ErrRefused (with
// a [*ReplyError] for errors.As), ErrInjectedData, ErrPreauth,
// ErrGreetingRejected, ErrProtocol, ErrTooLarge, ErrHandshake (with the
// crypto/tls or crypto/x509 error, such as *tls.CertificateVerificationError,
// in the chain), ErrUnsafeArgument (text from the Upgrader's own
// settings, such as a name to send, that cannot go on the wire),
// context.DeadlineExceeded or context.Canceled (with os.ErrDeadlineExceeded)
// when ctx ended, or io.ErrUnexpectedEOF when the peer hung up (by closing
// or by a reset). On success the caller owns the
// returned *tls.Conn and the session continues on Result.Conn; closing
// either closes the connection. With Result.Plaintext (Opportunistic only)
// the *tls.Conn is not nil but a placeholder: its handshake never ran
// (ConnectionState().HandshakeComplete is false), Close closes the
// plaintext connection, and reads and writes on it fail with ErrNoTLS
// without sending a byte; the session is Result.Conn. So a deferred Close
// is safe under every policy, and test Result.Plaintext (or Result.TLS),
// never the pointer, to know whether the session is encrypted.
func Upgrade(ctx context.Context, conn net.Conn, u Upgrader, cfg *Config) (*tls.Conn, *Result, error) {
	return upgradeConn(ctx, conn, u, cfg, time.Now(), 0)
}

// upgradeConn is Upgrade for a conn that Dial connected from start, in
// connect.
func upgradeConn(ctx context.Context, conn net.Conn, u Upgrader, cfg *Config, start time.Time, connect time.Duration) (*tls.Conn, *Result, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	res := &Result{Protocol: u.Protocol(), Policy: c.Policy}
	res.Mode = resolveConnMode(c.Mode, u, conn.RemoteAddr())
	if r, ok := u.(Redactor); ok && (c.Conn == nil || c.Conn.Redactor == nil) {
		var opts Options
		if c.Conn != nil {
			opts = *c.Conn
		}
		opts.Redactor = r
		c.Conn = &opts
	}
	res.Timings.Connect = connect
	ts := traceFrom(ctx)
	if c.Logger != nil {
		if steps := logSteps(ctx, c.Logger, res.Protocol); steps != nil {
			ts = append(ts[:len(ts):len(ts)], steps)
		}
		c.Conn = logTranscript(ctx, c.Logger, res.Protocol, c.Conn)
	}
	up := &upgrade{ctx: ctx, conn: conn, u: u, cfg: &c, res: res, trace: ts, watch: stopwatch{last: time.Now()}}
	tlsConn, err := up.run()
	res.Elapsed = time.Since(start)
	res.Resumed = res.State.DidResume
	if err != nil {
		res.Conn = nil
		tlsConn = nil
	} else if res.Plaintext {
		tlsConn = noTLSConn(conn)
	}
	ts.upgradeDone(res, err)
	if c.Logger != nil {
		logUpgrade(ctx, c.Logger, conn.RemoteAddr(), res, err)
	}
	return tlsConn, res, err
}

// ErrNoTLS is what reads and writes on the *tls.Conn returned with a
// plaintext session (Result.Plaintext, Opportunistic policy only) fail
// with: that *tls.Conn is a placeholder, safe to close, that never carries
// a byte.
var ErrNoTLS = errors.New("starttls: no tls: the session continued in plaintext (Result.Plaintext); it goes on over Result.Conn")

// noTLSConn returns the placeholder *tls.Conn of a plaintext session: its
// handshake never ran (ConnectionState().HandshakeComplete is false), its
// Close closes conn, and its reads and writes fail with ErrNoTLS before a
// byte reaches the peer, so that code written for the TLS outcome (a
// deferred Close, a write) neither panics on a nil pointer nor leaks
// plaintext.
func noTLSConn(conn net.Conn) *tls.Conn {
	// The name is never verified: no handshake gets as far as a byte.
	return tls.Client(noTLS{conn}, &tls.Config{ServerName: "plaintext.invalid"})
}

// noTLS is the conn under the placeholder *tls.Conn: Close and deadlines
// reach the plaintext conn, reads and writes do not.
type noTLS struct{ net.Conn }

func (noTLS) Read([]byte) (int, error)  { return 0, ErrNoTLS }
func (noTLS) Write([]byte) (int, error) { return 0, ErrNoTLS }

// checkConfig reports why cfg cannot verify a server, before any I/O.
func checkConfig(cfg *tls.Config) error {
	switch {
	case cfg == nil:
		return fmt.Errorf("%w: nil TLSConfig", ErrConfig)
	case cfg.ServerName == "" && !cfg.InsecureSkipVerify:
		return fmt.Errorf("%w: TLSConfig sets neither ServerName (the name to verify) nor InsecureSkipVerify", ErrConfig)
	}
	return nil
}

type upgrade struct {
	ctx   context.Context
	conn  net.Conn
	u     Upgrader
	cfg   *Config
	res   *Result
	trace traces
	watch stopwatch
}

func (up *upgrade) run() (tlsConn *tls.Conn, err error) {
	if err := checkConfig(up.cfg.TLSConfig); err != nil {
		up.conn.Close()
		return nil, &Error{Protocol: up.u.Protocol(), Step: StepConfig, Kind: ErrConfig, Err: err}
	}
	first := StepGreeting
	if up.res.Mode == Implicit {
		first = StepHandshake
	}
	if err := up.ctx.Err(); err != nil {
		up.conn.Close()
		return nil, up.fail(first, nil, err)
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
	c := NewConn(up.conn, up.cfg.Conn)
	if up.res.Mode == Implicit {
		return up.implicit(c)
	}
	g, err := up.u.Greet(up.ctx, c)
	up.res.Greeting = g.Text
	up.res.Timings.Greeting = up.watch.lap()
	up.trace.greetingRead(g.Text, err)
	if err != nil {
		return nil, up.fail(StepGreeting, nil, silentAnswer(up.ctx, c, err))
	}
	before := g.Capabilities
	if before == nil {
		before, err = up.u.Discover(up.ctx, c)
		if errors.Is(err, ErrRefused) {
			// RFC 5321, Section 3.2 (EHLO refused), RFC 2449 (no CAPA):
			// nothing can have been offered.
			before, err = &Capabilities{}, nil
		}
		up.res.Timings.Discovery = up.watch.lap()
		up.trace.capabilitiesDiscovered(false, before, err)
		if err != nil {
			return nil, up.fail(StepDiscover, nil, err)
		}
	}
	up.res.Before = before
	if !offered(up.u, before) {
		switch up.cfg.Policy {
		case Opportunistic:
			up.trace.policyDecided(false, DecidePlaintext)
			up.res.Plaintext = true
			up.res.Conn = c
			return nil, nil
		case Always:
			// Send it anyway: a stripped capability list is exactly the
			// attack this policy defeats.
			up.trace.policyDecided(false, DecideUpgrade)
		default:
			up.trace.policyDecided(false, DecideFail)
			return nil, up.fail(StepDiscover, ErrNotOffered, nil)
		}
	} else {
		up.trace.policyDecided(true, DecideUpgrade)
	}
	if c.Buffered() > 0 {
		// The server spoke before being asked: whatever it is, it must not
		// be read as the answer to STARTTLS.
		return nil, up.fail(StepStartTLS, ErrInjectedData,
			fmt.Errorf("%d unsolicited bytes before the STARTTLS command", c.Buffered()))
	}
	up.watch.lap()
	up.trace.startTLSStart()
	err = up.u.StartTLS(up.ctx, c)
	up.res.Timings.StartTLS = up.watch.lap()
	up.trace.goAheadRead(err)
	if err != nil {
		if errors.Is(err, ErrNotOffered) {
			// Only a protocol that advertises nothing learns here that
			// there is no TLS; after an advertisement it is a failure.
			if up.cfg.Policy == Opportunistic && advertisesNothing(up.u) {
				up.res.Plaintext = true
				up.res.Conn = c
				return nil, nil
			}
			if err == ErrNotOffered {
				err = nil
			}
			return nil, up.fail(StepStartTLS, ErrNotOffered, err)
		}
		return nil, up.fail(StepStartTLS, nil, err)
	}
	tlsConn, err = clientSwitch(up.ctx, c, up.u.Protocol(), up.cfg.TLSConfig, false, up.trace)
	up.res.Timings.Handshake = up.watch.lap()
	if err != nil {
		return nil, err
	}
	up.handshakeDone(tlsConn)
	// RFC 3207, Section 4.2; RFC 9051, Section 6.2.1; RFC 2595, Section 4:
	// discard knowledge obtained before TLS and ask again.
	after, err := up.u.Discover(up.ctx, c)
	up.res.Timings.Rediscovery = up.watch.lap()
	up.trace.capabilitiesDiscovered(true, after, err)
	if err != nil {
		return tlsConn, up.fail(StepRediscover, nil, err)
	}
	up.res.After = after
	up.res.Conn = c
	return tlsConn, nil
}

// offered reports whether caps advertise u's upgrade.
func offered(u Upgrader, caps *Capabilities) bool {
	if o, ok := u.(OfferChecker); ok {
		return o.Offered(caps)
	}
	kw := u.Keyword()
	return kw == "" || caps.Has(kw)
}

// advertisesNothing reports whether u's protocol has no capability that
// advertises the upgrade, so that only the answer to the request can say
// it is missing.
func advertisesNothing(u Upgrader) bool {
	_, checks := u.(OfferChecker)
	return !checks && u.Keyword() == ""
}

func (up *upgrade) implicit(c *Conn) (*tls.Conn, error) {
	tlsConn, err := clientSwitch(up.ctx, c, up.u.Protocol(), up.cfg.TLSConfig, true, up.trace)
	up.res.Timings.Handshake = up.watch.lap()
	if err != nil {
		return nil, err
	}
	up.handshakeDone(tlsConn)
	g, err := up.u.Greet(up.ctx, c)
	up.res.Greeting = g.Text
	up.res.Timings.Greeting = up.watch.lap()
	up.trace.greetingRead(g.Text, err)
	if err != nil {
		return tlsConn, up.fail(StepGreeting, nil, err)
	}
	after, err := up.u.Discover(up.ctx, c)
	up.res.Timings.Rediscovery = up.watch.lap()
	up.trace.capabilitiesDiscovered(true, after, err)
	if err != nil {
		return tlsConn, up.fail(StepRediscover, nil, err)
	}
	up.res.After = after
	up.res.Conn = c
	return tlsConn, nil
}

func (up *upgrade) handshakeDone(tlsConn *tls.Conn) {
	up.res.TLS = true
	up.res.State = tlsConn.ConnectionState()
}

func (up *upgrade) fail(step Step, kind, err error) error {
	return stepError(up.ctx, up.u.Protocol(), step, kind, err)
}

// ClientSwitch describes the client half of one STARTTLS transition, for
// [ClientUpgrade].
type ClientSwitch struct {
	// Protocol names the protocol in errors; "" is allowed.
	Protocol string
	// TLSConfig is cloned for the handshake. It must set ServerName (the
	// name verified) or InsecureSkipVerify.
	TLSConfig *tls.Config
}

// ClientUpgrade is the client half of STARTTLS for a caller that runs the
// plaintext dialogue itself (its own loop read the greeting, sent EHLO and
// STARTTLS) or speaks a protocol that is not line-based. Call it right after
// the go-ahead was read from c:
//
//  1. if a single byte is buffered in c beyond the go-ahead, it fails with
//     ErrInjectedData: those bytes came before TLS and would be read as if
//     they came over it;
//  2. it runs tls.Client on c's wrapped conn (never on a buffered reader)
//     with a clone of sw.TLSConfig and HandshakeContext(ctx);
//  3. it moves c onto the *tls.Conn: c's reads and writes go through TLS
//     from then on, and nothing read before TLS survives.
//
// ctx bounds the handshake, and a ctx already done fails before anything is
// sent. A nil sw, a nil TLSConfig or one that sets neither ServerName nor
// InsecureSkipVerify fails with ErrConfig before any I/O.
//
// On error c's conn is closed (fail closed) and the error is an [*Error]
// that matches ErrConfig, ErrInjectedData, ErrHandshake (with the
// crypto/tls or crypto/x509 error in the chain; a peer that answers the
// ClientHello in plaintext is quoted), context.DeadlineExceeded or
// context.Canceled, or io.ErrUnexpectedEOF. On success the caller owns the
// *tls.Conn (also [Conn.TLS]) and continues on c; ctx no longer touches it.
// What to discover again inside TLS is the caller's business: RFC 3207,
// Section 4.2 and its kin say to forget everything learned before.
func ClientUpgrade(ctx context.Context, c *Conn, sw *ClientSwitch) (tlsConn *tls.Conn, err error) {
	raw := c.NetConn()
	var protocol string
	var cfg *tls.Config
	if sw != nil {
		protocol, cfg = sw.Protocol, sw.TLSConfig
	}
	if err := checkConfig(cfg); err != nil {
		raw.Close()
		return nil, &Error{Protocol: protocol, Step: StepConfig, Kind: ErrConfig, Err: err}
	}
	if err := ctx.Err(); err != nil {
		raw.Close()
		return nil, stepError(ctx, protocol, StepHandshake, nil, err)
	}
	w := watchContext(ctx, raw)
	ts := traceFrom(ctx)
	defer func() {
		w.release()
		if err != nil {
			raw.Close()
		}
		ts.upgradeDone(nil, err)
	}()
	return clientSwitch(ctx, c, protocol, cfg, false, ts)
}

// clientSwitch is the body of [ClientUpgrade], run while a watch applies
// ctx to c's conn; the caller releases it and closes the conn on error.
// implicit is true when no plaintext came before (RFC 8314).
func clientSwitch(ctx context.Context, c *Conn, protocol string, cfg *tls.Config, implicit bool, ts traces) (*tls.Conn, error) {
	if n := c.Buffered(); n > 0 {
		return nil, stepError(ctx, protocol, StepStartTLS, ErrInjectedData,
			fmt.Errorf("%d bytes buffered behind the go-ahead", n))
	}
	if !implicit {
		c.Mark("-- TLS --")
	}
	tlsConn := tls.Client(c.NetConn(), cfg.Clone())
	ts.handshakeStart()
	err := tlsConn.HandshakeContext(handshakeContext(ctx))
	if ts != nil {
		ts.handshakeDone(tlsConn.ConnectionState(), err)
	}
	if err != nil {
		return nil, stepError(ctx, protocol, StepHandshake, ErrHandshake, plaintextAnswer(err, implicit))
	}
	if implicit {
		c.Mark("-- TLS --")
	}
	c.switchTo(tlsConn) // c's buffer is empty: checked above
	return tlsConn, nil
}

// handshakeContext is the context given to HandshakeContext while the
// core's watch (watchContext) is applying ctx to the raw conn: it keeps
// ctx's values (ClientHelloInfo.Context and CertificateRequestInfo.Context
// see them) but not its cancellation, which the watch already enforces by
// setting a past deadline on the raw conn; crypto/tls would otherwise watch
// the same context a second time.
func handshakeContext(ctx context.Context) context.Context {
	if ctx.Done() == nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

// silentAnswer explains a greeting that never came: a port that stays
// silent until the deadline is most often one that waits for a ClientHello
// (implicit TLS on a port Mode Auto does not know). Auto does not probe for
// it: sending a ClientHello to a server that greets late (a delayed SMTP
// banner, a pregreet test) would cost the session, and a silent port is
// as likely a filtered one. The error says so instead. Other errors are
// returned as they are.
func silentAnswer(ctx context.Context, c *Conn, err error) error {
	if !c.silent() {
		return err
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return err
	}
	return fmt.Errorf("the server sent nothing: it may expect implicit TLS (Mode Implicit): %w", err)
}

// plaintextAnswer explains a handshake that met plaintext where the peer's
// first TLS record belongs (crypto/tls's RecordHeaderError, which carries
// the conn): it quotes the peer's first bytes, escaped, and says what they
// usually mean. On the STARTTLS path it is a server that answered the
// ClientHello in plaintext (an error reply, a web server's page) or bytes
// injected just after the go-ahead; in implicit mode, a port that speaks
// plaintext first. Either way TLS never starts. Other errors are returned
// as they are.
func plaintextAnswer(err error, implicit bool) error {
	var rh tls.RecordHeaderError
	if !errors.As(err, &rh) || rh.Conn == nil {
		return err
	}
	// What else the peer sent at once, for the quote; bounded in size and
	// in time, and the conn is closed right after.
	head := rh.RecordHeader[:]
	more := make([]byte, 59)
	rh.Conn.SetReadDeadline(time.Now().Add(25 * time.Millisecond))
	n, _ := rh.Conn.Read(more)
	quote := Escape(string(append(append([]byte(nil), head...), more[:n]...)))
	if implicit {
		return fmt.Errorf(`the server spoke plaintext first ("%s"): this port expects STARTTLS, not implicit TLS: %w`, quote, err)
	}
	return fmt.Errorf(`plaintext where the first tls record belongs ("%s"): %w`, quote, err)
}
