package ftp

import (
	"github.com/tlsup/tlsup/starttls"
)

// Reply is one FTP reply (RFC 959, Section 4.2).
type Reply struct {
	// Code is the three-digit reply code, 100 to 599.
	Code int
	// Lines are the reply's lines as sent, without CRLF and, on the first
	// and last lines, without the code and its separator. Lines between
	// them are kept whole (a FEAT feature line starts with a space). They
	// are peer text: escape them with starttls.Escape before showing them.
	Lines []string
}

// Text returns the first line's text, escaped.
func (r Reply) Text() string {
	if len(r.Lines) == 0 {
		return ""
	}
	return starttls.Escape(r.Lines[0])
}

// ReadReply reads one reply from c. A single-line reply is "ddd text"; a
// multi-line reply starts "ddd-text" and ends at the first line that
// starts with the same code followed by a space or the end of the line
// (RFC 959, Section 4.2); the lines in between may hold anything. It
// returns an error matching starttls.ErrProtocol for a malformed first
// line, starttls.ErrTooLarge past c's line and response bounds, and the
// read error otherwise.
func ReadReply(c *starttls.Conn) (Reply, error) {
	var r Reply
	var code [3]byte
	err := c.ReadResponse(func(line []byte) (bool, error) {
		if r.Code == 0 {
			if len(line) < 3 || line[0] < '1' || line[0] > '5' || !digit(line[1]) || !digit(line[2]) ||
				(len(line) > 3 && line[3] != ' ' && line[3] != '-') {
				return false, starttls.NewProtocolError("malformed reply line \"%s\"", starttls.Escape(string(line)))
			}
			copy(code[:], line)
			r.Code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
			r.Lines = append(r.Lines, text(line))
			return len(line) > 3 && line[3] == '-', nil
		}
		if len(line) >= 3 && [3]byte(line[:3]) == code && (len(line) == 3 || line[3] == ' ') {
			r.Lines = append(r.Lines, text(line))
			return false, nil
		}
		r.Lines = append(r.Lines, string(line))
		return true, nil
	})
	return r, err
}

// text returns what follows the code and its separator.
func text(line []byte) string {
	if len(line) <= 4 {
		return ""
	}
	return string(line[4:])
}

func digit(b byte) bool { return '0' <= b && b <= '9' }

// replyError is the *starttls.ReplyError of an unwanted reply.
func replyError(command string, r Reply, kind error) error {
	return &starttls.ReplyError{Protocol: "ftp", Command: command, Code: r.Code, Text: r.Text(), Kind: kind}
}

func unexpected(command string, r Reply) error {
	return starttls.NewProtocolError("unexpected reply to %s: %d %s", command, r.Code, r.Text())
}
