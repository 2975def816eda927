package imap

import (
	"fmt"
	"math"
	"strings"

	"github.com/tlsup/tlsup/starttls"
)

// DefaultMaxLiteral is the largest literal accepted in a response: 64 KiB.
// Nothing a client needs before TLS comes in a literal, so anything larger
// is refused with starttls.ErrTooLarge rather than read.
const DefaultMaxLiteral = 64 << 10

// Response is the first line of one server response (RFC 9051, Section 7),
// parsed. Its strings are peer text as sent: escape them with
// starttls.Escape before showing them.
type Response struct {
	// Tag is "*" for untagged data and status responses, "+" for a
	// command continuation request, and otherwise the tag of the command
	// the response completes.
	Tag string
	// Status is "OK", "NO", "BAD", "PREAUTH" or "BYE" (upper case whatever
	// the server sent) for a status response, "" for data and
	// continuations. A tagged response always has OK, NO or BAD.
	Status string
	// Code is the response code's atom, upper case ("CAPABILITY",
	// "ALERT", "REFERRAL"), "" when there is none.
	Code string
	// CodeArgs is the text after the code's atom inside the brackets, as
	// sent ("IMAP4rev1 STARTTLS" for [CAPABILITY IMAP4rev1 STARTTLS]).
	CodeArgs string
	// Text is the human-readable text of a status response or
	// continuation, after the code.
	Text string
	// Number is the leading number of untagged data such as "* 23 EXISTS"
	// or "* 1 FETCH (...)"; zero when there was none (see HasNumber).
	Number uint32
	// HasNumber says whether the untagged data had a leading number, so
	// that "* 0 EXISTS" is told apart from data without one.
	HasNumber bool
	// Name is the name of untagged data, upper case: "CAPABILITY",
	// "EXISTS", "LIST", "FETCH".
	Name string
	// Args is the rest of the data's first line after Name, as sent. For a
	// response with literals it stops at the first literal.
	Args string
	// Literals counts the literals read and discarded inside the response.
	Literals int
	// LiteralBytes is the total size of those literals, in octets.
	LiteralBytes int64
}

// ParseResponse parses the first line of a server response (without its
// CRLF). It checks the tag, the status and the response code's brackets;
// it reads no literal (see [ReadResponses]). A malformed line is an error
// matching starttls.ErrProtocol.
//
// The grammar is RFC 9051, Section 9 (response, resp-cond-state,
// resp-text, continue-req), with two tolerances: the status keyword is
// matched without regard to case, and "tag OK" without text is accepted.
func ParseResponse(line []byte) (Response, error) {
	var r Response
	if len(line) == 0 {
		return r, starttls.NewProtocolError("empty response line")
	}
	s := string(line)
	tag, rest, hasRest := strings.Cut(s, " ")
	switch {
	case tag == "+":
		// RFC 9051, Section 7.5: continue-req = "+" SP (resp-text /
		// base64). A bare "+" is common enough to accept.
		r.Tag = "+"
		r.Text = rest
		return r, nil
	case tag == "*":
		r.Tag = "*"
		if !hasRest || rest == "" {
			return r, clientMalformed("untagged response without data", s)
		}
		word, after, _ := strings.Cut(rest, " ")
		if status := statusWord(word); status != "" {
			r.Status = status
			return r, parseRespText(&r, after, s)
		}
		if isDigits(word) {
			if len(word) > 10 {
				return r, clientMalformed("number too large in", s)
			}
			var v uint64
			for i := 0; i < len(word); i++ {
				v = v*10 + uint64(word[i]-'0')
			}
			if v > math.MaxUint32 {
				return r, clientMalformed("number too large in", s)
			}
			r.Number, r.HasNumber = uint32(v), true
			word, after, _ = strings.Cut(after, " ")
		}
		if !isAtom(word) {
			return r, clientMalformed("malformed untagged response", s)
		}
		r.Name = strings.ToUpper(word)
		r.Args = after
		return r, nil
	}
	if !isTag(tag) {
		return r, clientMalformed("malformed response tag in", s)
	}
	r.Tag = tag
	word, after, _ := strings.Cut(rest, " ")
	switch status := statusWord(word); status {
	case "OK", "NO", "BAD":
		r.Status = status
		return r, parseRespText(&r, after, s)
	}
	return r, clientMalformed("tagged response that is not OK, NO or BAD", s)
}

// parseRespText fills the code and text of a status response from text,
// the part after the status keyword: ["[" resp-text-code "]" SP] [text].
func parseRespText(r *Response, text, line string) error {
	if strings.HasPrefix(text, "[") {
		end := strings.IndexByte(text, ']')
		if end < 0 {
			return clientMalformed("unterminated response code in", line)
		}
		code, args, _ := strings.Cut(text[1:end], " ")
		if !isAtom(code) {
			return clientMalformed("malformed response code in", line)
		}
		r.Code = strings.ToUpper(code)
		r.CodeArgs = args
		text = strings.TrimPrefix(text[end+1:], " ")
	}
	r.Text = text
	return nil
}

// ReadResponses reads server responses from c and hands each one to fn,
// complete, until fn returns false or an error. A response that announces
// a literal at the end of a line ({n}, {n+} or ~{n}; only untagged data can
// carry one) has the literal discarded with [starttls.Conn.Discard], without
// buffering it, and continues on the line after it: the reader stays in step
// with the server whatever the data holds.
//
// Bounds: every line by c's line bound, all the lines read in one call (the
// lines after literals included) by c's response bound, each literal by
// maxLiteral (<= 0 means DefaultMaxLiteral), all failing with an error
// matching starttls.ErrTooLarge before the excess is read. A malformed first
// line is starttls.ErrProtocol; read errors are returned as they are.
//
// ReadResponses never reads past the line that ends the response for which
// fn returned false, so c.Buffered shows what the server sent beyond it.
func ReadResponses(c *starttls.Conn, maxLiteral int64, fn func(*Response) (more bool, err error)) error {
	var cur *Response
	return c.ReadResponse(func(line []byte) (bool, error) {
		if cur == nil {
			r, err := ParseResponse(line)
			if err != nil {
				return false, err
			}
			cur = &r
		}
		if more, err := skipLiteral(c, cur, line, maxLiteral); err != nil || more {
			return more, err
		}
		r := cur
		cur = nil
		return fn(r)
	})
}

// skipLiteral handles line, a line of the response cur: when cur is
// untagged data and line ends with a literal announcement, it discards the
// literal, counts it in cur and returns true (the response goes on with the
// next line); otherwise it returns false. A literal over maxLiteral is an
// error matching starttls.ErrTooLarge.
func skipLiteral(c *starttls.Conn, cur *Response, line []byte, maxLiteral int64) (bool, error) {
	if cur.Tag != "*" || cur.Status != "" {
		return false, nil
	}
	if maxLiteral <= 0 {
		maxLiteral = DefaultMaxLiteral
	}
	lit, ok, err := literalAt(line, maxLiteral)
	if err != nil || !ok {
		return false, err
	}
	if cur.Literals == 0 {
		// Args stops at the first literal.
		if j := strings.LastIndexByte(cur.Args, '{'); j >= 0 {
			cur.Args = strings.TrimRight(strings.TrimSuffix(cur.Args[:j], "~"), " ")
		}
	}
	cur.Literals++
	cur.LiteralBytes += lit.size
	if err := c.Discard(lit.size); err != nil {
		return false, err
	}
	return true, nil
}

// maxCapabilities bounds the entries of one capability list, however many
// CAPABILITY responses carry it.
const maxCapabilities = 4096

// ParseCapabilities parses a space-separated list of capability atoms, the
// arguments of a CAPABILITY response or response code (RFC 9051,
// Section 7.2.2), into a set. Runs of spaces are tolerated. An entry that is
// not an atom of 7-bit ATOM-CHARs (a NUL, an 8-bit byte, a quote, a
// bracket, a literal) is an error matching starttls.ErrProtocol: the whole
// list is refused rather than partly trusted.
func ParseCapabilities(s string) (*starttls.Capabilities, error) {
	caps := &starttls.Capabilities{}
	return caps, addCapabilities(caps, s)
}

// addCapabilities adds the atoms of s to caps, up to the first malformed
// one, and no more than maxCapabilities in all.
func addCapabilities(caps *starttls.Capabilities, s string) error {
	for rest := s; rest != ""; {
		var atom string
		atom, rest, _ = strings.Cut(rest, " ")
		if atom == "" {
			continue
		}
		if !isAtom(atom) {
			return clientMalformed("malformed capability", atom)
		}
		if caps.Len() >= maxCapabilities {
			return fmt.Errorf("%w: more than %d capabilities", starttls.ErrTooLarge, maxCapabilities)
		}
		caps.Add(atom)
	}
	return nil
}

// statusWord returns the upper-case status keyword word is, or "".
func statusWord(word string) string {
	for _, s := range [...]string{"OK", "NO", "BAD", "PREAUTH", "BYE"} {
		if starttls.EqualFold(word, s) {
			return s
		}
	}
	return ""
}

// clientMalformed returns the protocol error for peer text that breaks the
// grammar.
func clientMalformed(what, peerText string) error {
	return starttls.NewProtocolError("%s \"%s\"", what, starttls.Escape(peerText))
}
