package starttls

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"sync"
)

// Default bounds of a [Conn].
const (
	// DefaultMaxLineLength is the longest line accepted, terminator excluded.
	// It is four times the 1000 octets of RFC 5321, Section 4.5.3.1.6 and
	// comfortably above real IMAP CAPABILITY lines (about 1 KiB).
	DefaultMaxLineLength = 4096
	// DefaultMaxResponseLines is the most lines one multi-line response may
	// have (an EHLO reply, a CAPA list, untagged IMAP data before a
	// completion).
	DefaultMaxResponseLines = 1000
)

// Options configures a [Conn]. A nil *Options means the defaults.
type Options struct {
	// MaxLineLength bounds a line, terminator excluded. Zero means
	// DefaultMaxLineLength. A longer line fails with ErrTooLarge and the
	// excess is never buffered: the read buffer holds at most
	// MaxLineLength+2 bytes (16 for bounds under 14, bufio's minimum).
	MaxLineLength int
	// MaxResponseLines bounds the lines of one response read with
	// [Conn.ReadResponse]. Zero means DefaultMaxResponseLines.
	MaxResponseLines int
	// Transcript, when not nil, receives every line read or written through
	// ReadLine and WriteLine, one per Write, prefixed "S: " for lines from
	// the server and "C: " for lines from the client, with control
	// characters escaped. Credentials are recorded redacted, whether read
	// or written: Redactor decides which lines carry them, and whole lines
	// written with [Conn.WriteSecretLine] (SASL responses) are always
	// redacted. Zero means no transcript.
	Transcript io.Writer
	// Redactor says which lines carry credentials, for the transcript.
	// [Upgrade] sets it from an [Upgrader] that implements Redactor when
	// it is nil here. Zero means [DefaultRedactor], which hides everything
	// after an authentication-looking word.
	Redactor Redactor
	// Server is true when this end is the server: lines read are then
	// recorded as "C: " and lines written as "S: ". Zero means client.
	Server bool
}

// Conn wraps a net.Conn with a bounded line reader and a line writer for the
// plaintext dialogue that precedes TLS. It is itself a net.Conn: Read drains
// the line reader's buffer before reading from the wrapped conn, Write and
// the rest go straight to it.
//
// A Conn is for one reader goroutine and one writer goroutine at a time, as a
// net.Conn is.
type Conn struct {
	net.Conn
	rmu        sync.Mutex // guards r and lineErr: net.Conn allows concurrent Reads
	r          *bufio.Reader
	lineErr    error // set once ReadLine lost its place in the line stream
	heard      bool  // a byte was consumed from the peer (see silent)
	maxLine    int
	maxLines   int
	server     bool
	mu         sync.Mutex // guards transcript and wbuf
	transcript io.Writer
	redactor   Redactor
	wbuf       []byte
}

// NewConn wraps conn. The options are copied; nil means the defaults.
func NewConn(conn net.Conn, opts *Options) *Conn {
	c := &Conn{Conn: conn, maxLine: DefaultMaxLineLength, maxLines: DefaultMaxResponseLines}
	if opts != nil {
		if opts.MaxLineLength > 0 {
			c.maxLine = opts.MaxLineLength
		}
		if opts.MaxResponseLines > 0 {
			c.maxLines = opts.MaxResponseLines
		}
		c.transcript = opts.Transcript
		c.redactor = opts.Redactor
		c.server = opts.Server
	}
	c.r = bufio.NewReaderSize(conn, c.maxLine+2)
	return c
}

// handOver returns a Conn on next, the *tls.Conn that now carries c's
// session, with c's options. The caller has checked that c's read buffer is
// empty (Buffered is 0), so the new Conn takes over c's reader and write
// buffer, reset onto next, instead of allocating its own: nothing read
// before TLS can reach it. c is left without a reader: its reads fail with
// net.ErrClosed from then on.
func (c *Conn) handOver(next net.Conn) *Conn {
	c.rmu.Lock()
	r := c.r
	c.r = nil
	c.rmu.Unlock()
	c.mu.Lock()
	wbuf, transcript := c.wbuf, c.transcript
	c.wbuf = nil
	c.mu.Unlock()
	if r == nil {
		return NewConn(next, &Options{MaxLineLength: c.maxLine, MaxResponseLines: c.maxLines, Transcript: transcript, Redactor: c.redactor, Server: c.server})
	}
	r.Reset(next)
	return &Conn{Conn: next, r: r, maxLine: c.maxLine, maxLines: c.maxLines, server: c.server, transcript: transcript, redactor: c.redactor, wbuf: wbuf}
}

// switchTo moves c itself onto next, the *tls.Conn that now carries the
// session, for the client upgrade, where no one else holds c. The read
// buffer, which the caller has checked is empty, is reset onto next:
// nothing read before TLS survives, and no new buffer is allocated.
func (c *Conn) switchTo(next net.Conn) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Conn = next
	if c.r == nil {
		c.r = bufio.NewReaderSize(next, c.maxLine+2)
	} else {
		c.r.Reset(next)
	}
	c.lineErr = nil
}

// NetConn returns the wrapped connection.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// TLS returns the wrapped connection as a *tls.Conn, or nil when it is not
// one.
func (c *Conn) TLS() *tls.Conn {
	t, _ := c.Conn.(*tls.Conn)
	return t
}

// Buffered returns how many bytes have been read from the wrapped connection
// but not yet consumed. At a STARTTLS switch it must be zero: anything
// buffered arrived before TLS. It waits for a Read running on another
// goroutine to return.
func (c *Conn) Buffered() int {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.r == nil {
		return 0 // handed over to TLS
	}
	return c.r.Buffered()
}

// silent reports whether the peer has sent nothing at all on c: no byte
// consumed, none buffered.
func (c *Conn) silent() bool {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	return !c.heard && (c.r == nil || c.r.Buffered() == 0)
}

// MaxLineLength returns the line bound in force.
func (c *Conn) MaxLineLength() int { return c.maxLine }

// MaxResponseLines returns the bound on lines per response.
func (c *Conn) MaxResponseLines() int { return c.maxLines }

// SetTranscript replaces the transcript writer; nil turns it off.
func (c *Conn) SetTranscript(w io.Writer) {
	c.mu.Lock()
	c.transcript = w
	c.mu.Unlock()
}

// Read reads raw bytes, buffered ones first. Concurrent calls are
// serialised, as the net.Conn contract allows them.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.r == nil {
		return 0, net.ErrClosed // handed over to TLS
	}
	n, err := c.r.Read(p)
	c.heard = c.heard || n > 0
	return n, err
}

// ReadByte reads one raw byte through the line reader's buffer. With it a
// Conn is an [io.ByteReader], so a decoder of a binary or XML dialogue
// (encoding/xml, a BER reader) reads exactly the bytes it consumes and
// nothing more: whatever the peer sent beyond them stays counted by
// [Conn.Buffered], where the checked switch sees it.
func (c *Conn) ReadByte() (byte, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.r == nil {
		return 0, net.ErrClosed // handed over to TLS
	}
	b, err := c.r.ReadByte()
	c.heard = c.heard || err == nil
	return b, err
}

// ReadLine reads one line and returns it without its terminator. The slice
// is valid until the next read on c.
//
// A line ends at LF; one CR immediately before the LF is removed. A bare LF
// is accepted as a line end (robustness, RFC 5321 Section 2.3.8 warns of
// peers that send it); a CR not followed by LF is data and never ends a
// line. A line longer than the bound fails with ErrTooLarge; end of stream
// fails with io.EOF when no byte of the line had arrived and
// io.ErrUnexpectedEOF inside a line.
//
// Errors that leave the reader out of step with the peer's lines are final:
// after ErrTooLarge, or any error once part of a line was consumed (a
// deadline in mid-line), every later ReadLine returns the same error. The
// tail of a cut line is never returned as a line of its own, where it could
// pass for a command.
func (c *Conn) ReadLine() ([]byte, error) {
	c.rmu.Lock()
	line, err := c.readLineLocked()
	c.rmu.Unlock()
	if err != nil {
		return nil, err
	}
	c.record(false, line, false)
	return line, nil
}

func (c *Conn) readLineLocked() ([]byte, error) {
	if c.lineErr != nil {
		return nil, c.lineErr
	}
	if c.r == nil {
		return nil, net.ErrClosed // handed over to TLS
	}
	line, err := c.r.ReadSlice('\n')
	c.heard = c.heard || len(line) > 0
	if err != nil {
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			err = fmt.Errorf("%w: line longer than %d bytes", ErrTooLarge, c.maxLine)
		case errors.Is(err, io.EOF) && len(line) > 0:
			err = io.ErrUnexpectedEOF
		}
		if len(line) > 0 {
			c.lineErr = err // bytes of this line are gone
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > c.maxLine {
		c.lineErr = fmt.Errorf("%w: line longer than %d bytes", ErrTooLarge, c.maxLine)
		return nil, c.lineErr
	}
	return line, nil
}

// ReadResponse reads lines and hands each to more until more returns false
// or an error. More than MaxResponseLines lines fail with ErrTooLarge. The
// line passed to more is valid only during the call.
func (c *Conn) ReadResponse(more func(line []byte) (bool, error)) error {
	for n := 0; ; n++ {
		if n >= c.maxLines {
			return fmt.Errorf("%w: response longer than %d lines", ErrTooLarge, c.maxLines)
		}
		line, err := c.ReadLine()
		if err != nil {
			return err
		}
		cont, err := more(line)
		if err != nil || !cont {
			return err
		}
	}
}

// Discard consumes and drops n bytes, as an IMAP literal that is not needed.
// It skips through the line reader's own buffer, so it allocates nothing,
// whatever n is. A stream that ends first fails with io.ErrUnexpectedEOF.
func (c *Conn) Discard(n int64) error {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.r == nil && n > 0 {
		return net.ErrClosed // handed over to TLS
	}
	for n > 0 {
		chunk := n
		if chunk > math.MaxInt32 {
			chunk = math.MaxInt32
		}
		m, err := c.r.Discard(int(chunk))
		n -= int64(m)
		c.heard = c.heard || m > 0
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// CheckLine reports ErrUnsafeArgument when s contains CR, LF or NUL: such a
// string would end the line (a command, a reply) early and smuggle another
// one in. The error names the character and where it is.
func CheckLine(s string) error {
	if i := strings.IndexAny(s, "\r\n\x00"); i >= 0 {
		name := map[byte]string{'\r': "CR", '\n': "LF", 0: "NUL"}[s[i]]
		return fmt.Errorf(`%w: %s at byte %d of "%s" would end the line there`, ErrUnsafeArgument, name, i, Escape(s))
	}
	return nil
}

// WriteLine writes line followed by CRLF in a single Write. It refuses a
// line containing CR, LF or NUL with ErrUnsafeArgument and writes nothing.
func (c *Conn) WriteLine(line string) error {
	return c.writeLine(line, false)
}

// WriteSecretLine is WriteLine for a line that carries credentials (AUTH,
// LOGIN, PASS): the transcript records the command word (with the tag of
// an IMAP command) and "<redacted>". A line without a space, such as a
// SASL response, is recorded as "<redacted>" alone.
func (c *Conn) WriteSecretLine(line string) error {
	return c.writeLine(line, true)
}

// WriteCommand writes verb and args joined by single spaces as one line. An
// argument containing CR, LF or NUL is refused with ErrUnsafeArgument and
// nothing is written.
func (c *Conn) WriteCommand(verb string, args ...string) error {
	if len(args) == 0 {
		return c.writeLine(verb, false)
	}
	// Joined straight into the write buffer, sized once: no intermediate
	// string.
	n := len(verb) + 2
	for _, a := range args {
		n += 1 + len(a)
	}
	c.mu.Lock()
	c.growWriteBuffer(n)
	buf := append(c.wbuf[:0], verb...)
	for _, a := range args {
		buf = append(append(buf, ' '), a...)
	}
	if bytes.ContainsAny(buf, "\r\n\x00") {
		err := CheckLine(string(buf))
		if cap(buf) <= 1024 {
			c.wbuf = buf[:0]
		}
		c.mu.Unlock()
		return err
	}
	return c.writeLocked(append(buf, '\r', '\n'), false)
}

func (c *Conn) writeLine(line string, secret bool) error {
	if err := CheckLine(line); err != nil {
		return err
	}
	c.mu.Lock()
	c.growWriteBuffer(len(line) + 2)
	return c.writeLocked(append(append(c.wbuf[:0], line...), '\r', '\n'), secret)
}

// growWriteBuffer makes room for an n-byte line in c.wbuf at once, rather
// than in append's steps. c.mu is held.
func (c *Conn) growWriteBuffer(n int) {
	if cap(c.wbuf) < n {
		c.wbuf = make([]byte, 0, max(n, 128))
	}
}

// writeLocked writes buf, a line and its CRLF built in c.wbuf's memory,
// records it and unlocks c.mu.
func (c *Conn) writeLocked(buf []byte, secret bool) error {
	c.wbuf = buf
	_, err := c.Conn.Write(buf)
	if len(buf) > 1024 {
		c.wbuf = nil // do not pin a large buffer
	}
	c.mu.Unlock()
	c.record(true, buf[:len(buf)-2], secret)
	return err
}

// Mark writes a note line ("-- TLS --") into the transcript, if any.
func (c *Conn) Mark(note string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.transcript != nil {
		io.WriteString(c.transcript, note+"\n")
	}
}

func (c *Conn) record(written bool, line []byte, secret bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.transcript == nil {
		return
	}
	prefix := "S: "
	if written != c.server {
		prefix = "C: "
	}
	redactor := c.redactor
	if redactor == nil {
		redactor = DefaultRedactor
	}
	var text string
	if prefix == "S: " {
		// Replies carry no credentials (a capability line "AUTH PLAIN"
		// names mechanisms); only the client's lines are redacted.
		text = string(line)
	} else if keep, ok := redactor.Redact(tabsAsSpaces(line)); ok && keep > 0 {
		text = string(line[:min(keep, len(line))]) + " <redacted>"
	} else if ok || secret {
		// A line the caller marked secret that the redactor does not
		// recognise, such as a bare SASL response (base64 credentials).
		text = "<redacted>"
	} else {
		text = string(line)
	}
	io.WriteString(c.transcript, prefix+transcriptEscape(text)+"\n")
}

// transcriptEscape is Escape for a transcript line: controls, invalid
// UTF-8 and format characters are escaped and the line is bounded, but a
// backslash stays one backslash, so that an IMAP flag reads \Answered as
// the server sent it, not \\Answered. No raw control reaches the
// transcript's reader; a backslash sequence in it may be the peer's own
// text.
func transcriptEscape(s string) string {
	return escape(s, false, maxEscaped)
}

// tabsAsSpaces returns line with each tab replaced by a space, for a
// Redactor: the same length, so its keep indexes the line as sent. It
// copies only when there is a tab.
func tabsAsSpaces(line []byte) []byte {
	if bytes.IndexByte(line, '\t') < 0 {
		return line
	}
	return bytes.ReplaceAll(line, []byte("\t"), []byte(" "))
}
