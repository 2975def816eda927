package starttls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// ServerDialogue is one protocol's side of a pre-TLS server front, the
// server-side mirror of [Upgrader]. The core ([Serve]) runs the loop and
// owns the deadlines, the count of refused commands, the upgrade switch,
// the context and the errors; a dialogue only says what to answer. The
// context is applied to the connection by the core, so a dialogue need not
// watch it.
//
// A dialogue may also implement [Redactor] (which of the client's lines
// carry credentials, for transcripts). ExampleServe plugs in a protocol the
// core has never heard of.
type ServerDialogue interface {
	// Protocol returns the protocol's name, used in errors.
	Protocol() string
	// Greeting returns the lines that open the session.
	Greeting() []string
	// Command answers one command line, read by the core within the idle
	// bound, without its line end. line is valid only until the next read
	// from c: a dialogue whose commands continue beyond the line (literals)
	// copies what it keeps, then reads the rest from c, under the same
	// deadline; an error from those reads is returned as it is and ends
	// the session as a failed read of the line would. A dialogue that only
	// answers never touches c.
	Command(ctx context.Context, c *Conn, line []byte) (Reply, error)
	// Farewell returns the last lines written, best effort, before the core
	// closes the connection on its own for reason; none closes silently.
	Farewell(reason CloseReason) []string
}

// Reply is a [ServerDialogue]'s answer to one command.
type Reply struct {
	// Lines are written in order, each with CRLF. A line containing CR,
	// LF or NUL fails the session with ErrUnsafeArgument before any of
	// them is written.
	Lines []string
	// Refused counts the command against ServerOptions.MaxErrors. A
	// refused command over the bound gets the dialogue's
	// CloseTooManyErrors farewell instead of Lines, and the session ends
	// with ErrProtocol. Zero means the command was answered normally.
	Refused bool
	// GoAhead, when not empty, starts TLS: the core hands over to
	// [ServerUpgrade] with this go-ahead line and Refusal, and Lines is
	// ignored. Zero means no upgrade.
	GoAhead string
	// Refusal is the line written instead of GoAhead when bytes are
	// buffered behind the upgrade command. Zero means close without a
	// reply.
	Refusal string
	// Close, when not nil, ends the session after Lines (written best
	// effort): [Serve] closes the connection and fails with Close, wrapped
	// in an [*Error] at StepCommand. ErrQuit for a client that leaves;
	// an error matching ErrTooLarge or ErrProtocol for a command that
	// cannot be brought back in step. Zero means the session goes on.
	Close error
}

// CloseReason says why [Serve] closes a connection on its own.
type CloseReason int

// The reasons for a [ServerDialogue.Farewell].
const (
	// CloseTooLong: a command line over the bound (ErrTooLarge).
	CloseTooLong CloseReason = iota + 1
	// CloseIdle: the idle bound or the pre-TLS bound passed
	// (os.ErrDeadlineExceeded).
	CloseIdle
	// CloseTooManyErrors: a refused command over MaxErrors (ErrProtocol).
	CloseTooManyErrors
)

// Serve runs d's pre-TLS front on conn, a freshly accepted connection, and
// returns the session once the client has started TLS:
//
//   - it writes d's greeting, then reads one command line at a time, each
//     within IdleTimeout, all of them within PreTLSTimeout, and writes d's
//     reply to it;
//   - a refused command ([Reply.Refused]) counts against MaxErrors; the
//     first one over gets the CloseTooManyErrors farewell and closes
//     (ErrProtocol);
//   - a line over the bound gets the CloseTooLong farewell and closes
//     (ErrTooLarge); a client silent for IdleTimeout, or still in
//     plaintext after PreTLSTimeout, gets the CloseIdle farewell and closes
//     (os.ErrDeadlineExceeded);
//   - an HTTP request line where a command belongs ([IsHTTPRequest]: a
//     browser made to talk to this port, the ALPACA cross-protocol attack)
//     closes at once without a reply (ErrProtocol);
//   - a reply with GoAhead hands over to [ServerUpgrade], under ctx bounded
//     further by HandshakeTimeout.
//
// ctx bounds everything, the handshake included: cancelling it aborts any
// blocked read or write at once, and no farewell is written. A ctx already
// done writes nothing. A nil opts is the zero value, which fails: TLSConfig
// is required.
//
// On success the caller owns the returned Conn over the *tls.Conn
// ([Conn.TLS]), with no deadline set; nothing read before TLS is carried
// over, and ctx no longer touches it. On error conn is closed and the error
// is an [*Error] matching ErrConfig, ErrQuit (or whatever a Reply's Close
// gave), ErrInjectedData, ErrTooLarge, ErrProtocol, ErrUnsafeArgument,
// ErrHandshake, context.DeadlineExceeded or context.Canceled,
// os.ErrDeadlineExceeded, or io.ErrUnexpectedEOF when the client hung up.
func Serve(ctx context.Context, conn net.Conn, d ServerDialogue, opts *ServerOptions) (tc *Conn, err error) {
	if opts == nil {
		opts = &ServerOptions{}
	}
	s := &serverLoop{ctx: ctx, d: d, opts: opts, protocol: d.Protocol()}
	if opts.TLSConfig == nil {
		conn.Close()
		return nil, &Error{Protocol: s.protocol, Step: StepConfig, Kind: ErrConfig, Err: errors.New("nil TLSConfig")}
	}
	var connOpts Options
	if opts.Conn != nil {
		connOpts = *opts.Conn
	}
	connOpts.Server = true
	if r, ok := d.(Redactor); ok && connOpts.Redactor == nil {
		connOpts.Redactor = r
	}
	s.c = NewConn(conn, &connOpts)
	s.w.start(ctx, conn)
	s.preTLSEnd = time.Now().Add(duration(opts.PreTLSTimeout, DefaultPreTLSTimeout))
	defer func() {
		s.w.release()
		if err != nil {
			conn.Close()
		}
	}()
	return s.run()
}

// serverLoop is one run of [Serve].
type serverLoop struct {
	ctx       context.Context
	c         *Conn
	d         ServerDialogue
	opts      *ServerOptions
	protocol  string
	w         watch
	preTLSEnd time.Time
	refused   int
}

func (s *serverLoop) run() (*Conn, error) {
	if err := s.arm(); err != nil {
		return nil, s.fail(nil, err)
	}
	if err := s.write(s.d.Greeting()); err != nil {
		return nil, err
	}
	maxErrors := s.opts.MaxErrors
	if maxErrors <= 0 {
		maxErrors = DefaultMaxErrors
	}
	for {
		if err := s.arm(); err != nil {
			return nil, s.fail(nil, err)
		}
		line, err := s.c.ReadLine()
		var r Reply
		if err == nil {
			if IsHTTPRequest(line) {
				return nil, s.fail(nil, NewProtocolError("http request where a command belongs"))
			}
			r, err = s.d.Command(s.ctx, s.c, line)
		}
		if err != nil {
			return nil, s.readFailed(err)
		}
		if r.GoAhead != "" {
			return s.upgrade(r.GoAhead, r.Refusal)
		}
		if r.Refused {
			s.refused++
			if s.refused > maxErrors {
				return nil, s.leave(CloseTooManyErrors, ErrProtocol, fmt.Errorf("more than %d refused commands before tls", maxErrors))
			}
		}
		if r.Close != nil {
			s.writeBestEffort(r.Lines)
			return nil, s.fail(nil, r.Close)
		}
		if err := s.write(r.Lines); err != nil {
			return nil, err
		}
	}
}

// arm sets the deadline for the next command and its reply: the idle
// timeout from now, or the end of the pre-TLS phase, or ctx's deadline,
// whichever comes first. It checks ctx after setting the deadline, so that
// a cancellation racing with it is not lost.
func (s *serverLoop) arm() error {
	d := time.Now().Add(duration(s.opts.IdleTimeout, DefaultIdleTimeout))
	if s.preTLSEnd.Before(d) {
		d = s.preTLSEnd
	}
	if cd, ok := s.ctx.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	s.w.setDeadline(d)
	return s.ctx.Err()
}

// readFailed ends the session after reading a command failed.
func (s *serverLoop) readFailed(err error) error {
	switch {
	case errors.Is(err, ErrTooLarge):
		return s.leave(CloseTooLong, ErrTooLarge, err)
	case errors.Is(err, os.ErrDeadlineExceeded) && contextErr(s.ctx, time.Time{}, nil) == nil:
		err = s.preTLSOver(err)
		// The command deadline has passed: the farewell gets a second.
		s.w.setDeadline(time.Now().Add(time.Second))
		return s.leave(CloseIdle, nil, err)
	}
	return s.fail(nil, err)
}

// preTLSOver says, in err, when a conn deadline that passed was the end
// of the pre-TLS phase rather than the idle bound: the bound can pass while
// a command is read or while its reply is written.
func (s *serverLoop) preTLSOver(err error) error {
	if !time.Now().Before(s.preTLSEnd) {
		return fmt.Errorf("pre-tls phase over %v: %w", duration(s.opts.PreTLSTimeout, DefaultPreTLSTimeout), err)
	}
	return err
}

// leave writes the farewell for reason, best effort, and returns the
// session's error.
func (s *serverLoop) leave(reason CloseReason, kind, err error) error {
	s.writeBestEffort(s.d.Farewell(reason))
	return s.fail(kind, err)
}

// fail returns the *Error ending the session at StepCommand, mapped as the
// client's steps are (a hang-up is io.ErrUnexpectedEOF, ctx's error is
// joined when ctx ended).
func (s *serverLoop) fail(kind, err error) error {
	return stepError(s.ctx, s.protocol, StepCommand, kind, err)
}

// write writes lines, checking all of them before the first.
func (s *serverLoop) write(lines []string) error {
	for _, l := range lines {
		if err := CheckLine(l); err != nil {
			return s.fail(nil, err)
		}
	}
	for _, l := range lines {
		if err := s.c.WriteLine(l); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && contextErr(s.ctx, time.Time{}, nil) == nil {
				err = s.preTLSOver(err)
			}
			return s.fail(nil, err)
		}
	}
	return nil
}

func (s *serverLoop) writeBestEffort(lines []string) {
	for _, l := range lines {
		s.c.WriteLine(l)
	}
}

// upgrade hands over to the switch. The transition runs under ctx bounded
// further by HandshakeTimeout: one watch for the whole session, its
// deadline replaced by the sooner of the two, rather than a derived
// context and a second watch, with the same bounds.
func (s *serverLoop) upgrade(goAhead, refusal string) (*Conn, error) {
	limit := time.Now().Add(duration(s.opts.HandshakeTimeout, DefaultHandshakeTimeout))
	if cd, ok := s.ctx.Deadline(); ok && cd.Before(limit) {
		limit = cd
	}
	s.w.setDeadline(limit)
	if err := s.ctx.Err(); err != nil {
		// Done before the watch fired: no go-ahead.
		return nil, stepError(s.ctx, s.protocol, StepStartTLS, nil, err)
	}
	return serverSwitch(s.ctx, limit, s.c, &ServerSwitch{
		Protocol:  s.protocol,
		GoAhead:   goAhead,
		Refusal:   refusal,
		TLSConfig: s.opts.TLSConfig,
	})
}

// httpMethods are the request methods of RFC 9110, Section 9 and the
// WebDAV ones a browser's fetch can send.
var httpMethods = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK"}

// IsHTTPRequest reports whether line is an HTTP/1 request line ("POST
// /x HTTP/1.1", RFC 9112, Section 3): what a browser sends when a web page
// makes it talk to a mail port. A server reading one where a command
// belongs, before TLS or right after it, should close the connection
// without a reply: any answer, even an error echoing the request, is what
// the ALPACA cross-protocol attacks (USENIX Security 2021) turn into a
// response the browser uses. [Serve] does so for the pre-TLS phase; a
// caller's post-TLS loop should check its first command too.
func IsHTTPRequest(line []byte) bool {
	method, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return false
	}
	i := bytes.LastIndexByte(rest, ' ')
	if i < 0 || !bytes.HasPrefix(rest[i+1:], []byte("HTTP/")) {
		return false
	}
	for _, m := range httpMethods {
		if string(method) == m {
			return true
		}
	}
	return false
}
