package pop3

import (
	"bytes"

	"github.com/tlsup/tlsup/starttls"
)

// Response is one POP3 status line (RFC 1939, Section 3): "+OK" or "-ERR",
// then optional text.
type Response struct {
	// OK is true for "+OK" and false for "-ERR".
	OK bool
	// Code is the extended response code (RFC 2449, Section 8) found in
	// brackets at the start of Text, without the brackets ("SYS/TEMP",
	// "IN-USE", "AUTH"); "" when there is none.
	Code string
	// Text is everything after the status indicator and its space, the
	// response code included, as sent. It is peer text: escape it with
	// starttls.Escape before showing it.
	Text string
}

// ReadResponse reads one status line from c. The status indicator must be
// "+OK" or "-ERR" (RFC 1939, Section 3; matched ignoring ASCII case, since
// a lower-case "+ok" gives nothing away), followed by a space or the end of
// the line; anything else, such as "+OKAY" or a bare "+ " continuation, is
// an error matching starttls.ErrProtocol. A -ERR response is returned with
// OK false and a nil error: the caller decides what a refusal means.
// A line longer than c's bound matches starttls.ErrTooLarge; other errors
// are the read error (io.EOF when the peer hung up).
func ReadResponse(c *starttls.Conn) (Response, error) {
	line, err := c.ReadLine()
	if err != nil {
		return Response{}, err
	}
	r, ok := parseStatusLine(line)
	if !ok {
		return Response{}, starttls.NewProtocolError("malformed status line \"%s\"", starttls.Escape(string(line)))
	}
	return r, nil
}

// parseStatusLine splits a status line into its indicator, code and text.
func parseStatusLine(line []byte) (Response, bool) {
	var r Response
	var rest []byte
	switch {
	case hasFoldPrefix(line, "+OK"):
		r.OK, rest = true, line[3:]
	case hasFoldPrefix(line, "-ERR"):
		rest = line[4:]
	default:
		return Response{}, false
	}
	if len(rest) > 0 {
		if rest[0] != ' ' {
			return Response{}, false
		}
		rest = rest[1:]
	}
	r.Text = string(rest)
	r.Code = parseResponseCode(rest)
	return r, true
}

// parseResponseCode returns the RFC 2449, Section 8 response code at the
// start of text: "[" resp-level *("/" resp-level) "]", where a level is
// letters, digits and "-". Anything not of that shape is no code.
func parseResponseCode(text []byte) string {
	if len(text) < 3 || text[0] != '[' {
		return ""
	}
	end := bytes.IndexByte(text, ']')
	if end < 2 {
		return ""
	}
	code := text[1:end]
	level := 0
	for _, b := range code {
		switch {
		case b == '/':
			if level == 0 {
				return ""
			}
			level = 0
		case 'A' <= b && b <= 'Z', 'a' <= b && b <= 'z', '0' <= b && b <= '9', b == '-':
			level++
		default:
			return ""
		}
	}
	if level == 0 {
		return ""
	}
	return string(code)
}

// ReadMultiline reads the body of a multi-line response (RFC 1939,
// Section 3), after its "+OK" status line, up to the line holding a single
// ".". Dot-stuffing is undone: a line "..x" is returned as ".x". A line
// that starts with "." and is neither the terminator nor stuffed breaks the
// rule that the server must stuff it, and is an error matching
// starttls.ErrProtocol. More lines than c's MaxResponseLines (the
// terminator included) match starttls.ErrTooLarge, as does a line over the
// line bound; a hang-up before the terminator is io.ErrUnexpectedEOF or
// io.EOF. The lines are peer text: escape them before showing them.
func ReadMultiline(c *starttls.Conn) ([]string, error) {
	var lines []string
	err := c.ReadResponse(func(line []byte) (bool, error) {
		if len(line) > 0 && line[0] == '.' {
			if len(line) == 1 {
				return false, nil
			}
			if line[1] != '.' {
				return false, starttls.NewProtocolError("multi-line response line \"%s\" starts with an unstuffed \".\"",
					starttls.Escape(string(line)))
			}
			line = line[1:]
		}
		lines = append(lines, string(line))
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return lines, nil
}

// hasFoldPrefix reports whether s starts with prefix, ignoring ASCII case.
func hasFoldPrefix(s []byte, prefix string) bool {
	return len(s) >= len(prefix) && starttls.EqualFold(string(s[:len(prefix)]), prefix)
}

// refusal returns the *starttls.ReplyError for a -ERR response to command
// ("" for the greeting).
func refusal(command string, r Response, kind error) error {
	return &starttls.ReplyError{Protocol: "pop3", Command: command, Status: "-ERR",
		Text: starttls.Escape(r.Text), Kind: kind}
}
