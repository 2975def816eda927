package nntp

import (
	"strings"

	"github.com/tlsup/tlsup/starttls"
)

// readStatus reads one status line (RFC 3977, Section 3.2): three digits,
// the first 1 to 5, then a space and text or the end of the line.
func readStatus(c *starttls.Conn) (code int, text string, err error) {
	line, err := c.ReadLine()
	if err != nil {
		return 0, "", err
	}
	if len(line) < 3 || (len(line) > 3 && line[3] != ' ') ||
		line[0] < '1' || line[0] > '5' || !digit(line[1]) || !digit(line[2]) {
		return 0, "", starttls.NewProtocolError("malformed status line \"%s\"", starttls.Escape(string(line)))
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	if len(line) > 4 {
		text = string(line[4:])
	}
	return code, text, nil
}

func digit(b byte) bool { return '0' <= b && b <= '9' }

// readList reads the lines of a multi-line block up to the terminating "."
// (RFC 3977, Section 3.1.1), with dot-stuffing undone and empty lines
// skipped. A line holding CR or NUL matches starttls.ErrProtocol; more than
// c.MaxResponseLines lines match starttls.ErrTooLarge.
func readList(c *starttls.Conn) ([]string, error) {
	var lines []string
	err := c.ReadResponse(func(line []byte) (bool, error) {
		if len(line) == 1 && line[0] == '.' {
			return false, nil
		}
		if len(line) > 0 && line[0] == '.' {
			line = line[1:]
		}
		if i := strings.IndexAny(string(line), "\r\x00"); i >= 0 {
			return false, starttls.NewProtocolError("capability line \"%s\" holds a control character at offset %d",
				starttls.Escape(string(line)), i)
		}
		if len(line) > 0 {
			lines = append(lines, string(line))
		}
		return true, nil
	})
	return lines, err
}

// replyError is the *starttls.ReplyError of an unwanted status line.
func replyError(command string, code int, text string, kind error) error {
	return &starttls.ReplyError{Protocol: "nntp", Command: command, Code: code, Text: starttls.Escape(text), Kind: kind}
}
