package sieve

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/tlsup/tlsup/starttls"
)

// MaxLiteral bounds one literal ("{n}" followed by n bytes) in a server
// response. Capability values are short; 4096 bytes is the line bound of
// starttls.Conn.
const MaxLiteral = 4096

// response is one server response (RFC 5804, Section 4): capability lines,
// when allowed, then the status line.
type response struct {
	caps   []string // "NAME value", or "NAME" when the value is absent or empty
	status string   // OK, NO or BYE
	code   string   // the response code in parentheses, as sent; "" for none
	text   string   // the human-readable string; "" for none
}

// token kinds.
const (
	atomToken   = 'a'
	stringToken = 's'
	openToken   = '('
	closeToken  = ')'
)

type token struct {
	kind byte
	text string
}

// readResponse reads capability lines (refused with starttls.ErrProtocol
// unless caps) until an OK, NO or BYE line. Every physical line, literal
// continuations included, counts against c.MaxResponseLines.
func readResponse(c *starttls.Conn, caps bool) (response, error) {
	var r response
	lines := 0
	for {
		toks, err := readTokens(c, &lines)
		if err != nil {
			return r, err
		}
		if len(toks) == 0 {
			return r, starttls.NewProtocolError("empty response line")
		}
		if toks[0].kind == atomToken {
			return r, r.setStatus(toks)
		}
		if !caps {
			return r, starttls.NewProtocolError("capability line \"%s\" where a status was expected", starttls.Escape(joinTokens(toks)))
		}
		entry, err := capability(toks)
		if err != nil {
			return r, err
		}
		r.caps = append(r.caps, entry)
	}
}

// setStatus fills r from a status line: atom ["(" code ")"] [string].
func (r *response) setStatus(toks []token) error {
	switch s := starttls.UpperASCII(toks[0].text); s {
	case "OK", "NO", "BYE":
		r.status = s
	default:
		return starttls.NewProtocolError("unknown response \"%s\"", starttls.Escape(joinTokens(toks)))
	}
	rest := toks[1:]
	if len(rest) > 0 && rest[0].kind == openToken {
		end := 1
		for end < len(rest) && rest[end].kind != closeToken {
			end++
		}
		if end == len(rest) || end == 1 || rest[1].kind != atomToken {
			return starttls.NewProtocolError("malformed response code in \"%s\"", starttls.Escape(joinTokens(toks)))
		}
		r.code = joinTokens(rest[1:end])
		rest = rest[end+1:]
	}
	if len(rest) > 0 && rest[0].kind == stringToken {
		r.text = rest[0].text
		rest = rest[1:]
	}
	if len(rest) > 0 {
		return starttls.NewProtocolError("trailing data in \"%s\"", starttls.Escape(joinTokens(toks)))
	}
	return nil
}

// capability turns a capability line, string [SP string], into an entry.
// A name or value that holds a space (in the name), a control character or
// invalid UTF-8 is refused: it could pass for another capability.
func capability(toks []token) (string, error) {
	if len(toks) > 2 || toks[0].kind != stringToken || (len(toks) == 2 && toks[1].kind != stringToken) {
		return "", starttls.NewProtocolError("malformed capability line \"%s\"", starttls.Escape(joinTokens(toks)))
	}
	name := toks[0].text
	if name == "" || strings.ContainsRune(name, ' ') || starttls.IndexControl(name) >= 0 {
		return "", starttls.NewProtocolError("malformed capability name \"%s\"", starttls.Escape(name))
	}
	// An empty value ("SASL" "" before TLS) is no value: the entry is the
	// name alone.
	if len(toks) == 1 || toks[1].text == "" {
		return name, nil
	}
	if value := toks[1].text; starttls.IndexControl(value) >= 0 {
		return "", starttls.NewProtocolError("capability %s: value \"%s\" holds a control character",
			starttls.Escape(name), starttls.Escape(value))
	}
	return name + " " + toks[1].text, nil
}

// readTokens reads one logical line: a physical line, continued on the
// next one after each literal. lines counts the physical lines read.
func readTokens(c *starttls.Conn, lines *int) ([]token, error) {
	var toks []token
	for {
		if *lines >= c.MaxResponseLines() {
			return nil, fmt.Errorf("%w: response longer than %d lines", starttls.ErrTooLarge, c.MaxResponseLines())
		}
		*lines++
		line, err := c.ReadLine()
		if err != nil {
			return nil, err
		}
		var literal int
		toks, literal, err = scanLine(toks, line)
		if err != nil {
			return nil, err
		}
		if literal < 0 {
			return toks, nil
		}
		if literal > MaxLiteral {
			return nil, fmt.Errorf("%w: literal of %d bytes (bound %d)", starttls.ErrTooLarge, literal, MaxLiteral)
		}
		buf := make([]byte, literal)
		if _, err := io.ReadFull(c, buf); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		toks = append(toks, token{stringToken, string(buf)})
	}
}

// scanLine appends the tokens of one physical line to toks. literal is the
// size of the literal announced at the end of the line, -1 for none.
func scanLine(toks []token, line []byte) (_ []token, literal int, err error) {
	s := string(line)
	for i := 0; i < len(s); {
		switch ch := s[i]; {
		case ch == ' ':
			i++
		case ch == '(' || ch == ')':
			toks = append(toks, token{ch, s[i : i+1]})
			i++
		case ch == '"':
			text, n, err := quoted(s[i:])
			if err != nil {
				return nil, 0, err
			}
			toks = append(toks, token{stringToken, text})
			i += n
		case ch == '{':
			n, err := literalSize(s[i:])
			if err != nil {
				return nil, 0, err
			}
			return toks, n, nil
		default:
			start := i
			for i < len(s) && s[i] != ' ' && s[i] != '(' && s[i] != ')' && s[i] != '"' && s[i] != '{' {
				if s[i] < 0x21 || s[i] > 0x7e {
					return nil, 0, starttls.NewProtocolError("byte %#02x in an atom of \"%s\"", s[i], starttls.Escape(s))
				}
				i++
			}
			toks = append(toks, token{atomToken, s[start:i]})
		}
	}
	return toks, -1, nil
}

// quoted reads the quoted string at the start of s and returns its text
// and its length in s. Only \" and \\ are escapes (RFC 5804, Section 4);
// NUL is refused.
func quoted(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch ch := s[i]; ch {
		case '"':
			return b.String(), i + 1, nil
		case '\\':
			if i+1 == len(s) || (s[i+1] != '"' && s[i+1] != '\\') {
				return "", 0, starttls.NewProtocolError("bad escape in quoted string \"%s\"", starttls.Escape(s))
			}
			i++
			b.WriteByte(s[i])
		case 0:
			return "", 0, starttls.NewProtocolError("NUL in quoted string \"%s\"", starttls.Escape(s))
		default:
			b.WriteByte(ch)
		}
	}
	return "", 0, starttls.NewProtocolError("unterminated quoted string \"%s\"", starttls.Escape(s))
}

// literalSize parses "{n}" or "{n+}", which must end the line.
func literalSize(s string) (int, error) {
	body, ok := strings.CutSuffix(s[1:], "}")
	body = strings.TrimSuffix(body, "+")
	if !ok || body == "" || len(body) > 10 || strings.Trim(body, "0123456789") != "" {
		return 0, starttls.NewProtocolError("malformed literal \"%s\"", starttls.Escape(s))
	}
	n, err := strconv.Atoi(body)
	if err != nil {
		return 0, starttls.NewProtocolError("malformed literal \"%s\"", starttls.Escape(s))
	}
	return n, nil
}

// joinTokens renders tokens for an error message, unescaped.
func joinTokens(toks []token) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 && t.kind != closeToken && toks[i-1].kind != openToken {
			b.WriteByte(' ')
		}
		if t.kind == stringToken {
			b.WriteString(strconv.Quote(t.text))
		} else {
			b.WriteString(t.text)
		}
	}
	return b.String()
}

// replyError is the *starttls.ReplyError of a NO or BYE response.
func (r *response) replyError(command string, kind error) error {
	text := r.text
	if r.code != "" {
		text = "(" + r.code + ") " + text
	}
	return &starttls.ReplyError{Protocol: "sieve", Command: command, Status: r.status, Text: starttls.Escape(text), Kind: kind}
}
