package smtp

import (
	"github.com/tlsup/tlsup/starttls"
)

// Reply is one SMTP reply (RFC 5321, Section 4.2).
type Reply struct {
	// Code is the three-digit reply code.
	Code int
	// Lines are the texts after the code and separator, one per line, as
	// sent. They are peer text: escape them with starttls.Escape before
	// showing them.
	Lines []string
}

// Text returns the first line's text, escaped.
func (r Reply) Text() string {
	if len(r.Lines) == 0 {
		return ""
	}
	return starttls.Escape(r.Lines[0])
}

// ReadReply reads one reply, single or multi-line, from c. Every line must
// start with the same three-digit code (200 to 599) followed by "-" on all
// but the last line and by " " or the end of the line on the last
// (RFC 5321, Section 4.2.1). It returns an error matching
// starttls.ErrProtocol for a malformed or inconsistent reply,
// starttls.ErrTooLarge past c's line and response bounds, and the read
// error otherwise.
func ReadReply(c *starttls.Conn) (Reply, error) {
	var r Reply
	err := c.ReadResponse(func(line []byte) (bool, error) {
		code, last, ok := parseReplyLine(line)
		if !ok {
			return false, starttls.NewProtocolError("malformed reply line \"%s\"", starttls.Escape(string(line)))
		}
		if r.Code == 0 {
			r.Code = code
		} else if code != r.Code {
			return false, starttls.NewProtocolError("reply code %d on a continuation of a %d reply", code, r.Code)
		}
		text := ""
		if len(line) > 4 {
			text = string(line[4:])
		}
		r.Lines = append(r.Lines, text)
		return !last, nil
	})
	return r, err
}

// parseReplyLine splits a reply line into its code and whether it is the
// last line.
func parseReplyLine(line []byte) (code int, last, ok bool) {
	if len(line) < 3 {
		return 0, false, false
	}
	for _, d := range line[:3] {
		if d < '0' || d > '9' {
			return 0, false, false
		}
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	if code < 200 || code > 599 {
		return 0, false, false
	}
	switch {
	case len(line) == 3:
		return code, true, true
	case line[3] == ' ':
		return code, true, true
	case line[3] == '-':
		return code, false, true
	}
	return 0, false, false
}

// replyError returns the starttls.ReplyError for an unwanted reply.
func replyError(protocol, command string, r Reply, kind error) error {
	return &starttls.ReplyError{Protocol: protocol, Command: command, Code: r.Code, Text: r.Text(), Kind: kind}
}

func unexpected(command string, r Reply) error {
	return starttls.NewProtocolError("unexpected reply to %s: %d %s", command, r.Code, r.Text())
}
