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
	// The texts are gathered in one buffer (on the stack for a usual
	// reply) and become one string that every line slices: two
	// allocations per reply, however many lines.
	var textBuf [512]byte
	var endBuf [32]int
	code, texts, ends, err := scanReply(c, textBuf[:0], endBuf[:0])
	return replyOf(code, texts, ends), err
}

// replyOf is the Reply of a code and the texts gathered by scanReply.
func replyOf(code int, texts []byte, ends []int) Reply {
	r := Reply{Code: code}
	if len(ends) > 0 {
		r.Lines = splitTexts(make([]string, 0, len(ends)), string(texts), ends)
	}
	return r
}

// scanReply reads one reply as ReadReply does, appending the lines' texts
// back to back to texts and where each one ends to ends.
func scanReply(c *starttls.Conn, texts []byte, ends []int) (code int, _ []byte, _ []int, err error) {
	err = c.ReadResponse(func(line []byte) (bool, error) {
		lineCode, last, ok := parseReplyLine(line)
		if !ok {
			return false, starttls.NewProtocolError("malformed reply line \"%s\"", starttls.Escape(string(line)))
		}
		if code == 0 {
			code = lineCode
		} else if lineCode != code {
			return false, starttls.NewProtocolError("reply code %d on a continuation of a %d reply", lineCode, code)
		}
		if len(line) > 4 {
			texts = append(texts, line[4:]...)
		}
		ends = append(ends, len(texts))
		return !last, nil
	})
	return code, texts, ends, err
}

// splitTexts appends to lines the texts of all, cut at ends.
func splitTexts(lines []string, all string, ends []int) []string {
	start := 0
	for _, end := range ends {
		lines = append(lines, all[start:end])
		start = end
	}
	return lines
}

// readReplyHead reads one reply with the checks of ReadReply but keeps only
// its code and, unless the code is skip, its first line's text: a
// go-ahead costs no allocation and a greeting one. reply rebuilds the
// Reply for an error.
func readReplyHead(c *starttls.Conn, skip int) (code int, text string, err error) {
	var headBuf [256]byte
	head := headBuf[:0]
	n := 0
	err = c.ReadResponse(func(line []byte) (bool, error) {
		lineCode, last, ok := parseReplyLine(line)
		if !ok {
			return false, starttls.NewProtocolError("malformed reply line \"%s\"", starttls.Escape(string(line)))
		}
		if code == 0 {
			code = lineCode
		} else if lineCode != code {
			return false, starttls.NewProtocolError("reply code %d on a continuation of a %d reply", lineCode, code)
		}
		if n == 0 && len(line) > 4 {
			head = append(head, line[4:]...)
		}
		n++
		return !last, nil
	})
	if n > 0 && code != skip {
		text = string(head)
	}
	return code, text, err
}

// reply is the Reply of a code and a first line's text.
func reply(code int, text string) Reply {
	return Reply{Code: code, Lines: []string{text}}
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
