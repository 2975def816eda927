package starttls

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// Front is the protocol-neutral machinery of one run of a server's pre-TLS
// front (see [ServerUpgrader]): the context watch, the idle deadline per
// command, the count of refused commands, the error mapping and the
// STARTTLS transition. A protocol package keeps only its dialogue: the
// greeting, the command dispatch and the replies.
//
// A typical Serve:
//
//	f := starttls.NewFront(ctx, conn, "pop3", &s.Options)
//	defer func() { f.Finish(err) }()
//	if err := f.Start(); err != nil { return nil, err }
//	... write the greeting with f.WriteLine ...
//	for {
//		line, err := f.ReadLine()
//		... dispatch; f.Refused() for each refused command ...
//		... STARTTLS: return f.Upgrade(goAhead, refusal) ...
//	}
//
// The context given to NewFront bounds everything: cancelling it, or its
// deadline passing, aborts any blocked read or write at once. Once
// [Front.Finish] has returned, the context no longer touches the conn. A
// Front is used by one goroutine.
type Front struct {
	ctx      context.Context
	raw      net.Conn
	c        *Conn
	protocol string
	opts     *ServerOptions
	w        watch // a field, not a pointer: one allocation less per front
	refused  int
}

// NewFront starts a pre-TLS front on conn, a freshly accepted connection,
// for protocol (the name in errors). It wraps conn with opts' line bounds
// and transcript in the server role, with redactor (the protocol's, used
// when opts.Conn sets none) for the transcript, and starts watching ctx. opts may be nil,
// meaning the defaults, but [Front.Start] then fails: TLSConfig is
// required. Nothing is read or written until the caller does.
func NewFront(ctx context.Context, conn net.Conn, protocol string, redactor Redactor, opts *ServerOptions) *Front {
	if opts == nil {
		opts = &ServerOptions{}
	}
	f := &Front{
		ctx:      ctx,
		raw:      conn,
		c:        opts.newServerConn(conn, redactor),
		protocol: protocol,
		opts:     opts,
	}
	f.w.start(ctx, conn)
	return f
}

// Conn returns the line reader and writer over the plaintext conn, for
// replies a protocol writes itself (multi-line ones). Errors of its writes
// go through [Front.Fail].
func (f *Front) Conn() *Conn { return f.c }

// Start checks the options and arms the deadline for the greeting. A nil
// TLSConfig fails at StepConnect before anything is written; a context
// already done fails with its error.
func (f *Front) Start() error {
	if f.opts.TLSConfig == nil {
		return &Error{Protocol: f.protocol, Step: StepConnect, Err: errors.New("nil TLSConfig")}
	}
	return f.Arm()
}

// Arm sets the deadline for the next command and its reply: the idle
// timeout from now, or ctx's deadline when sooner. It checks ctx after
// setting the deadline, so that a cancellation racing with it is not lost,
// and returns ctx's error wrapped by [Front.Fail] when ctx is done.
func (f *Front) Arm() error {
	if err := f.arm(); err != nil {
		return f.Fail(nil, err)
	}
	return nil
}

// arm is Arm returning ctx's error as it is.
func (f *Front) arm() error {
	d := time.Now().Add(f.opts.IdleTimeoutOrDefault())
	if cd, ok := f.ctx.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	f.raw.SetDeadline(d)
	return f.ctx.Err()
}

// ReadLine arms the idle deadline ([Front.Arm]) and reads one bounded
// command line. A protocol with its own command reader (IMAP literals)
// calls Arm and reads from [Front.Conn] instead.
//
// The error is returned as it is (ErrTooLarge for a line over the bound,
// os.ErrDeadlineExceeded when idle or when ctx ended, io.EOF, ctx's error
// when it was done before the read) so that the protocol can choose its
// last reply ([Front.Idle]); pass it to [Front.Leave] or [Front.Fail].
func (f *Front) ReadLine() ([]byte, error) {
	if err := f.arm(); err != nil {
		return nil, err
	}
	return f.c.ReadLine()
}

// Idle reports whether err is the idle timeout: the command deadline
// passed while ctx is still live.
func (f *Front) Idle(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) && f.ctxErr() == nil
}

// ctxErr returns ctx's error, or context.DeadlineExceeded once its deadline
// has passed even if its timer has not fired yet: the conn's deadline, set
// from it, may fire first.
func (f *Front) ctxErr() error {
	if err := f.ctx.Err(); err != nil {
		return err
	}
	if d, ok := f.ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// Fail returns the *Error ending the front at StepCommand, with kind (nil,
// ErrQuit, ErrTooLarge, ErrProtocol, ...) and cause err (which may be nil).
// A bare io.EOF becomes io.ErrUnexpectedEOF, and when ctx has ended its
// error is joined to err, so that errors.Is finds
// context.DeadlineExceeded or context.Canceled.
func (f *Front) Fail(kind, err error) error {
	if err != nil {
		if errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.ErrUnexpectedEOF
		}
		if ctxErr := f.ctxErr(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w: %w", ctxErr, err)
		}
	}
	return &Error{Protocol: f.protocol, Step: StepCommand, Kind: kind, Err: err}
}

// WriteLine writes one reply line; a failed write is returned through
// [Front.Fail] and ends the front.
func (f *Front) WriteLine(line string) error {
	if err := f.c.WriteLine(line); err != nil {
		return f.Fail(nil, err)
	}
	return nil
}

// Leave writes the last lines before the connection is closed, each one
// best effort, and returns [Front.Fail](kind, err). When err is the idle
// timeout ([Front.Idle]) the lines get a fresh write deadline of one
// second, since the command deadline has passed.
func (f *Front) Leave(kind, err error, lines ...string) error {
	if len(lines) > 0 && f.Idle(err) {
		f.raw.SetWriteDeadline(time.Now().Add(time.Second))
	}
	for _, l := range lines {
		f.c.WriteLine(l)
	}
	return f.Fail(kind, err)
}

// Refused counts one refused command and reports whether the client has now
// sent more than MaxErrors of them; the protocol then ends the front with
// [Front.TooManyErrors].
func (f *Front) Refused() bool {
	f.refused++
	return f.refused > f.opts.MaxErrorsOrDefault()
}

// TooManyErrors writes the last lines, best effort, and returns the
// ErrProtocol error for a client over MaxErrors refused commands.
func (f *Front) TooManyErrors(lines ...string) error {
	return f.Leave(ErrProtocol, fmt.Errorf("more than %d refused commands before tls", f.opts.MaxErrorsOrDefault()), lines...)
}

// Upgrade hands over to [ServerUpgrade] once the STARTTLS (STLS) command
// line has been read: goAhead is the reply that starts TLS, refusal the one
// sent instead when bytes are pipelined behind the command (empty: close
// without a reply). The transition runs under ctx bounded further by
// HandshakeTimeout: the command deadline is replaced by the sooner of the
// two, and the front's context watch, still running, aborts the transition
// at once if ctx is cancelled. Before it returns the watch is released and
// the conn's deadlines are cleared; on error the conn is closed. Errors are
// ServerUpgrade's, as if it had been called with
// context.WithTimeout(ctx, HandshakeTimeout).
func (f *Front) Upgrade(goAhead, refusal string) (tc *Conn, err error) {
	// One watch for the whole front, rather than a derived context and a
	// second watch for the transition: same bounds, a dozen allocations
	// less.
	limit := time.Now().Add(f.opts.HandshakeTimeoutOrDefault())
	if cd, ok := f.ctx.Deadline(); ok && cd.Before(limit) {
		limit = cd
	}
	f.w.setDeadline(limit)
	defer func() {
		f.w.release()
		if err != nil {
			f.raw.Close()
		}
	}()
	return serverSwitch(f.ctx, limit, f.c, &ServerSwitch{
		Protocol:  f.protocol,
		GoAhead:   goAhead,
		Refusal:   refusal,
		TLSConfig: f.opts.TLSConfig,
	})
}

// Finish ends the front: it stops the context watch, waits until the watch
// can no longer touch the conn, and clears the conn's deadlines; when err
// is not nil it also closes the conn (fail closed). It is meant to be
// deferred with the front's result. After a successful [Front.Upgrade] the
// caller owns the returned Conn.
func (f *Front) Finish(err error) {
	f.w.release()
	if err != nil {
		f.raw.Close()
	}
}
