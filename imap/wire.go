package imap

import (
	"fmt"
	"math"
	"strings"

	"github.com/tlsup/tlsup/starttls"
)

// The IMAP wire codec (RFC 9051, Sections 4 and 9), one for both roles:
// the client's response reader (response.go) and the server's command
// reader (command.go) share these atoms, tags, quoted strings and literal
// announcements.

// isAtomChar reports whether c is an ATOM-CHAR: a 7-bit printable
// character other than SP and the atom-specials ( ) { % * " \ ].
func isAtomChar(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	switch c {
	case '(', ')', '{', '%', '*', '"', '\\', ']':
		return false
	}
	return true
}

// isAtom reports whether s is an atom: 1*ATOM-CHAR.
func isAtom(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAtomChar(s[i]) {
			return false
		}
	}
	return true
}

// isTag reports whether s is a tag: 1*<any ASTRING-CHAR except "+">, that
// is an atom that may also hold "]" but not "+".
func isTag(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '+' || (c != ']' && !isAtomChar(c)) {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// quoted parses the quoted string at the start of s (RFC 9051, Section
// 4.3: only \" and \\ are escapes) and returns it unescaped with the number
// of bytes consumed.
func quoted(s string) (string, int, error) {
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

// literal is a literal announcement: "{n}", "{n+}" (RFC 7888, LITERAL+ and
// LITERAL-) or "~{n}" (RFC 3516, literal8), RFC 9051, Section 4.3.
type literal struct {
	size    int64 // the octets that follow the line
	nonSync bool  // "{n+}": sent without waiting for a continuation
	binary  bool  // "~{n}"
	start   int   // where the announcement starts in the line ("~" or "{")
}

// literalAt reports whether line (without its CRLF) ends with a literal
// announcement and returns it. A size over max fails with an error
// matching starttls.ErrTooLarge, with nonSync and start still reported so
// that a server knows whether the client sends the literal anyway; the
// digits are checked one by one before any conversion, so a hundred digits
// never overflow. A line that ends in "}" without the literal syntax
// ("{}", "{x}") is not a literal.
func literalAt[T ~string | ~[]byte](line T, max int64) (lit literal, ok bool, err error) {
	n := len(line)
	if n < 3 || line[n-1] != '}' {
		return literal{}, false, nil
	}
	i := n - 2
	if line[i] == '+' {
		lit.nonSync = true
		i--
	}
	end := i + 1
	for i >= 0 && line[i] >= '0' && line[i] <= '9' {
		i--
	}
	if i < 0 || line[i] != '{' || i+1 == end {
		return literal{}, false, nil
	}
	lit.start = i
	if i > 0 && line[i-1] == '~' {
		lit.binary, lit.start = true, i-1
	}
	for j := i + 1; j < end; j++ {
		if lit.size > (math.MaxInt64-9)/10 || lit.size*10+int64(line[j]-'0') > max {
			return literal{nonSync: lit.nonSync, binary: lit.binary, start: lit.start}, false,
				fmt.Errorf("%w: literal %s longer than %d bytes", starttls.ErrTooLarge, starttls.Escape(string(line[i:])), max)
		}
		lit.size = lit.size*10 + int64(line[j]-'0')
	}
	return lit, true, nil
}
