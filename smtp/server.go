package smtp

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/tlsup/tlsup/starttls"
)

// Replies of the server front and of a caller's post-TLS loop.
const (
	// ReplyTLSRequired answers every command but EHLO, HELO (LHLO), NOOP,
	// RSET, QUIT and STARTTLS before TLS (RFC 3207, Section 4: 530 "Must
	// issue a STARTTLS command first").
	ReplyTLSRequired = "530 5.7.0 Must issue a STARTTLS command first"
	// ReplyGoAhead is the go-ahead to STARTTLS (RFC 3207, Section 4).
	ReplyGoAhead = "220 2.0.0 Ready to start TLS"
	// ReplyStartTLSSyntax answers STARTTLS with an argument (RFC 3207,
	// Section 4: 501 "Syntax error (no parameters allowed)").
	ReplyStartTLSSyntax = "501 5.5.4 Syntax error (no parameters allowed)"
	// ReplyTLSActive answers STARTTLS once TLS is on: the command is out of
	// sequence (RFC 5321, Section 4.2.4: 503 "Bad sequence of commands";
	// RFC 3207, Section 4.2: STARTTLS is not advertised after TLS).
	ReplyTLSActive = "503 5.5.1 TLS already active"
	// ReplyPipelined answers STARTTLS when commands were pipelined behind
	// it (RFC 2920, Section 3.1 lets STARTTLS only end a group; RFC 3207,
	// Section 5 and CVE-2011-0411): the connection is closed after it.
	ReplyPipelined = "554 5.5.0 Commands pipelined behind STARTTLS, closing connection"
	// ReplyLineTooLong answers a command line over the bound (RFC 5321,
	// Section 4.5.3.1.4 and 4.2.2: 500 5.5.2); the connection is closed
	// after it.
	ReplyLineTooLong = "500 5.5.2 Line too long, closing connection"
)

// DefaultExtensions returns the EHLO keywords a server advertises in both
// states unless told otherwise: PIPELINING (RFC 2920), 8BITMIME (RFC 6152)
// and ENHANCEDSTATUSCODES (RFC 2034). It returns a fresh slice.
func DefaultExtensions() []string {
	return []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"}
}

// stateKeyword reports whether an extension line names STARTTLS or AUTH,
// the keywords that the state decides rather than the configured list.
func stateKeyword(ext string) bool {
	kw, _, _ := strings.Cut(ext, " ")
	return starttls.EqualFold(kw, "STARTTLS") || starttls.EqualFold(kw, "AUTH")
}

// CapabilityOptions describes a server's EHLO (LHLO) keyword list for
// [Capabilities]. The zero value is the list before TLS with the default
// extensions and no AUTH.
type CapabilityOptions struct {
	// TLS is true once the session runs over TLS: STARTTLS is then left out
	// (RFC 3207, Section 4.2) and the AUTH mechanisms are advertised. Zero
	// means before TLS: STARTTLS is advertised and password mechanisms are
	// not.
	TLS bool
	// Extensions are the keyword lines advertised in both states
	// ("SIZE 10240000"), in order. Entries whose keyword is STARTTLS or
	// AUTH are dropped: the state decides those. Zero means
	// [DefaultExtensions].
	Extensions []string
	// Mechanisms are the SASL mechanisms of the AUTH keyword (RFC 4954),
	// such as "PLAIN". Zero means no AUTH keyword.
	Mechanisms []string
	// AllowPlaintextAuth advertises the mechanisms that carry a password in
	// the clear (PLAIN, LOGIN) before TLS too. Zero means they are offered
	// only once TLS is on (RFC 8314, Section 3; RFC 4954, Section 4 warns
	// against exposing passwords); other mechanisms are advertised in both
	// states.
	AllowPlaintextAuth bool
}

// Capabilities returns the EHLO (LHLO) keyword lines a server advertises, in
// order, without the first (domain) line: the extensions, then STARTTLS
// before TLS only, then AUTH with the mechanisms allowed in the state (no
// AUTH line when none is). A nil opts is the zero value.
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
		if stateKeyword(e) {
			continue
		}
		caps.Add(e)
	}
	if !opts.TLS {
		caps.Add("STARTTLS")
	}
	var mechs []string
	for _, m := range opts.Mechanisms {
		if !opts.TLS && !opts.AllowPlaintextAuth && IsPlaintextMechanism(m) {
			continue
		}
		mechs = append(mechs, m)
	}
	if len(mechs) > 0 {
		caps.Add("AUTH " + strings.Join(mechs, " "))
	}
	return caps
}

// IsPlaintextMechanism reports whether the SASL mechanism sends the password
// in the clear: PLAIN (RFC 4616) and LOGIN. Case is ignored.
func IsPlaintextMechanism(mech string) bool {
	return starttls.EqualFold(mech, "PLAIN") || starttls.EqualFold(mech, "LOGIN")
}

// WriteReply writes one reply with code and one line per text: "code-text"
// on all lines but the last, "code text" on the last (RFC 5321,
// Section 4.2.1). No text writes the bare code. A text containing CR, LF or
// NUL fails with starttls.ErrUnsafeArgument before anything is written.
func WriteReply(c *starttls.Conn, code int, texts ...string) error {
	if code < 200 || code > 599 {
		return fmt.Errorf("smtp: reply code %d out of range", code)
	}
	for _, t := range texts {
		if err := starttls.CheckLine(t); err != nil {
			return err
		}
	}
	prefix := strconv.Itoa(code)
	if len(texts) == 0 {
		return c.WriteLine(prefix)
	}
	for i, t := range texts {
		sep := "-"
		if i == len(texts)-1 {
			sep = " "
		}
		if err := c.WriteLine(prefix + sep + t); err != nil {
			return err
		}
	}
	return nil
}

// Server is the SMTP (or LMTP) pre-TLS front of a server that requires TLS
// (RFC 3207, RFC 8314 for submission). [Server.Serve] greets, answers EHLO
// (LHLO), HELO, NOOP, RSET, QUIT and STARTTLS, refuses every other command
// with [ReplyTLSRequired], and hands back the connection once TLS is up,
// with a clean session: no EHLO name, no transaction, no authentication.
//
// The zero value needs only Options.TLSConfig. A Server may serve many
// connections at once; it is not modified by Serve.
type Server struct {
	// Options holds the TLS configuration, the hostname of the greeting and
	// EHLO reply, and the timeouts and bounds of the front. See
	// starttls.ServerOptions for the zero values.
	Options starttls.ServerOptions
	// LMTP selects LMTP (RFC 2033): the greeting says LMTP, LHLO replaces
	// EHLO and HELO, and the protocol name in errors is "lmtp". Zero means
	// SMTP.
	LMTP bool
	// Extensions are the EHLO keyword lines advertised before TLS besides
	// STARTTLS, as for [CapabilityOptions.Extensions]. Zero means
	// [DefaultExtensions]. AUTH is never advertised by the front: it
	// refuses AUTH before TLS.
	Extensions []string
}

var _ starttls.ServerUpgrader = (*Server)(nil)

// Protocol returns "smtp", or "lmtp" when LMTP is set.
func (s *Server) Protocol() string {
	if s != nil && s.LMTP {
		return "lmtp"
	}
	return "smtp"
}

// Serve runs the pre-TLS front on conn, a freshly accepted connection,
// through [starttls.Serve]:
//
//   - it sends the 220 greeting with Options.Hostname;
//   - EHLO (LHLO for LMTP) is answered with the hostname and the keywords
//     of [Capabilities] before TLS (STARTTLS, no AUTH); HELO with the
//     hostname alone; NOOP and RSET with 250; QUIT with 221, after which
//     the connection is closed and Serve fails with starttls.ErrQuit;
//   - STARTTLS with an argument gets [ReplyStartTLSSyntax]; bare STARTTLS
//     hands over to [starttls.ServerUpgrade]: bytes pipelined behind it get
//     [ReplyPipelined] and the connection is closed (ErrInjectedData),
//     otherwise [ReplyGoAhead] and the handshake, bounded by
//     Options.HandshakeTimeout;
//   - every other command, unknown ones included, gets [ReplyTLSRequired];
//     so do EHLO and HELO without a domain (501) and HELO and EHLO in LMTP
//     (500); these refused commands count against Options.MaxErrors, and
//     the first one over gets a 421 instead of its reply and the
//     connection is closed (ErrProtocol);
//   - a line over the bound gets [ReplyLineTooLong] and the connection is
//     closed (ErrTooLarge); a client silent for Options.IdleTimeout, or
//     still in plaintext after Options.PreTLSTimeout, gets a 421 and is
//     closed (os.ErrDeadlineExceeded); an HTTP request line is closed
//     without a reply (ErrProtocol, see [starttls.IsHTTPRequest]).
//
// ctx bounds the whole front, the handshake included; cancelling it aborts
// any blocked read or write at once.
//
// On success Serve returns the session Conn over the *tls.Conn
// ([starttls.Conn.TLS]); the caller owns it, and its loop must expect a
// fresh EHLO (RFC 3207, Section 4.2). Nothing read before TLS is carried
// over. On error conn is closed and the error is a *starttls.Error matching
// starttls.ErrQuit, ErrConfig, ErrInjectedData, ErrTooLarge, ErrProtocol,
// ErrHandshake, context.DeadlineExceeded or context.Canceled,
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

func (d *dialogue) Protocol() string { return d.s.Protocol() }

func (d *dialogue) Redact(line []byte) (int, bool) { return redact(line) }

// Greeting is the 220 greeting (RFC 5321, Section 4.3.2).
func (d *dialogue) Greeting() []string {
	if d.s.LMTP {
		return []string{"220 " + d.host + " LMTP ready"}
	}
	return []string{"220 " + d.host + " ESMTP ready"}
}

// Farewell is a 421 (RFC 5321, Section 3.8) but for a line too long.
func (d *dialogue) Farewell(reason starttls.CloseReason) []string {
	switch reason {
	case starttls.CloseTooLong:
		return []string{ReplyLineTooLong}
	case starttls.CloseIdle:
		// RFC 5321, Section 4.5.3.2.7: the server may close an idle
		// session.
		return []string{"421 4.4.2 " + d.host + " Idle timeout, closing connection"}
	}
	return []string{"421 4.7.0 " + d.host + " Too many errors, closing connection"}
}

func (d *dialogue) Command(_ context.Context, _ *starttls.Conn, line []byte) (starttls.Reply, error) {
	verb, arg, _ := strings.Cut(string(line), " ")
	verb = starttls.UpperASCII(verb)
	arg = strings.TrimSpace(arg)
	greet := "EHLO"
	if d.s.LMTP {
		greet = "LHLO"
	}
	switch {
	case verb == greet || (verb == "HELO" && !d.s.LMTP):
		if arg == "" {
			// RFC 5321, Section 4.1.1.1: the domain is required.
			return refuse("501 5.5.4 Syntax: " + verb + " hostname"), nil
		}
		if verb == "HELO" {
			return starttls.Reply{Lines: []string{"250 " + d.host}}, nil
		}
		return starttls.Reply{Lines: d.ehlo()}, nil
	case verb == "HELO" || verb == "EHLO":
		// RFC 2033, Section 4.1: an LMTP session opens with LHLO.
		return refuse("500 5.5.1 LMTP: use LHLO"), nil
	case verb == "NOOP", verb == "RSET":
		return starttls.Reply{Lines: []string{"250 2.0.0 OK"}}, nil
	case verb == "QUIT":
		return starttls.Reply{Lines: []string{"221 2.0.0 " + d.host + " closing connection"}, Close: starttls.ErrQuit}, nil
	case verb == "STARTTLS" && arg != "":
		return refuse(ReplyStartTLSSyntax), nil
	case verb == "STARTTLS":
		return starttls.Reply{GoAhead: ReplyGoAhead, Refusal: ReplyPipelined}, nil
	}
	return refuse(ReplyTLSRequired), nil
}

func refuse(line string) starttls.Reply {
	return starttls.Reply{Lines: []string{line}, Refused: true}
}

// ehlo returns the EHLO (LHLO) reply before TLS (RFC 5321, Section
// 4.1.1.1: the domain, then one keyword a line): the hostname and the lines
// of Capabilities(&CapabilityOptions{Extensions: d.s.Extensions}), the
// configured extensions but STARTTLS and AUTH, then STARTTLS (RFC 3207,
// Section 4).
func (d *dialogue) ehlo() []string {
	caps := Capabilities(&CapabilityOptions{Extensions: d.s.Extensions}).List()
	lines := make([]string, 0, len(caps)+1)
	lines = append(lines, d.host)
	lines = append(lines, caps...)
	for i := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		lines[i] = "250" + sep + lines[i]
	}
	return lines
}
