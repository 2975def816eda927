package xmpp

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tlsup/tlsup/starttls"
)

// Namespaces of RFC 6120.
const (
	nsStream = "http://etherx.jabber.org/streams"
	nsClient = "jabber:client"
	nsTLS    = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL   = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsErrors = "urn:ietf:params:xml:ns:xmpp-streams"
)

// Bounds of the stream reader.
const (
	// DefaultMaxElementSize bounds the bytes of the server's stream header
	// and of each top-level element read during the upgrade (the
	// features, the answer to STARTTLS). Real feature lists are under
	// 2 KiB.
	DefaultMaxElementSize = 64 << 10
	// DefaultMaxDepth bounds the nesting of elements inside a top-level
	// element (stream:features > mechanisms > mechanism is 3).
	DefaultMaxDepth = 16
	// maxText bounds the text kept of a feature or an error.
	maxText = 512
)

// budgetReader is the io.ByteReader under the XML decoder: it takes one
// byte at a time from the starttls.Conn (whose buffer the core checks at
// the switch: nothing is read ahead into a buffer of this package) and
// fails with starttls.ErrTooLarge once the budget of the current element
// is spent. It keeps the connection's own error, which encoding/xml turns
// into a syntax error.
type budgetReader struct {
	r      io.ByteReader
	budget int
	// wantTag is set between top-level elements: the next byte that is
	// not white space must be '<'. Text there would have the decoder wait
	// for a '<' that a server speaking another protocol never sends.
	wantTag bool
	err     error // the last error of r, or the reader's own
}

func (b *budgetReader) ReadByte() (byte, error) {
	if b.budget <= 0 {
		b.err = fmt.Errorf("%w: xmpp: element over its size bound", starttls.ErrTooLarge)
		return 0, b.err
	}
	c, err := b.r.ReadByte()
	if err != nil {
		b.err = err
		return 0, err
	}
	b.budget--
	if b.wantTag {
		switch c {
		case '<':
			b.wantTag = false
		case ' ', '\t', '\r', '\n':
		default:
			b.err = starttls.NewProtocolError("xmpp: byte %#02x where an element belongs", c)
			return 0, b.err
		}
	}
	return c, nil
}

// begin starts the budget of a new top-level read.
func (b *budgetReader) begin(budget int) {
	b.budget = budget
	b.wantTag = true
	b.err = nil
}

// Read reads one byte: encoding/xml wants an io.Reader, and uses ReadByte
// alone on one that is also an io.ByteReader.
func (b *budgetReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c, err := b.ReadByte()
	if err != nil {
		return 0, err
	}
	p[0] = c
	return 1, nil
}

// stream reads one XML stream (RFC 6120, Section 4) from the server with
// encoding/xml in strict mode over a budgetReader: restricted XML only
// (Section 11.1: no DTD, hence no entity declarations or expansion beyond
// the five predefined entities, no comments, no processing instructions
// other than the XML declaration), each top-level element bounded in size
// and depth.
type stream struct {
	in       *budgetReader
	dec      *xml.Decoder
	maxSize  int
	maxDepth int
}

func newStream(r io.ByteReader, maxSize, maxDepth int) *stream {
	in := &budgetReader{r: r}
	dec := xml.NewDecoder(in) // an io.ByteReader: the decoder does no buffering of its own
	dec.Strict = true
	return &stream{in: in, dec: dec, maxSize: maxSize, maxDepth: maxDepth}
}

// token returns the next token (namespaces resolved, end tags matched by
// the decoder), with the connection's error (a deadline, a hang-up, the
// size bound) in place of the decoder's syntax error when there was one.
// Tokens that restricted XML forbids are starttls.ErrProtocol; the XML
// declaration is let through only when decl is true.
func (s *stream) token(decl bool) (xml.Token, error) {
	tok, err := s.dec.Token()
	if err != nil {
		if s.in.err != nil {
			if errors.Is(s.in.err, io.EOF) {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, s.in.err
		}
		// A syntax error, or the decoder's refusal of the XML
		// declaration (another version, an encoding other than UTF-8).
		msg := err.Error()
		var syntax *xml.SyntaxError
		if errors.As(err, &syntax) {
			msg = syntax.Msg
		}
		return nil, starttls.NewProtocolError("xmpp: malformed XML: %s", starttls.Escape(clip(msg)))
	}
	switch t := tok.(type) {
	case xml.Directive:
		// A DOCTYPE, where entity declarations live (the billion
		// laughs): refused, never processed.
		return nil, starttls.NewProtocolError("xmpp: DTD or directive in the stream")
	case xml.Comment:
		return nil, starttls.NewProtocolError("xmpp: comment in the stream")
	case xml.ProcInst:
		if !decl || t.Target != "xml" {
			return nil, starttls.NewProtocolError("xmpp: processing instruction %q in the stream", starttls.Escape(clip(t.Target)))
		}
	}
	return tok, nil
}

// header reads the server's stream header: the optional XML declaration
// and the <stream:stream> start tag, which it returns. Anything else in
// its place is starttls.ErrProtocol.
func (s *stream) header() (xml.StartElement, error) {
	s.in.begin(s.maxSize)
	decl := true
	for {
		tok, err := s.token(decl)
		if err != nil {
			return xml.StartElement{}, err
		}
		decl = false
		switch t := tok.(type) {
		case xml.ProcInst:
			continue
		case xml.CharData:
			if isSpace(t) {
				continue
			}
			return xml.StartElement{}, starttls.NewProtocolError("xmpp: text %q where the stream header belongs", starttls.Escape(clip(string(t))))
		case xml.StartElement:
			if t.Name.Space != nsStream || t.Name.Local != "stream" {
				return xml.StartElement{}, starttls.NewProtocolError("xmpp: %s where the stream header belongs", name(t.Name))
			}
			return t, nil
		}
		return xml.StartElement{}, starttls.NewProtocolError("xmpp: %T where the stream header belongs", tok)
	}
}

// node is a bounded tree of one top-level element.
type node struct {
	name     xml.Name
	attrs    []xml.Attr
	text     strings.Builder // at most maxText bytes kept
	children []*node
}

// child returns n's first child named space/local, or nil.
func (n *node) child(space, local string) *node {
	for _, c := range n.children {
		if c.name.Space == space && c.name.Local == local {
			return c
		}
	}
	return nil
}

// element reads the next top-level element of the stream, whole, and not
// a byte after its end tag: after a self-closing tag such as <proceed/>
// the decoder has read up to its '>' and no further. White space between
// elements (keepalives) is skipped. The server's end of stream
// (</stream:stream>) is io.ErrUnexpectedEOF. Over the size or the depth
// bound it is starttls.ErrTooLarge.
func (s *stream) element() (*node, error) {
	s.in.begin(s.maxSize)
	var stack []*node
	for {
		tok, err := s.token(false)
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= s.maxDepth {
				return nil, fmt.Errorf("%w: xmpp: elements nested deeper than %d", starttls.ErrTooLarge, s.maxDepth)
			}
			n := &node{name: t.Name, attrs: t.Attr}
			if len(stack) > 0 {
				parent := stack[len(stack)-1]
				parent.children = append(parent.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, fmt.Errorf("xmpp: the server closed the stream: %w", io.ErrUnexpectedEOF)
			}
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return n, nil
			}
		case xml.CharData:
			if len(stack) == 0 {
				if !isSpace(t) {
					return nil, starttls.NewProtocolError("xmpp: text %q between elements", starttls.Escape(clip(string(t))))
				}
				continue
			}
			n := stack[len(stack)-1]
			if room := maxText - n.text.Len(); room > 0 {
				n.text.Write(t[:min(len(t), room)])
			}
		}
	}
}

func isSpace(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			return false
		}
	}
	return true
}

func attr(attrs []xml.Attr, local string) (string, bool) {
	for _, a := range attrs {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}

func name(n xml.Name) string {
	if n.Space == "" {
		return "<" + starttls.Escape(clip(n.Local)) + ">"
	}
	return "<" + starttls.Escape(clip(n.Local)) + " xmlns='" + starttls.Escape(clip(n.Space)) + "'>"
}

func clip(s string) string {
	if len(s) > maxText {
		return s[:maxText] + "..."
	}
	return s
}
