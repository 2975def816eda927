package pop3

import (
	"cmp"
	"context"
	"net"
	"strings"

	"github.com/tlsup/tlsup/starttls"
)

// Replies of the server front and of a caller's post-TLS loop.
const (
	// ReplyGoAhead is the go-ahead to STLS (RFC 2595, Section 4).
	ReplyGoAhead = "+OK Begin TLS negotiation"
	// ReplySTLSSyntax answers STLS with an argument (RFC 2595, Section 4:
	// the command takes none).
	ReplySTLSSyntax = "-ERR STLS takes no arguments"
	// ReplyTLSActive answers STLS once TLS is on (RFC 2595, Section 4,
	// whose example reply this is; STLS is not advertised after TLS).
	ReplyTLSActive = "-ERR Command not permitted when TLS active"
	// ReplyTransaction answers STLS in the TRANSACTION state (RFC 2595,
	// Section 4: STLS is valid only in the AUTHORIZATION state).
	ReplyTransaction = "-ERR STLS not permitted in TRANSACTION state"
	// ReplyPipelined answers STLS when commands were pipelined behind it
	// (RFC 2595, Section 4 and CVE-2011-0411): the connection is closed
	// after it.
	ReplyPipelined = "-ERR Commands pipelined behind STLS, closing connection"
	// ReplyAuthTLSRequired answers USER, PASS, APOP and AUTH before TLS,
	// with the AUTH response code (RFC 3206, Section 4) so that a client
	// does not retry the same credentials in plaintext.
	ReplyAuthTLSRequired = "-ERR [AUTH] TLS required, use STLS first"
	// ReplyTLSRequired answers every other command but CAPA, NOOP, QUIT and
	// STLS before TLS.
	ReplyTLSRequired = "-ERR Command not permitted before TLS, use STLS first"
	// ReplyLineTooLong answers a command line over the bound; the
	// connection is closed after it.
	ReplyLineTooLong = "-ERR Line too long, closing connection"
)

// DefaultExtensions returns the CAPA lines a server advertises in both
// states unless told otherwise: UIDL (RFC 2449, Section 6.6), RESP-CODES
// (Section 6.4) and AUTH-RESP-CODE (RFC 3206, Section 6), the last since
// the front answers with the [AUTH] response code. It returns a fresh
// slice.
func DefaultExtensions() []string {
	return []string{"UIDL", "RESP-CODES", "AUTH-RESP-CODE"}
}

// CapabilityOptions describes a server's CAPA list for [Capabilities]. The
// zero value is the list before TLS with the default extensions, no USER
// and no SASL.
type CapabilityOptions struct {
	// TLS is true once the session runs over TLS: STLS is then left out
	// (RFC 2595, Section 4) and USER and the SASL mechanisms are
	// advertised. Zero means before TLS: STLS is advertised and password
	// mechanisms are not.
	TLS bool
	// Extensions are the CAPA lines advertised in both states ("TOP",
	// "PIPELINING", "EXPIRE NEVER"), in order. Entries whose keyword is
	// STLS, USER or SASL, and entries containing control characters, are
	// dropped: the state decides those. Zero means [DefaultExtensions].
	Extensions []string
	// UserPass advertises USER (RFC 2449, Section 6.5): USER and PASS are
	// accepted. Like a plaintext SASL mechanism it is advertised only once
	// TLS is on unless AllowPlaintextAuth is set. Zero means not
	// advertised.
	UserPass bool
	// Mechanisms are the SASL mechanisms of the SASL line (RFC 2449,
	// Section 6.3; RFC 5034), such as "PLAIN". Zero means no SASL line.
	Mechanisms []string
	// AllowPlaintextAuth advertises USER and the mechanisms that carry a
	// password in the clear (PLAIN, LOGIN) before TLS too. Zero means they
	// are offered only once TLS is on (RFC 8314, Section 3); other
	// mechanisms are advertised in both states.
	AllowPlaintextAuth bool
}

// Capabilities returns the CAPA lines a server advertises, in order: the
// extensions, then STLS before TLS only, then USER and the SASL line with
// the mechanisms allowed in the state (no SASL line when none is). A nil
// opts is the zero value.
func Capabilities(opts *CapabilityOptions) *starttls.Capabilities {
	if opts == nil {
		opts = &CapabilityOptions{}
	}
	exts := opts.Extensions
	if exts == nil {
		exts = DefaultExtensions()
	}
	caps := &starttls.Capabilities{}
	for _, e := range exts {
		kw, _, _ := strings.Cut(e, " ")
		if e == "" || e == "." || starttls.IndexControl(e) >= 0 || starttls.EqualFold(kw, "STLS") ||
			starttls.EqualFold(kw, "USER") || starttls.EqualFold(kw, "SASL") {
			continue
		}
		caps.Add(e)
	}
	if !opts.TLS {
		caps.Add("STLS")
	}
	plain := opts.TLS || opts.AllowPlaintextAuth
	if opts.UserPass && plain {
		caps.Add("USER")
	}
	var mechs []string
	for _, m := range opts.Mechanisms {
		if m == "" || strings.ContainsAny(m, " ") || starttls.IndexControl(m) >= 0 || (!plain && IsPlaintextMechanism(m)) {
			continue
		}
		mechs = append(mechs, m)
	}
	if len(mechs) > 0 {
		caps.Add("SASL " + strings.Join(mechs, " "))
	}
	return caps
}

// IsPlaintextMechanism reports whether the SASL mechanism sends the password
// in the clear: PLAIN (RFC 4616) and LOGIN. Case is ignored.
func IsPlaintextMechanism(mech string) bool {
	return starttls.EqualFold(mech, "PLAIN") || starttls.EqualFold(mech, "LOGIN")
}

// RefuseSTLS returns the reply to STLS in a server's own loop where it is
// not allowed: [ReplyTLSActive] once TLS is on, else [ReplyTransaction]
// (the TRANSACTION state).
func RefuseSTLS(tlsOn bool) string {
	if tlsOn {
		return ReplyTLSActive
	}
	return ReplyTransaction
}

// WriteMultiline writes a multi-line response (RFC 1939, Section 3): the
// status line, each line with a leading "." doubled, and the terminating
// ".". A line containing CR, LF or NUL fails with
// starttls.ErrUnsafeArgument before anything is written.
func WriteMultiline(c *starttls.Conn, status string, lines []string) error {
	if err := starttls.CheckLine(status); err != nil {
		return err
	}
	for _, l := range lines {
		if err := starttls.CheckLine(l); err != nil {
			return err
		}
	}
	for _, l := range multiline(status, lines) {
		if err := c.WriteLine(l); err != nil {
			return err
		}
	}
	return nil
}

// multiline returns the lines of a multi-line response: status, lines with
// a leading "." doubled, and ".".
func multiline(status string, lines []string) []string {
	out := make([]string, 0, len(lines)+2)
	out = append(out, status)
	for _, l := range lines {
		if strings.HasPrefix(l, ".") {
			l = "." + l
		}
		out = append(out, l)
	}
	return append(out, ".")
}

// Server is the POP3 pre-TLS front of a server that requires TLS (RFC 2595,
// Section 4; RFC 8314). [Server.Serve] greets, answers CAPA, NOOP, QUIT and
// STLS, refuses USER, PASS, APOP and AUTH with [ReplyAuthTLSRequired] and
// every other command with [ReplyTLSRequired], and hands back the
// connection once TLS is up, in the AUTHORIZATION state with nothing of the
// plaintext session carried over.
//
// The zero value needs only Options.TLSConfig. A Server may serve many
// connections at once; it is not modified by Serve.
type Server struct {
	// Options holds the TLS configuration, the hostname of the greeting,
	// and the timeouts and bounds of the front. See starttls.ServerOptions
	// for the zero values.
	Options starttls.ServerOptions
	// Extensions are the CAPA lines advertised before TLS besides STLS, as
	// for [CapabilityOptions.Extensions]. Zero means [DefaultExtensions].
	// USER and SASL are never advertised by the front: it refuses
	// authentication before TLS.
	Extensions []string
}

var _ starttls.ServerUpgrader = (*Server)(nil)

// Protocol returns "pop3".
func (s *Server) Protocol() string { return "pop3" }

// Serve runs the pre-TLS front on conn, a freshly accepted connection,
// through [starttls.Serve]:
//
//   - it sends the greeting "+OK <hostname> POP3 ready", without an APOP
//     timestamp;
//   - CAPA is answered with the list of [Capabilities] before TLS (STLS, no
//     USER, no SASL), NOOP with +OK, QUIT with +OK, after which the
//     connection is closed and Serve fails with starttls.ErrQuit; CAPA,
//     NOOP or QUIT with arguments gets -ERR;
//   - STLS with an argument gets [ReplySTLSSyntax]; bare STLS hands over to
//     [starttls.ServerUpgrade]: bytes pipelined behind it get
//     [ReplyPipelined] and the connection is closed (ErrInjectedData),
//     otherwise [ReplyGoAhead] and the handshake, bounded by
//     Options.HandshakeTimeout;
//   - USER, PASS, APOP and AUTH get [ReplyAuthTLSRequired], every other
//     command [ReplyTLSRequired]; every -ERR counts against
//     Options.MaxErrors, and the first one over gets "-ERR Too many
//     errors" instead and the connection is closed (ErrProtocol);
//   - a line over the bound gets [ReplyLineTooLong] and the connection is
//     closed (ErrTooLarge); a client silent for Options.IdleTimeout, or
//     still in plaintext after Options.PreTLSTimeout, is closed without a
//     reply (RFC 1939, Section 3: the autologout timer)
//     (os.ErrDeadlineExceeded); an HTTP request line is closed without a
//     reply (ErrProtocol, see [starttls.IsHTTPRequest]).
//
// ctx bounds the whole front, the handshake included; cancelling it aborts
// any blocked read or write at once.
//
// On success Serve returns the session Conn over the *tls.Conn
// ([starttls.Conn.TLS]); the caller owns it, and its loop must expect a
// fresh CAPA (RFC 2595, Section 4: the client discards what it learned
// before TLS). On error conn is closed and the error is a *starttls.Error
// matching starttls.ErrQuit, ErrConfig, ErrInjectedData, ErrTooLarge,
// ErrProtocol, ErrHandshake, context.DeadlineExceeded or context.Canceled,
// os.ErrDeadlineExceeded, or io.ErrUnexpectedEOF when the client hung up.
func (s *Server) Serve(ctx context.Context, conn net.Conn) (*starttls.Conn, error) {
	if s == nil {
		s = &Server{}
	}
	return starttls.Serve(ctx, conn, &dialogue{s: s, host: cmp.Or(s.Options.Hostname, "localhost")}, &s.Options)
}

// dialogue is a Server's pre-TLS dialogue, for starttls.Serve.
type dialogue struct {
	s    *Server
	host string
}

var (
	_ starttls.ServerDialogue = (*dialogue)(nil)
	_ starttls.Redactor       = (*dialogue)(nil)
)

func (d *dialogue) Protocol() string { return "pop3" }

func (d *dialogue) Redact(line []byte) (int, bool) { return redact(line) }

// Greeting opens the AUTHORIZATION state (RFC 1939, Section 4). No APOP
// timestamp: APOP is refused before TLS, and nothing said before TLS may be
// relied on after it.
func (d *dialogue) Greeting() []string {
	return []string{"+OK " + d.host + " POP3 ready"}
}

func (d *dialogue) Farewell(reason starttls.CloseReason) []string {
	switch reason {
	case starttls.CloseTooLong:
		return []string{ReplyLineTooLong}
	case starttls.CloseIdle:
		// RFC 1939, Section 3: an idle client is logged out by closing
		// the connection, without a response.
		return nil
	}
	return []string{"-ERR Too many errors, closing connection"}
}

func (d *dialogue) Command(_ context.Context, _ *starttls.Conn, line []byte) (starttls.Reply, error) {
	cmd, err := ParseCommand(string(line))
	switch {
	case err != nil:
		return refuse("-ERR Invalid command"), nil
	case cmd.Name == "STLS" && cmd.Rest == "":
		return starttls.Reply{GoAhead: ReplyGoAhead, Refusal: ReplyPipelined}, nil
	case cmd.Name == "STLS":
		return refuse(ReplySTLSSyntax), nil
	case (cmd.Name == "CAPA" || cmd.Name == "NOOP" || cmd.Name == "QUIT") && cmd.Rest != "":
		return refuse("-ERR " + cmd.Name + " takes no arguments"), nil
	case cmd.Name == "CAPA":
		// RFC 2449, Section 5.
		caps := Capabilities(&CapabilityOptions{Extensions: d.s.Extensions}).List()
		return starttls.Reply{Lines: multiline("+OK Capability list follows", caps)}, nil
	case cmd.Name == "NOOP":
		return starttls.Reply{Lines: []string{"+OK"}}, nil
	case cmd.Name == "QUIT":
		// RFC 1939, Section 4: QUIT in the AUTHORIZATION state.
		return starttls.Reply{Lines: []string{"+OK " + d.host + " POP3 server signing off"}, Close: starttls.ErrQuit}, nil
	case cmd.Name == "USER" || cmd.Name == "PASS" || cmd.Name == "APOP" || cmd.Name == "AUTH":
		return refuse(ReplyAuthTLSRequired), nil
	}
	return refuse(ReplyTLSRequired), nil
}

func refuse(line string) starttls.Reply {
	return starttls.Reply{Lines: []string{line}, Refused: true}
}
