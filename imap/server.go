package imap

import (
	"cmp"
	"context"
	"errors"
	"net"
	"strings"

	"github.com/tlsup/tlsup/starttls"
)

// Texts of the server front's replies, for tests and for a caller's own
// loop. IMAP replies carry the command's tag, so these are the texts after
// "tag OK", "tag NO" or "tag BAD".
const (
	// TextGoAhead is the text of the tagged OK that tells the client to
	// start TLS (RFC 9051, Section 6.2.1). It never carries a CAPABILITY
	// response code: the client must ask again inside TLS.
	TextGoAhead = "Begin TLS negotiation now"
	// TextPrivacyRequired is the text of the tagged NO answering LOGIN and
	// AUTHENTICATE before TLS (RFC 5530, Section 3: PRIVACYREQUIRED).
	TextPrivacyRequired = "[PRIVACYREQUIRED] TLS required, use STARTTLS first"
	// TextTLSRequired is the text of the tagged BAD answering every other
	// command before TLS.
	TextTLSRequired = "Command not allowed before TLS, use STARTTLS first"
	// TextPipelined is the text of the tagged BAD answering STARTTLS when
	// bytes were pipelined behind it (RFC 9051, Section 6.2.1 and
	// CVE-2011-0411); the connection is closed after it.
	TextPipelined = "[CLIENTBUG] Commands pipelined behind STARTTLS, closing connection"
	// TextTLSActive is the text of the tagged BAD answering STARTTLS once
	// TLS is on.
	TextTLSActive = "TLS already active"
	// TextAuthenticated is the text of the tagged BAD answering STARTTLS in
	// the authenticated or selected state (RFC 9051, Section 6.2.1: the
	// command is valid only in the not authenticated state).
	TextAuthenticated = "STARTTLS not allowed once authenticated"
)

// DefaultExtensions returns the capabilities a server advertises in both
// states besides IMAP4rev1 unless told otherwise: LITERAL- (RFC 7888), which
// [ReadCommand] honours. It returns a fresh slice.
func DefaultExtensions() []string {
	return []string{"LITERAL-"}
}

// CapabilityOptions describes a server's capability list for
// [Capabilities]. The zero value is the list before TLS with the default
// extensions and no AUTH= capability.
type CapabilityOptions struct {
	// TLS is true once the session runs over TLS: STARTTLS and
	// LOGINDISABLED are then left out (RFC 9051, Section 6.2.1; RFC 2595,
	// Section 3.1) and the AUTH= mechanisms are advertised. Zero means
	// before TLS: STARTTLS and LOGINDISABLED are advertised and password
	// mechanisms are not.
	TLS bool
	// Extensions are the capabilities advertised in both states after
	// IMAP4rev1 ("IDLE", "SASL-IR"), in order. Entries that are not atoms,
	// and IMAP4rev1, STARTTLS, LOGINDISABLED and AUTH= entries, are dropped:
	// the state decides those. Zero means [DefaultExtensions].
	Extensions []string
	// Mechanisms are the SASL mechanisms advertised as AUTH=<mechanism>,
	// such as "PLAIN". Zero means none.
	Mechanisms []string
	// AllowPlaintextAuth advertises the mechanisms that carry a password in
	// the clear (PLAIN, LOGIN) before TLS too and leaves LOGINDISABLED out.
	// Zero means LOGINDISABLED before TLS and those mechanisms only once TLS
	// is on (RFC 9051, Section 6.2.3; RFC 8314, Section 3); other mechanisms
	// are advertised in both states.
	AllowPlaintextAuth bool
}

// Capabilities returns the capability list a server advertises, in order:
// IMAP4rev1, the extensions, then STARTTLS and LOGINDISABLED before TLS
// only, then AUTH=<mechanism> for the mechanisms allowed in the state. A nil
// opts is the zero value.
func Capabilities(opts *CapabilityOptions) *starttls.Capabilities {
	if opts == nil {
		opts = &CapabilityOptions{}
	}
	exts := opts.Extensions
	if exts == nil {
		exts = DefaultExtensions()
	}
	caps := starttls.NewCapabilities("IMAP4rev1")
	for _, e := range exts {
		if !isAtom(e) || starttls.EqualFold(e, "IMAP4rev1") || starttls.EqualFold(e, "STARTTLS") ||
			starttls.EqualFold(e, "LOGINDISABLED") || (len(e) >= 5 && starttls.EqualFold(e[:5], "AUTH=")) {
			continue
		}
		caps.Add(e)
	}
	if !opts.TLS {
		caps.Add("STARTTLS")
		if !opts.AllowPlaintextAuth {
			caps.Add("LOGINDISABLED")
		}
	}
	for _, m := range opts.Mechanisms {
		if !isAtom(m) || (!opts.TLS && !opts.AllowPlaintextAuth && IsPlaintextMechanism(m)) {
			continue
		}
		caps.Add("AUTH=" + m)
	}
	return caps
}

// IsPlaintextMechanism reports whether the SASL mechanism sends the password
// in the clear: PLAIN (RFC 4616) and LOGIN. Case is ignored.
func IsPlaintextMechanism(mech string) bool {
	return starttls.EqualFold(mech, "PLAIN") || starttls.EqualFold(mech, "LOGIN")
}

// CapabilityLine returns the untagged response listing caps: "* CAPABILITY
// IMAP4rev1 ..." (RFC 9051, Section 7.2.2).
func CapabilityLine(caps *starttls.Capabilities) string {
	return "* CAPABILITY " + strings.Join(caps.List(), " ")
}

// RefuseStartTLS returns the line answering STARTTLS (with the command's
// tag) in a server's own loop where it is not allowed: once TLS is on
// ([TextTLSActive]; RFC 9051, Section 6.2.1 forbids a second negotiation),
// or else in the authenticated or selected state ([TextAuthenticated]).
func RefuseStartTLS(tag string, tlsOn bool) string {
	if tlsOn {
		return tag + " BAD " + TextTLSActive
	}
	return tag + " BAD " + TextAuthenticated
}

// Server is the IMAP pre-TLS front of a server that requires TLS (RFC 9051,
// Section 6.2.1; RFC 2595; RFC 8314). [Server.Serve] greets, answers
// CAPABILITY, NOOP, LOGOUT and STARTTLS, refuses LOGIN and AUTHENTICATE with
// NO [PRIVACYREQUIRED] and every other command with BAD, and hands back the
// connection once TLS is up, in the not authenticated state with nothing of
// the plaintext session carried over.
//
// The zero value needs only Options.TLSConfig. A Server may serve many
// connections at once; it is not modified by Serve.
type Server struct {
	// Options holds the TLS configuration, the hostname of the greeting,
	// and the timeouts and bounds of the front. See starttls.ServerOptions
	// for the zero values.
	Options starttls.ServerOptions
	// Extensions are the capabilities advertised before TLS besides
	// IMAP4rev1, STARTTLS and LOGINDISABLED, as for
	// [CapabilityOptions.Extensions]. Zero means [DefaultExtensions]. No
	// AUTH= capability is ever advertised by the front: it refuses
	// authentication before TLS.
	Extensions []string
}

var _ starttls.ServerUpgrader = (*Server)(nil)

// Protocol returns "imap".
func (s *Server) Protocol() string { return "imap" }

// Serve runs the pre-TLS front on conn, a freshly accepted connection,
// through [starttls.Serve]:
//
//   - it sends the greeting "* OK [CAPABILITY ...] <hostname> ready" with
//     the list of [Capabilities] before TLS (STARTTLS, LOGINDISABLED, no
//     AUTH=);
//   - CAPABILITY is answered with the same list, NOOP with OK, LOGOUT with
//     "* BYE" and OK, after which the connection is closed and Serve fails
//     with starttls.ErrQuit; any of them with arguments gets BAD;
//   - STARTTLS with an argument gets BAD; bare STARTTLS hands over to
//     [starttls.ServerUpgrade]: bytes pipelined behind it get a tagged BAD
//     ([TextPipelined]) and the connection is closed (ErrInjectedData),
//     otherwise the tagged OK [TextGoAhead] and the handshake, bounded by
//     Options.HandshakeTimeout;
//   - LOGIN and AUTHENTICATE get NO [TextPrivacyRequired], every other
//     command BAD [TextTLSRequired]; a synchronizing literal is never
//     invited, a non-synchronizing one is read (bounded) and dropped, as
//     [ReadCommand] reads them (a literal inside a parenthesised list is
//     refused with BAD, and closes the connection when non-synchronizing,
//     since the client sends it anyway); every NO and BAD counts against
//     Options.MaxErrors, and the first one over gets "* BYE" instead and
//     the connection is closed (ErrProtocol);
//   - a line over the bound, or a non-synchronizing literal over 4096
//     octets (the LITERAL- bound, RFC 7888) or a fifth one in a command,
//     gets "* BYE" and the connection is closed (ErrTooLarge); a client
//     silent for Options.IdleTimeout, or still in plaintext after
//     Options.PreTLSTimeout, gets "* BYE" and is closed
//     (os.ErrDeadlineExceeded); an HTTP request line is closed without a
//     reply (ErrProtocol, see [starttls.IsHTTPRequest]).
//
// ctx bounds the whole front, the handshake included; cancelling it aborts
// any blocked read or write at once.
//
// On success Serve returns the session Conn over the *tls.Conn
// ([starttls.Conn.TLS]); the caller owns it, and its loop must expect a
// fresh CAPABILITY (RFC 9051, Section 6.2.1: the client discards what it
// learned before TLS). On error conn is closed and the error is a
// *starttls.Error matching starttls.ErrQuit, ErrConfig, ErrInjectedData,
// ErrTooLarge, ErrProtocol, ErrHandshake, context.DeadlineExceeded or
// context.Canceled, os.ErrDeadlineExceeded, or io.ErrUnexpectedEOF when the
// client hung up.
func (s *Server) Serve(ctx context.Context, conn net.Conn) (*starttls.Conn, error) {
	if s == nil {
		s = &Server{}
	}
	d := &dialogue{
		host: cmp.Or(s.Options.Hostname, "localhost"),
		caps: strings.Join(Capabilities(&CapabilityOptions{Extensions: s.Extensions}).List(), " "),
	}
	return starttls.Serve(ctx, conn, d, &s.Options)
}

// Bounds of the literals a client may send to the front unasked: nothing
// before TLS needs a literal, and LITERAL- (RFC 7888) promises no more than
// 4096 octets per non-synchronizing literal.
const (
	frontMaxLiteral  = 4096
	frontMaxLiterals = 4
)

// dialogue is a Server's pre-TLS dialogue, for starttls.Serve.
type dialogue struct {
	host string
	caps string // the capability list, space-separated
}

var (
	_ starttls.ServerDialogue = (*dialogue)(nil)
	_ starttls.Redactor       = (*dialogue)(nil)
)

func (d *dialogue) Protocol() string { return "imap" }

func (d *dialogue) Redact(line []byte) (int, bool) { return redact(line) }

// Greeting carries the capabilities in a response code (RFC 9051, Section
// 7.1.1), which saves the client a round trip before STARTTLS.
func (d *dialogue) Greeting() []string {
	return []string{"* OK [CAPABILITY " + d.caps + "] " + d.host + " ready"}
}

func (d *dialogue) Farewell(reason starttls.CloseReason) []string {
	switch reason {
	case starttls.CloseTooLong:
		return []string{"* BYE Command line too long"}
	case starttls.CloseIdle:
		// RFC 9051, Section 7.1.5: the server may close an idle session
		// after an untagged BYE.
		return []string{"* BYE Autologout; idle for too long"}
	}
	return []string{"* BYE Too many invalid commands"}
}

// Command reads the rest of the command (its literals) from c, then
// answers it.
func (d *dialogue) Command(_ context.Context, c *starttls.Conn, line []byte) (starttls.Reply, error) {
	cmd, err := readCommand(c, string(line), &CommandOptions{MaxLiteral: frontMaxLiteral, MaxLiterals: frontMaxLiterals})
	var cerr *CommandError
	switch {
	case errors.As(err, &cerr) && cerr.Close:
		if errors.Is(cerr, starttls.ErrTooLarge) {
			return starttls.Reply{Lines: []string{"* BYE Literal too large"}, Close: cerr.Err}, nil
		}
		return starttls.Reply{Lines: []string{"* BYE Protocol error"}, Close: cerr.Err}, nil
	case errors.As(err, &cerr):
		// The command could not be read whole: answer by name as if it
		// had arguments, which no command answered here may have.
		cmd = &Command{Tag: cerr.Tag, Name: cerr.Name, Args: []string{""}}
	case err != nil:
		return starttls.Reply{}, err
	}
	switch {
	case cmd.Tag == "":
		return refuse("* BAD Invalid tag"), nil
	case cmd.Name == "":
		return refuse(cmd.Tag + " BAD Missing or invalid command name"), nil
	case cmd.Name == "STARTTLS" && len(cmd.Args) == 0:
		return starttls.Reply{GoAhead: cmd.Tag + " OK " + TextGoAhead, Refusal: cmd.Tag + " BAD " + TextPipelined}, nil
	case (cmd.Name == "STARTTLS" || cmd.Name == "CAPABILITY" || cmd.Name == "NOOP" || cmd.Name == "LOGOUT") &&
		len(cmd.Args) > 0:
		return refuse(cmd.Tag + " BAD " + cmd.Name + " takes no arguments"), nil
	case cmd.Name == "CAPABILITY":
		return starttls.Reply{Lines: []string{"* CAPABILITY " + d.caps, cmd.Tag + " OK CAPABILITY completed"}}, nil
	case cmd.Name == "NOOP":
		return starttls.Reply{Lines: []string{cmd.Tag + " OK NOOP completed"}}, nil
	case cmd.Name == "LOGOUT":
		// RFC 9051, Section 6.1.3: BYE, then the tagged OK.
		return starttls.Reply{Lines: []string{"* BYE " + d.host + " logging out", cmd.Tag + " OK LOGOUT completed"}, Close: starttls.ErrQuit}, nil
	case cmd.Name == "LOGIN" || cmd.Name == "AUTHENTICATE":
		return refuse(cmd.Tag + " NO " + TextPrivacyRequired), nil
	}
	return refuse(cmd.Tag + " BAD " + TextTLSRequired), nil
}

func refuse(line string) starttls.Reply {
	return starttls.Reply{Lines: []string{line}, Refused: true}
}
