package starttls

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"
)

// Kind sentinels. Every error returned by this module's upgrade functions
// is an [*Error] whose Kind is the sentinel it matches with [errors.Is]:
// one of these, or, for failures that are not the peer's fault, the
// standard library's context.DeadlineExceeded, context.Canceled (the
// context ended: a timeout) or io.ErrUnexpectedEOF (the peer hung up), as
// documented on [Upgrade] and [Error.Kind].
var (
	// ErrNotOffered: the peer did not advertise the upgrade and the policy
	// requires it, or answered the upgrade request with "no TLS here" (an
	// [Upgrader] whose protocol advertises nothing says so from StartTLS).
	ErrNotOffered = errors.New("starttls: not offered")
	// ErrRefused: the peer answered a command with an error reply. The
	// [*ReplyError] in the chain carries the code and text.
	ErrRefused = errors.New("starttls: refused")
	// ErrInjectedData: bytes were buffered behind the STARTTLS go-ahead (on a
	// client) or behind the STARTTLS command (on a server). They cannot have
	// come over TLS, so the upgrade is abandoned.
	ErrInjectedData = errors.New("starttls: data injected before tls")
	// ErrPreauth: an IMAP server greeted with PREAUTH on a plaintext
	// connection, so STARTTLS is no longer allowed (RFC 9051, Section 7.1.4).
	ErrPreauth = errors.New("starttls: preauthenticated plaintext session")
	// ErrGreetingRejected: the server refused the session in its greeting
	// (SMTP 421 or 554, IMAP BYE, POP3 -ERR).
	ErrGreetingRejected = errors.New("starttls: greeting rejected")
	// ErrProtocol: the peer sent something the protocol does not allow.
	ErrProtocol = errors.New("starttls: protocol violation")
	// ErrTooLarge: a line, a response or a literal exceeded its bound.
	ErrTooLarge = errors.New("starttls: too large")
	// ErrHandshake: the TLS handshake failed. The crypto/tls or crypto/x509
	// error is in the chain; use [errors.As] with
	// *tls.CertificateVerificationError to tell a certificate fault apart.
	ErrHandshake = errors.New("starttls: tls handshake failed")
	// ErrUnsafeArgument: text given by the caller to send (a command
	// argument, a reply text, a whole line) contains CR, LF or NUL, which
	// would end the line early and smuggle another one in; nothing was
	// sent.
	ErrUnsafeArgument = errors.New("starttls: CR, LF or NUL in text to send")
	// ErrConfig: the caller's configuration cannot work (no TLS config, or
	// one that names no server to verify). It is reported before any byte
	// is read or written.
	ErrConfig = errors.New("starttls: invalid configuration")
	// ErrConnect: the connection could not be made (refused, unreachable,
	// name not found). The net error is in the chain.
	ErrConnect = errors.New("starttls: connect failed")
)

// kinds are the sentinels an [Error.Kind] can be, in the order in which
// they are looked for in a cause: the most specific first, the context's
// end before a hang-up it may have caused.
var kinds = []error{
	ErrConfig, ErrConnect, ErrInjectedData, ErrHandshake, ErrNotOffered,
	ErrPreauth, ErrGreetingRejected, ErrTooLarge, ErrRefused, ErrProtocol,
	ErrUnsafeArgument, ErrQuit,
	context.DeadlineExceeded, context.Canceled, os.ErrDeadlineExceeded, io.ErrUnexpectedEOF,
}

// kindOf returns kind when it is not nil, and otherwise the first of kinds
// that err matches, or nil: so that Error.Kind agrees with errors.Is.
func kindOf(kind, err error) error {
	if kind != nil || err == nil {
		return kind
	}
	if peerAlert(err) {
		return ErrHandshake
	}
	for _, k := range kinds {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}

// Step names the stage of an upgrade at which an [Error] happened.
type Step string

// The steps of a client or server upgrade, in order.
const (
	// StepConfig is the check of the caller's configuration, before any
	// I/O.
	StepConfig Step = "config"
	// StepConnect is Dial's connect.
	StepConnect Step = "connect"
	// StepGreeting is the wait for the greeting and its reading.
	StepGreeting Step = "greeting"
	// StepDiscover is the capability discovery before TLS.
	StepDiscover Step = "discover"
	// StepStartTLS is the upgrade request and its go-ahead; on a server,
	// the check for bytes pipelined behind the command and the go-ahead.
	StepStartTLS Step = "starttls"
	// StepHandshake is the TLS handshake.
	StepHandshake Step = "handshake"
	// StepRediscover is the capability discovery inside TLS.
	StepRediscover Step = "rediscover"
	// StepCommand is a pre-TLS command loop on a server.
	StepCommand Step = "command"
)

// Error is the error returned by an upgrade. It names the protocol and the
// step, and wraps both a kind sentinel (when one applies) and the cause, so
// that [errors.Is] matches ErrRefused as well as context.DeadlineExceeded and
// [errors.As] finds a *ReplyError or a *tls.CertificateVerificationError.
type Error struct {
	// Protocol is the protocol's name (the Upgrader's Protocol), "" when
	// unknown.
	Protocol string
	// Step is where the upgrade failed.
	Step Step
	// Kind is the sentinel the error matches with errors.Is, for a switch:
	// one of the package's (ErrConfig, ErrConnect, ErrNotOffered,
	// ErrRefused, ErrInjectedData, ErrPreauth, ErrGreetingRejected,
	// ErrProtocol, ErrTooLarge, ErrHandshake, ErrUnsafeArgument, ErrQuit),
	// context.DeadlineExceeded or context.Canceled (the context ended),
	// os.ErrDeadlineExceeded (a conn deadline passed while the context
	// lives: a server's idle timeout), or io.ErrUnexpectedEOF (the peer
	// hung up). It is nil only for a local I/O failure none of these
	// describes. A handshake that timed out is
	// ErrHandshake and matches context.DeadlineExceeded too.
	Kind error
	// Err is the cause; it may be nil when Kind says it all.
	Err error
}

// Error returns "<protocol>: <step>: " ("starttls: <step>: " when Protocol
// is empty) followed by the kind and the cause, with control characters
// escaped: "smtp: starttls: refused: 454 4.7.0 TLS not available".
func (e *Error) Error() string {
	return scrub(e.text())
}

func (e *Error) text() string {
	var b strings.Builder
	writePrefix(&b, e.Protocol)
	b.WriteString(string(e.Step))
	if e.Kind != nil && !(e.Err != nil && errors.Is(e.Err, e.Kind)) {
		// The kind, unless the cause says it already (a reply, a deadline,
		// a protocol error).
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.Kind.Error(), "starttls: "))
	}
	if reply, ok := e.Err.(*ReplyError); ok {
		// The reply already names the protocol; say its kind (unless Kind
		// did), then the command when the step does not name it, then
		// what the peer said.
		if e.Kind == nil || errors.Is(reply, e.Kind) {
			b.WriteString(": ")
			b.WriteString(strings.TrimPrefix(reply.Unwrap().Error(), "starttls: "))
		}
		b.WriteString(": ")
		if reply.Command != "" && !EqualFold(reply.Command, string(e.Step)) {
			b.WriteString(reply.Command)
			b.WriteString(": ")
		}
		reply.body(&b)
		return strings.TrimRight(b.String(), " ")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.Err.Error(), "starttls: "))
	}
	return b.String()
}

// Unwrap returns the kind and the cause.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// ReplyError is a well-formed reply in which the peer said no. It unwraps to
// its Kind (usually [ErrRefused]).
type ReplyError struct {
	// Protocol is the protocol's name, "" when unknown.
	Protocol string
	// Command is the command that was answered, "" for a greeting.
	Command string
	// Code is the reply's numeric code (454), for protocols whose replies
	// carry one; 0 otherwise.
	Code int
	// Status is the reply's status word or indicator (NO, BAD, BYE, -ERR),
	// for protocols whose replies carry one; "" otherwise. A reply may
	// carry both a Code and a Status.
	Status string
	// Text is the reply text with control characters escaped (see [Escape]).
	Text string
	// Kind is the sentinel the error unwraps to; nil means ErrRefused.
	Kind error
}

// Error returns "<protocol>: <command>: " ("starttls: <command>: " when
// Protocol is empty) followed by the reply as the peer sent it (code or
// status, then the escaped text).
func (e *ReplyError) Error() string {
	return scrub(e.text())
}

func (e *ReplyError) text() string {
	var b strings.Builder
	writePrefix(&b, e.Protocol)
	if e.Command != "" {
		b.WriteString(e.Command)
	} else {
		b.WriteString("greeting")
	}
	b.WriteString(": ")
	e.body(&b)
	return strings.TrimRight(b.String(), " ")
}

// writePrefix starts an error message with the protocol's name, or with
// the package's when there is none.
func writePrefix(b *strings.Builder, protocol string) {
	if protocol == "" {
		protocol = "starttls"
	}
	b.WriteString(protocol)
	b.WriteString(": ")
}

// body writes the reply as the peer sent it: code or status, then text.
func (e *ReplyError) body(b *strings.Builder) {
	if e.Code != 0 {
		b.WriteString(strconv.Itoa(e.Code))
		b.WriteByte(' ')
	}
	if e.Status != "" {
		b.WriteString(e.Status)
		b.WriteByte(' ')
	}
	b.WriteString(e.Text)
}

// Unwrap returns the kind, [ErrRefused] unless set otherwise.
func (e *ReplyError) Unwrap() error {
	if e.Kind == nil {
		return ErrRefused
	}
	return e.Kind
}

// ProtocolError describes a peer that broke the protocol. It unwraps to
// [ErrProtocol]. Its text is escaped.
type ProtocolError string

// NewProtocolError returns a ProtocolError whose message is format applied to
// args. Peer text passed in args must be escaped by the caller with [Escape].
func NewProtocolError(format string, args ...any) error {
	return ProtocolError(fmt.Sprintf(format, args...))
}

// Error returns "starttls: protocol violation: " and the description.
func (e ProtocolError) Error() string { return scrub("starttls: protocol violation: " + string(e)) }

// Unwrap returns [ErrProtocol].
func (e ProtocolError) Unwrap() error { return ErrProtocol }

// maxEscaped bounds the length of peer text kept in an error, so a peer
// cannot make a log line arbitrarily long.
const maxEscaped = 512

// Escape returns s safe to print: control characters, invalid UTF-8 and
// Unicode format characters (bidirectional overrides among them) are written
// as Go escapes, and the result is cut at 512 bytes with "..." appended.
// Use it on every piece of peer text that reaches an error, a log or a
// terminal.
func Escape(s string) string {
	return escape(s, true, maxEscaped)
}

// scrub is the last line of defence of this package's Error methods: it
// escapes what Escape would, control characters above all, but leaves
// backslashes and length alone, so that text escaped already (as peer text
// in an error should be) comes through unchanged, not escaped twice, while
// raw peer text that a caller forgot to escape still cannot reach a
// terminal.
func scrub(s string) string {
	return escape(s, false, -1)
}

// escape is Escape, with the escaping of backslashes and the length bound
// (max < 0: none) as parameters.
func escape(s string, backslash bool, max int) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || (backslash && c == '\\') {
			clean = false
			break
		}
	}
	if clean && (max < 0 || len(s) <= max) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if max >= 0 && b.Len() >= max {
			b.WriteString("...")
			break
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\' && backslash:
			b.WriteString(`\\`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\n':
			b.WriteString(`\n`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && (!unicode.IsGraphic(r) || unicode.Is(unicode.Cf, r)):
			if r > 0xffff {
				fmt.Fprintf(&b, `\U%08x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// stepError builds the *Error for a failed step: it adds the context's error
// when the context ended (so that errors.Is finds context.DeadlineExceeded)
// and turns a hang-up (a bare io.EOF, a reset, a broken pipe) into
// io.ErrUnexpectedEOF.
func stepError(ctx context.Context, protocol string, step Step, kind, err error) error {
	return stepErrorLimit(ctx, time.Time{}, protocol, step, kind, err)
}

// stepErrorLimit is stepError for a step that ran under ctx bounded further
// by limit (when not zero), a deadline the caller set on the conn in place
// of deriving a context with it: once limit has passed the error carries
// context.DeadlineExceeded, exactly as if ctx had been derived with
// context.WithDeadline(ctx, limit).
func stepErrorLimit(ctx context.Context, limit time.Time, protocol string, step Step, kind, err error) error {
	if err != nil {
		err = hangUp(err)
		if ctxErr := contextErr(ctx, limit, err); ctxErr != nil && !errors.Is(err, ctxErr) && !isReply(err) {
			err = fmt.Errorf("%w: %w", ctxErr, err)
		}
	}
	if kind == nil && err != nil {
		var e *Error
		if errors.As(err, &e) {
			return err
		}
	}
	return &Error{Protocol: protocol, Step: step, Kind: kindOf(kind, err), Err: err}
}

// contextErr returns ctx's error, or context.DeadlineExceeded once ctx's
// deadline or limit (when not zero) has passed even if no timer has fired
// yet: the conn's deadline, set from them, may fire first.
func contextErr(ctx context.Context, limit time.Time, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if !limit.IsZero() && !time.Now().Before(limit) {
		return context.DeadlineExceeded
	}
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
			return context.DeadlineExceeded
		}
	}
	return nil
}

// hangUp returns err wrapped so that it matches io.ErrUnexpectedEOF when
// it says the peer went away: end of stream, a reset or a broken pipe. A
// hang-up is a hang-up however the peer's kernel reported it.
func hangUp(err error) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return err
	case errors.Is(err, io.EOF):
		return io.ErrUnexpectedEOF
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return fmt.Errorf("%w: %w", io.ErrUnexpectedEOF, err)
	}
	return err
}

func isReply(err error) bool {
	var r *ReplyError
	var p ProtocolError
	return errors.As(err, &r) || errors.As(err, &p) || errors.Is(err, ErrTooLarge)
}

// peerAlert reports whether err is a TLS alert sent by the peer. Under TLS
// 1.3 a client's handshake is done before the server has checked the
// client's flight, so the server's rejection (a client certificate it
// wanted, a resumption it refused) arrives as an alert on the client's
// first read inside TLS: a failed handshake, whatever step read it.
func peerAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}
