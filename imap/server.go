package imap

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
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
		if !srvIsAtom(e) || starttls.EqualFold(e, "IMAP4rev1") || starttls.EqualFold(e, "STARTTLS") ||
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
		if !srvIsAtom(m) || (!opts.TLS && !opts.AllowPlaintextAuth && IsPlaintextMechanism(m)) {
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

// Bounds of [ReadCommand].
const (
	// DefaultMaxCommandLiteral is the largest literal ReadCommand accepts
	// when CommandOptions.MaxLiteral is zero: 64 KiB.
	DefaultMaxCommandLiteral = 64 << 10
	// DefaultMaxCommandLiterals is the most literals one command may carry when
	// CommandOptions.MaxLiterals is zero.
	DefaultMaxCommandLiterals = 16
)

// CommandOptions configures [ReadCommand]. A nil *CommandOptions means the
// defaults.
type CommandOptions struct {
	// MaxLiteral bounds each literal, in octets. Zero means
	// DefaultMaxCommandLiteral.
	MaxLiteral int64
	// MaxLiterals bounds the literals of one command. Zero means
	// DefaultMaxCommandLiterals.
	MaxLiterals int
	// SyncLiterals lets ReadCommand accept synchronizing literals ("{n}"):
	// it writes the continuation request "+ Ready for literal data" and
	// reads the literal (RFC 9051, Section 4.3). Zero means they are
	// refused: ReadCommand writes nothing and returns a *CommandError, the
	// client does not send the literal, and the caller answers the command
	// with a tagged NO or BAD. Non-synchronizing literals ("{n+}", RFC 7888)
	// are read in both cases, since the client sends them unasked.
	SyncLiterals bool
}

// Command is one IMAP command as read by [ReadCommand] (RFC 9051,
// Section 2.2.1).
type Command struct {
	// Tag is the client's tag.
	Tag string
	// Name is the command name in ASCII upper case ("LOGIN", "UID").
	Name string
	// Args are the arguments in order: an atom, number or other token as
	// sent ("INBOX", "1:*", "BODY[]"), a parenthesised list as sent
	// including its parentheses, a quoted string unquoted and unescaped, a
	// literal's content. NIL is returned as the atom "NIL".
	Args []string
}

// CommandError is a command line [ReadCommand] could not accept. The caller
// answers it with "Tag BAD ..." ("* BAD ..." when Tag is empty), or, when
// Close is set, with "* BYE ..." and closes the connection.
type CommandError struct {
	// Tag is the command's tag, "" when the line had no valid tag.
	Tag string
	// Name is the command name in upper case, "" when it was not read.
	Name string
	// Close is true when the connection cannot be brought back in step: a
	// line over the bound, or a command that cannot be accepted (over a
	// bound, malformed) announcing a non-synchronizing literal, which the
	// client sends anyway.
	Close bool
	// Err is the cause: a starttls.ProtocolError, or an error matching
	// starttls.ErrTooLarge.
	Err error
}

// Error returns "imap: bad command: " and the reason.
func (e *CommandError) Error() string {
	return "imap: bad command: " + strings.TrimPrefix(e.Err.Error(), "starttls: ")
}

// Unwrap returns the cause.
func (e *CommandError) Unwrap() error { return e.Err }

// ReadCommand reads one command from c: the tag, the name and the
// arguments, following literals onto the next lines (RFC 9051, Section 4.3;
// RFC 7888 for "{n+}"). A literal is bounded before anything is allocated
// for it, and so is the number of literals. Literals are accepted only as
// whole arguments, not inside a parenthesised list.
//
// A malformed command, a refused synchronizing literal or one over the
// bound is a *CommandError; a line over c's bound is a *CommandError with
// Close set. I/O errors (io.EOF, a deadline) are returned as they are; a
// literal cut short is io.ErrUnexpectedEOF.
func ReadCommand(c *starttls.Conn, opts *CommandOptions) (*Command, error) {
	maxLiteral, maxLiterals, sync := int64(DefaultMaxCommandLiteral), DefaultMaxCommandLiterals, false
	if opts != nil {
		if opts.MaxLiteral > 0 {
			maxLiteral = opts.MaxLiteral
		}
		if opts.MaxLiterals > 0 {
			maxLiterals = opts.MaxLiterals
		}
		sync = opts.SyncLiterals
	}
	line, err := c.ReadLine()
	if err != nil {
		if errors.Is(err, starttls.ErrTooLarge) {
			return nil, &CommandError{Close: true, Err: err}
		}
		return nil, err
	}
	return readCommand(c, string(line), maxLiteral, maxLiterals, sync)
}

// readCommand is [ReadCommand] once the command's first line was read.
func readCommand(c *starttls.Conn, line string, maxLiteral int64, maxLiterals int, sync bool) (*Command, error) {
	cmd, rest, cerr := srvParseHead(line)
	if cerr != nil {
		// A client announcing a non-synchronizing literal sends it
		// whatever the answer: its bytes would be read as commands.
		cerr.Close, _ = srvTrailingLiteral(line)
		return nil, cerr
	}
	bad := func(close bool, err error) (*Command, error) {
		return nil, &CommandError{Tag: cmd.Tag, Name: cmd.Name, Close: close, Err: err}
	}
	for literals := 0; ; literals++ {
		var lit srvLiteral
		var err error
		cmd.Args, lit, err = srvScanArgs(rest, cmd.Args)
		if err != nil {
			nonSync, _ := srvTrailingLiteral(rest)
			return bad(lit.nonSync || nonSync, err)
		}
		if !lit.present {
			return cmd, nil
		}
		if literals >= maxLiterals {
			return bad(lit.nonSync, fmt.Errorf("%w: more than %d literals in one command", starttls.ErrTooLarge, maxLiterals))
		}
		if lit.tooLarge || lit.size > maxLiteral {
			return bad(lit.nonSync, fmt.Errorf("%w: literal larger than %d octets", starttls.ErrTooLarge, maxLiteral))
		}
		if !lit.nonSync {
			if !sync {
				return bad(false, starttls.NewProtocolError("synchronizing literal refused"))
			}
			// RFC 9051, Section 7.5: the continuation request invites the
			// client to send the literal.
			if err := c.WriteLine("+ Ready for literal data"); err != nil {
				return nil, err
			}
		}
		data := make([]byte, lit.size)
		if _, err := io.ReadFull(c, data); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		cmd.Args = append(cmd.Args, string(data))
		next, err := c.ReadLine()
		if err != nil {
			if errors.Is(err, starttls.ErrTooLarge) {
				return bad(true, err)
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		rest = string(next)
	}
}

// ParseCommand parses one complete command line without literals, as
// [ReadCommand] does. A line that announces a literal is a *CommandError.
func ParseCommand(line string) (*Command, error) {
	cmd, rest, cerr := srvParseHead(line)
	if cerr != nil {
		return nil, cerr
	}
	args, lit, err := srvScanArgs(rest, nil)
	if err == nil && lit.present {
		err = starttls.NewProtocolError("literal in a single command line")
	}
	if err != nil {
		return nil, &CommandError{Tag: cmd.Tag, Name: cmd.Name, Err: err}
	}
	cmd.Args = args
	return cmd, nil
}

// srvParseHead splits a command line into tag and name (RFC 9051,
// Section 9: command = tag SP (command-any / ...)) and returns the rest,
// which is empty or starts with SP.
func srvParseHead(line string) (*Command, string, *CommandError) {
	if i := starttls.IndexControl(line); i >= 0 {
		tag, _, _ := strings.Cut(line, " ")
		if !srvIsTag(tag) {
			tag = ""
		}
		return nil, "", &CommandError{Tag: tag, Err: starttls.NewProtocolError("control character at offset %d", i)}
	}
	tag, rest, ok := strings.Cut(line, " ")
	if !srvIsTag(tag) {
		return nil, "", &CommandError{Err: starttls.NewProtocolError("invalid tag %q", starttls.Escape(tag))}
	}
	if !ok {
		return nil, "", &CommandError{Tag: tag, Err: starttls.NewProtocolError("missing command name")}
	}
	name := rest
	rest = ""
	if i := strings.IndexByte(name, ' '); i >= 0 {
		name, rest = name[:i], name[i:]
	}
	if !srvIsAtom(name) {
		return nil, "", &CommandError{Tag: tag, Err: starttls.NewProtocolError("invalid command name %q", starttls.Escape(name))}
	}
	return &Command{Tag: tag, Name: starttls.UpperASCII(name)}, rest, nil
}

// srvLiteral is a literal announced at the end of a line.
type srvLiteral struct {
	present  bool
	nonSync  bool
	tooLarge bool // the size does not fit in an int64
	size     int64
}

// srvScanArgs parses the arguments in s (empty, or starting with SP) and
// appends them to args. It stops at a literal announced at the end of s.
func srvScanArgs(s string, args []string) ([]string, srvLiteral, error) {
	if i := starttls.IndexControl(s); i >= 0 {
		return args, srvLiteral{}, starttls.NewProtocolError("control character in arguments")
	}
	for len(s) > 0 {
		if s[0] != ' ' {
			return args, srvLiteral{}, starttls.NewProtocolError("missing space between arguments")
		}
		s = s[1:]
		if s == "" {
			break // a trailing space, tolerated
		}
		switch {
		case s[0] == '"':
			arg, n, err := srvQuoted(s)
			if err != nil {
				return args, srvLiteral{}, err
			}
			args = append(args, arg)
			s = s[n:]
		case s[0] == '{' || strings.HasPrefix(s, "~{"):
			lit, ok := srvParseLiteral(s)
			if !ok {
				return args, srvLiteral{}, starttls.NewProtocolError("malformed literal %q", starttls.Escape(s))
			}
			return args, lit, nil
		default:
			n, err := srvToken(s)
			if err != nil {
				nonSync, _ := srvTrailingLiteral(s)
				return args, srvLiteral{nonSync: nonSync}, err
			}
			if n == 0 {
				return args, srvLiteral{}, starttls.NewProtocolError("empty argument")
			}
			args = append(args, s[:n])
			s = s[n:]
		}
	}
	return args, srvLiteral{}, nil
}

// srvQuoted parses a quoted string at the start of s (RFC 9051, Section
// 4.3: only \" and \\ are escapes) and returns it unescaped with the number
// of bytes consumed.
func srvQuoted(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), i + 1, nil
		case '\\':
			i++
			if i >= len(s) || (s[i] != '"' && s[i] != '\\') {
				return "", 0, starttls.NewProtocolError("bad escape in quoted string")
			}
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, starttls.NewProtocolError("unterminated quoted string")
}

// srvToken returns the length of the token at the start of s: up to the
// first SP outside parentheses and brackets, quoted strings inside them
// skipped.
func srvToken(s string) (int, error) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ':
			if depth == 0 {
				return i, nil
			}
		case '(', '[':
			depth++
		case ')', ']':
			if depth > 0 {
				depth--
			} else if s[i] == ')' {
				return 0, starttls.NewProtocolError("unbalanced parenthesis")
			}
		case '"':
			if depth > 0 {
				_, n, err := srvQuoted(s[i:])
				if err != nil {
					return 0, err
				}
				i += n - 1
			}
		case '{':
			if depth > 0 {
				if _, ok := srvTrailingLiteral(s[i:]); ok {
					return 0, starttls.NewProtocolError("literal inside a list is not supported")
				}
			}
		}
	}
	if depth > 0 {
		return 0, starttls.NewProtocolError("unbalanced parenthesis or bracket")
	}
	return len(s), nil
}

// srvTrailingLiteral reports whether s ends with a literal announcement and
// whether it is non-synchronizing.
func srvTrailingLiteral(s string) (nonSync, ok bool) {
	i := strings.LastIndexByte(s, '{')
	if i < 0 {
		return false, false
	}
	lit, ok := srvParseLiteral(s[i:])
	return lit.nonSync, ok
}

// srvParseLiteral parses "{n}", "{n+}", "~{n}" or "~{n+}" making up all of
// s (RFC 9051, Section 9: literal; RFC 7888: literal+; RFC 3516: literal8).
// A size too large for an int64 is reported with tooLarge, not as
// malformed.
func srvParseLiteral(s string) (srvLiteral, bool) {
	s = strings.TrimPrefix(s, "~")
	if len(s) < 3 || s[0] != '{' || s[len(s)-1] != '}' {
		return srvLiteral{}, false
	}
	digits := s[1 : len(s)-1]
	lit := srvLiteral{present: true}
	if strings.HasSuffix(digits, "+") {
		lit.nonSync = true
		digits = digits[:len(digits)-1]
	}
	if digits == "" {
		return srvLiteral{}, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return srvLiteral{}, false
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		lit.tooLarge = true
		return lit, true
	}
	lit.size = n
	return lit, true
}

// srvIsTag reports whether s is a valid tag: 1*<any ASTRING-CHAR except
// "+"> (RFC 9051, Section 9).
func srvIsTag(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '+' || (c != ']' && !srvIsAtomChar(c)) {
			return false
		}
	}
	return true
}

// srvIsAtom reports whether s is an atom (RFC 9051, Section 9: 1*ATOM-CHAR).
func srvIsAtom(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !srvIsAtomChar(s[i]) {
			return false
		}
	}
	return true
}

// srvIsAtomChar: any 7-bit CHAR except atom-specials: "(" ")" "{" SP CTL
// "%" "*" DQUOTE "\" "]".
func srvIsAtomChar(c byte) bool {
	if c <= 0x20 || c >= 0x7f {
		return false
	}
	return !strings.ContainsRune(`(){%*"\]`, rune(c))
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
//     [ReadCommand] reads them; every NO and BAD counts against
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
	cmd, err := readCommand(c, string(line), frontMaxLiteral, frontMaxLiterals, false)
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
