package imap

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/tlsup/tlsup/starttls"
)

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
// for it, and so is the number of literals.
//
// A literal is accepted only as a whole argument. One inside a
// parenthesised list (RFC 2971's ID takes a list of strings that a client
// may send as literals) is refused with a *CommandError, with Close set
// when it is non-synchronizing since the client sends it anyway: Args keeps
// a list as sent, on one line, and has no place for a literal's octets.
//
// A malformed command, a refused synchronizing literal or one over the
// bound is a *CommandError; a line over c's bound is a *CommandError with
// Close set. An HTTP request line ([starttls.IsHTTPRequest]) is not a
// command but a browser made to talk to an IMAP port (the ALPACA
// cross-protocol attacks): it is an error matching starttls.ErrProtocol,
// not a *CommandError, and the caller closes the connection without a
// reply. I/O errors (io.EOF, a deadline) are returned as they are; a
// literal cut short is io.ErrUnexpectedEOF.
func ReadCommand(c *starttls.Conn, opts *CommandOptions) (*Command, error) {
	line, err := c.ReadLine()
	if err != nil {
		if errors.Is(err, starttls.ErrTooLarge) {
			return nil, &CommandError{Close: true, Err: err}
		}
		return nil, err
	}
	if starttls.IsHTTPRequest(line) {
		return nil, starttls.NewProtocolError("http request where a command belongs")
	}
	return readCommand(c, string(line), opts)
}

// readCommand is [ReadCommand] once the command's first line was read.
func readCommand(c *starttls.Conn, line string, opts *CommandOptions) (*Command, error) {
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
	cmd, rest, cerr := parseHead(line)
	if cerr != nil {
		// A client announcing a non-synchronizing literal sends it
		// whatever the answer: its bytes would be read as commands.
		cerr.Close = sendsAnyway(line)
		return nil, cerr
	}
	bad := func(close bool, err error) (*Command, error) {
		return nil, &CommandError{Tag: cmd.Tag, Name: cmd.Name, Close: close, Err: err}
	}
	for literals := 0; ; literals++ {
		var lit *literal
		var err error
		cmd.Args, lit, err = scanArgs(rest, cmd.Args, maxLiteral)
		if err != nil {
			return bad(sendsAnyway(rest), err)
		}
		if lit == nil {
			return cmd, nil
		}
		if literals >= maxLiterals {
			return bad(lit.nonSync, fmt.Errorf("%w: more than %d literals in one command", starttls.ErrTooLarge, maxLiterals))
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
	cmd, rest, cerr := parseHead(line)
	if cerr != nil {
		return nil, cerr
	}
	args, lit, err := scanArgs(rest, nil, math.MaxInt64)
	if err == nil && lit != nil {
		err = starttls.NewProtocolError("literal in a single command line")
	}
	if err != nil {
		return nil, &CommandError{Tag: cmd.Tag, Name: cmd.Name, Err: err}
	}
	cmd.Args = args
	return cmd, nil
}

// sendsAnyway reports whether s ends with a non-synchronizing literal,
// whatever its size: the client sends it without waiting for an answer.
func sendsAnyway(s string) bool {
	lit, ok, err := literalAt(s, math.MaxInt64)
	return (ok || err != nil) && lit.nonSync
}

// parseHead splits a command line into tag and name (RFC 9051, Section 9:
// command = tag SP (command-any / ...)) and returns the rest, which is
// empty or starts with SP.
func parseHead(line string) (*Command, string, *CommandError) {
	if i := starttls.IndexControl(line); i >= 0 {
		tag, _, _ := strings.Cut(line, " ")
		if !isTag(tag) {
			tag = ""
		}
		return nil, "", &CommandError{Tag: tag, Err: starttls.NewProtocolError("control character at offset %d", i)}
	}
	tag, rest, ok := strings.Cut(line, " ")
	if !isTag(tag) {
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
	if !isAtom(name) {
		return nil, "", &CommandError{Tag: tag, Err: starttls.NewProtocolError("invalid command name %q", starttls.Escape(name))}
	}
	return &Command{Tag: tag, Name: starttls.UpperASCII(name)}, rest, nil
}

// scanArgs parses the arguments in s (empty, or starting with SP) and
// appends them to args. It stops at a literal announced at the end of s,
// which it returns; one over maxLiteral is an error matching
// starttls.ErrTooLarge.
func scanArgs(s string, args []string, maxLiteral int64) ([]string, *literal, error) {
	if starttls.IndexControl(s) >= 0 {
		return args, nil, starttls.NewProtocolError("control character in arguments")
	}
	for len(s) > 0 {
		if s[0] != ' ' {
			return args, nil, starttls.NewProtocolError("missing space between arguments")
		}
		s = s[1:]
		if s == "" {
			break // a trailing space, tolerated
		}
		switch {
		case s[0] == '"':
			arg, n, err := quoted(s)
			if err != nil {
				return args, nil, err
			}
			args = append(args, arg)
			s = s[n:]
		case s[0] == '{' || strings.HasPrefix(s, "~{"):
			lit, ok, err := literalAt(s, maxLiteral)
			if err != nil {
				return args, nil, err
			}
			if !ok || lit.start != 0 {
				return args, nil, starttls.NewProtocolError("malformed literal %q", starttls.Escape(s))
			}
			return args, &lit, nil
		default:
			n, err := token(s)
			if err != nil {
				return args, nil, err
			}
			if n == 0 {
				return args, nil, starttls.NewProtocolError("empty argument")
			}
			args = append(args, s[:n])
			s = s[n:]
		}
	}
	return args, nil, nil
}

// token returns the length of the token at the start of s: up to the first
// SP outside parentheses and brackets, quoted strings inside them skipped.
func token(s string) (int, error) {
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
				_, n, err := quoted(s[i:])
				if err != nil {
					return 0, err
				}
				i += n - 1
			}
		case '{':
			if depth > 0 {
				if _, ok, err := literalAt(s[i:], math.MaxInt64); ok || err != nil {
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
