package ldap

import (
	"errors"
	"fmt"
	"io"

	"github.com/tlsup/tlsup/starttls"
)

// The few BER elements of an LDAP message (RFC 4511, Section 5.1: BER
// restricted to definite lengths, no constructed strings), read and written
// by hand: a tag byte, a length, and contents.
const (
	tagInteger     = 0x02
	tagOctetString = 0x04
	tagEnumerated  = 0x0a
	tagSequence    = 0x30
	// [APPLICATION 23] and [APPLICATION 24], constructed.
	tagExtendedRequest  = 0x77
	tagExtendedResponse = 0x78
	// Context tags inside the extended operations (RFC 4511, Section 4.12).
	tagRequestName   = 0x80 // [0] LDAPOID
	tagReferral      = 0xa3 // [3] Referral, constructed
	tagResponseName  = 0x8a // [10] LDAPOID
	tagResponseValue = 0x8b // [11] OCTET STRING
	tagControls      = 0xa0 // [0] Controls, in LDAPMessage
)

// element is one BER element: its tag byte and its contents.
type element struct {
	tag      byte
	contents []byte
}

// readLength reads a BER length from r: the short form (one octet under
// 0x80) or the long form (0x81 to 0x88, then that many octets, big-endian).
// The indefinite form (0x80) and the reserved 0xff are starttls.ErrProtocol
// (RFC 4511, Section 5.1). A length above max is starttls.ErrTooLarge, and
// is reported before anything of that size is allocated.
func readLength(r io.ByteReader, max int) (int, error) {
	first, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	if first < 0x80 {
		return checkLength(uint64(first), max)
	}
	count := int(first & 0x7f)
	switch {
	case count == 0:
		return 0, starttls.NewProtocolError("ldap: indefinite BER length")
	case first == 0xff:
		return 0, starttls.NewProtocolError("ldap: reserved BER length octet 0xff")
	case count > 8:
		// Over any bound (or padded absurdly): not read at all.
		return 0, fmt.Errorf("%w: ldap: BER length of %d octets (limit %d bytes)", starttls.ErrTooLarge, count, max)
	}
	var n uint64
	for i := 0; i < count; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		n = n<<8 | uint64(b)
	}
	return checkLength(n, max)
}

func checkLength(n uint64, max int) (int, error) {
	if n > uint64(max) {
		return 0, fmt.Errorf("%w: ldap: BER length %d (limit %d)", starttls.ErrTooLarge, n, max)
	}
	return int(n), nil
}

// readElement reads one whole BER element from r: its tag, its length
// (bounded by max before anything is allocated) and exactly that many
// bytes of contents, nothing beyond. Only single-octet tags occur in LDAP;
// the high-tag-number form is starttls.ErrProtocol. A stream that ends
// inside the element is io.ErrUnexpectedEOF; one that ends before it,
// io.EOF.
func readElement(r io.Reader, max int) (element, error) {
	br := byteReader(r)
	tag, err := br.ReadByte()
	if err != nil {
		return element{}, err
	}
	if tag&0x1f == 0x1f {
		return element{}, starttls.NewProtocolError("ldap: multi-octet BER tag %#02x", tag)
	}
	n, err := readLength(br, max)
	if err != nil {
		return element{}, unexpected(err)
	}
	contents := make([]byte, n)
	if _, err := io.ReadFull(r, contents); err != nil {
		return element{}, unexpected(err)
	}
	return element{tag: tag, contents: contents}, nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// byteReader returns r as an io.ByteReader: itself when it is one (a
// starttls.Conn, whose ReadByte takes from its own buffer), else an adapter
// reading one byte at a time. Either way nothing is read ahead into a buffer
// of this package, where the core's check for bytes behind the go-ahead
// could not see it.
func byteReader(r io.Reader) io.ByteReader {
	if br, ok := r.(io.ByteReader); ok {
		return br
	}
	return oneByteReader{r}
}

type oneByteReader struct{ r io.Reader }

func (o oneByteReader) ReadByte() (byte, error) {
	var b [1]byte
	_, err := io.ReadFull(o.r, b[:])
	return b[0], err
}

// sliceReader reads elements from contents already in memory.
type sliceReader struct{ b []byte }

func (s *sliceReader) ReadByte() (byte, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c, nil
}

// next parses the next element of s; it never allocates: the contents
// alias s's memory. Past the end it returns io.EOF.
func (s *sliceReader) next() (element, error) {
	if len(s.b) == 0 {
		return element{}, io.EOF
	}
	tag, _ := s.ReadByte()
	if tag&0x1f == 0x1f {
		return element{}, starttls.NewProtocolError("ldap: multi-octet BER tag %#02x", tag)
	}
	n, err := readLength(s, len(s.b))
	if errors.Is(err, io.EOF) || errors.Is(err, starttls.ErrTooLarge) || (err == nil && n > len(s.b)) {
		return element{}, starttls.NewProtocolError("ldap: BER element %#02x overruns its container", tag)
	}
	if err != nil {
		return element{}, err
	}
	e := element{tag: tag, contents: s.b[:n:n]}
	s.b = s.b[n:]
	return e, nil
}

// expect parses the next element and checks its tag.
func (s *sliceReader) expect(tag byte, what string) ([]byte, error) {
	e, err := s.next()
	if errors.Is(err, io.EOF) {
		return nil, starttls.NewProtocolError("ldap: %s missing", what)
	}
	if err != nil {
		return nil, err
	}
	if e.tag != tag {
		return nil, starttls.NewProtocolError("ldap: %s has tag %#02x, want %#02x", what, e.tag, tag)
	}
	return e.contents, nil
}

// parseInt decodes a BER INTEGER or ENUMERATED that must fit in 0..2^31-1
// (a message ID, a result code).
func parseInt(b []byte, what string) (int, error) {
	if len(b) == 0 || len(b) > 5 || (len(b) == 5 && b[0] != 0) {
		return 0, starttls.NewProtocolError("ldap: %s of %d octets", what, len(b))
	}
	if b[0]&0x80 != 0 {
		return 0, starttls.NewProtocolError("ldap: negative %s", what)
	}
	n := 0
	for _, c := range b {
		n = n<<8 | int(c)
	}
	if n > 1<<31-1 {
		return 0, starttls.NewProtocolError("ldap: %s %d out of range", what, n)
	}
	return n, nil
}

// appendElement appends one BER element with a definite length in the
// shortest form.
func appendElement(dst []byte, tag byte, contents ...[]byte) []byte {
	n := 0
	for _, c := range contents {
		n += len(c)
	}
	dst = append(dst, tag)
	switch {
	case n < 0x80:
		dst = append(dst, byte(n))
	case n <= 0xff:
		dst = append(dst, 0x81, byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x82, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	for _, c := range contents {
		dst = append(dst, c...)
	}
	return dst
}

// appendInt encodes a non-negative INTEGER or ENUMERATED contents in the
// fewest octets.
func appendInt(dst []byte, tag byte, v int) []byte {
	var b []byte
	for {
		b = append([]byte{byte(v)}, b...)
		v >>= 8
		if v == 0 {
			break
		}
	}
	if b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return appendElement(dst, tag, b)
}
