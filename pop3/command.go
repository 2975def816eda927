package pop3

import (
	"strings"

	"github.com/tlsup/tlsup/starttls"
)

// Command is one POP3 command line (RFC 1939, Section 3).
type Command struct {
	// Name is the keyword in ASCII upper case ("USER", "STLS").
	Name string
	// Rest is everything after the keyword and its space, as sent, with
	// trailing spaces removed: PASS takes it whole, since a password may
	// contain spaces (RFC 1939, Section 7). "" when there are no arguments.
	Rest string
	// Args is Rest split at each space; nil when Rest is empty.
	Args []string
}

// ParseCommand parses one command line without its CRLF: a keyword of
// three or four ASCII letters, case-insensitive, then arguments separated
// by single spaces (RFC 1939, Section 3; RFC 2449, Section 4). A line with a
// control character, NUL included, or without a valid keyword is an error
// matching starttls.ErrProtocol.
func ParseCommand(line string) (*Command, error) {
	if i := starttls.IndexControl(line); i >= 0 {
		return nil, starttls.NewProtocolError("control character at offset %d in command", i)
	}
	name, rest, _ := strings.Cut(line, " ")
	if len(name) < 3 || len(name) > 4 {
		return nil, starttls.NewProtocolError("invalid command keyword %q", starttls.Escape(name))
	}
	for i := 0; i < len(name); i++ {
		if c := name[i] | 0x20; c < 'a' || c > 'z' {
			return nil, starttls.NewProtocolError("invalid command keyword %q", starttls.Escape(name))
		}
	}
	cmd := &Command{Name: starttls.UpperASCII(name), Rest: strings.TrimRight(rest, " ")}
	if cmd.Rest != "" {
		cmd.Args = strings.Split(cmd.Rest, " ")
	}
	return cmd, nil
}
