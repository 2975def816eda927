package smtp

import (
	"context"
	"errors"
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
	return append([]string(nil), defaultExtensions[:]...)
}

// defaultExtensions backs [DefaultExtensions]; the server front reads it
// without copying.
var defaultExtensions = [...]string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"}

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

// Serve runs the pre-TLS front on conn, a freshly accepted connection:
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
//     after Options.MaxErrors of them the next refused command gets a 421
//     and the connection is closed (ErrProtocol);
//   - a line over the bound gets [ReplyLineTooLong] and the connection is
//     closed (ErrTooLarge); a client silent for Options.IdleTimeout gets a
//     421 and is closed (os.ErrDeadlineExceeded).
//
// ctx bounds the whole front, the handshake included; cancelling it aborts
// any blocked read or write at once.
//
// On success Serve returns the session Conn over the *tls.Conn
// ([starttls.Conn.TLS]); the caller owns it, and its loop must expect a
// fresh EHLO (RFC 3207, Section 4.2). Nothing read before TLS is carried
// over. On error conn is closed and the error is a *starttls.Error matching
// starttls.ErrQuit, ErrInjectedData, ErrTooLarge, ErrProtocol, ErrHandshake,
// context.DeadlineExceeded or context.Canceled, os.ErrDeadlineExceeded, or
// io.ErrUnexpectedEOF when the client hung up.
func (s *Server) Serve(ctx context.Context, conn net.Conn) (tc *starttls.Conn, err error) {
	if s == nil {
		s = &Server{}
	}
	f := &front{Front: starttls.NewFront(ctx, conn, s.Protocol(), starttls.RedactFunc(redact), &s.Options), s: s, host: s.Options.HostnameOrDefault()}
	defer func() { f.Finish(err) }()
	return f.run()
}

// front is one run of a Server's pre-TLS dialogue; the core's Front holds
// the context, deadlines, error count and transition.
type front struct {
	*starttls.Front
	s    *Server
	host string
}

// reply writes a reply; a failed write ends the front.
func (f *front) reply(code int, texts ...string) error {
	if err := WriteReply(f.Conn(), code, texts...); err != nil {
		return f.Fail(nil, err)
	}
	return nil
}

// tooMany ends the front for a client over MaxErrors refused commands,
// with a 421 (RFC 5321, Section 3.8).
func (f *front) tooMany() error {
	return f.TooManyErrors("421 4.7.0 " + f.host + " Too many errors, closing connection")
}

// ehlo writes the EHLO (LHLO) reply before TLS: the hostname, then the
// lines of Capabilities(&CapabilityOptions{Extensions: f.s.Extensions}),
// that is the configured extensions but STARTTLS and AUTH, then STARTTLS.
// It writes them as WriteReply would, without building the set and the
// slice of lines first. As WriteReply, it checks every line before writing
// the first.
func (f *front) ehlo() error {
	exts := f.s.Extensions
	if exts == nil {
		exts = defaultExtensions[:]
	}
	if err := starttls.CheckLine(f.host); err != nil {
		return f.Fail(nil, err)
	}
	for _, e := range exts {
		if stateKeyword(e) {
			continue
		}
		if err := starttls.CheckLine(e); err != nil {
			return f.Fail(nil, err)
		}
	}
	// RFC 5321, Section 4.1.1.1: the first line carries the domain, one
	// keyword a line follows; RFC 3207, Section 4: STARTTLS is advertised
	// before TLS.
	if err := f.WriteLine("250-" + f.host); err != nil {
		return err
	}
	for _, e := range exts {
		if stateKeyword(e) {
			continue
		}
		if err := f.WriteLine("250-" + e); err != nil {
			return err
		}
	}
	return f.WriteLine("250 STARTTLS")
}

func (f *front) run() (*starttls.Conn, error) {
	if err := f.Start(); err != nil {
		return nil, err
	}
	kind := "ESMTP"
	greet := "EHLO"
	if f.s.LMTP {
		kind, greet = "LMTP", "LHLO"
	}
	// RFC 5321, Section 4.3.2: the 220 greeting opens the session.
	if err := f.reply(220, f.host+" "+kind+" ready"); err != nil {
		return nil, err
	}
	for {
		raw, err := f.ReadLine()
		if err != nil {
			switch {
			case errors.Is(err, starttls.ErrTooLarge):
				return nil, f.Leave(starttls.ErrTooLarge, err, ReplyLineTooLong)
			case f.Idle(err):
				// RFC 5321, Section 4.5.3.2.7: the server may close an
				// idle session, with a 421 (Section 3.8).
				return nil, f.Leave(nil, err, "421 4.4.2 "+f.host+" Idle timeout, closing connection")
			}
			return nil, f.Fail(nil, err)
		}
		verb, arg, _ := strings.Cut(string(raw), " ")
		verb = starttls.UpperASCII(verb)
		arg = strings.TrimSpace(arg)
		over := false
		switch {
		case verb == greet:
			if arg == "" {
				// RFC 5321, Section 4.1.1.1: the domain is required.
				err = f.WriteLine("501 5.5.4 Syntax: " + greet + " hostname")
				over = f.Refused()
				break
			}
			err = f.ehlo()
		case verb == "HELO" && !f.s.LMTP:
			if arg == "" {
				err = f.WriteLine("501 5.5.4 Syntax: HELO hostname")
				over = f.Refused()
				break
			}
			err = f.reply(250, f.host)
		case (verb == "HELO" || verb == "EHLO") && f.s.LMTP:
			// RFC 2033, Section 4.1: an LMTP session opens with LHLO.
			err = f.WriteLine("500 5.5.1 LMTP: use LHLO")
			over = f.Refused()
		case verb == "NOOP", verb == "RSET":
			err = f.WriteLine("250 2.0.0 OK")
		case verb == "QUIT":
			return nil, f.Leave(starttls.ErrQuit, nil, "221 2.0.0 "+f.host+" closing connection")
		case verb == "STARTTLS" && arg != "":
			err = f.WriteLine(ReplyStartTLSSyntax)
			over = f.Refused()
		case verb == "STARTTLS":
			return f.Upgrade(ReplyGoAhead, ReplyPipelined)
		default:
			if f.Refused() {
				return nil, f.tooMany()
			}
			err = f.WriteLine(ReplyTLSRequired)
		}
		if err != nil {
			return nil, err
		}
		if over {
			return nil, f.tooMany()
		}
	}
}
