// Package postgres upgrades a PostgreSQL connection to TLS with the
// SSLRequest of the frontend/backend protocol version 3 (PostgreSQL 15
// documentation, chapter 55 "Frontend/Backend Protocol": "SSL Session
// Encryption" in section 55.2, SSLRequest and ErrorResponse in section
// 55.7 "Message Formats"), on top of
// github.com/tlsup/tlsup/starttls. It is written as a third party would
// write it: nothing in the core knows PostgreSQL.
//
// The client sends the 8-byte SSLRequest; the server answers one byte. 'S'
// is the go-ahead, 'N' means the server will not do TLS (reported as
// starttls.ErrNotOffered: the Required policy fails, as libpq's
// sslmode=require, and Opportunistic continues in plaintext, as
// sslmode=prefer), an ErrorResponse ('E', from a server too old to know the
// request) is a refusal whose text is bounded and escaped, and anything
// else is a protocol error.
//
// # Security
//
// The answer is a single byte, so a man in the middle can append bytes
// behind the 'S' and have them read as if they had come over TLS. Both
// libpq and the server did exactly that (CVE-2021-23222 for the client,
// CVE-2021-23214 for the server), and the same class of bug was found
// since in other proxies and drivers. Here the core refuses the switch when
// a single byte is buffered behind the 'S' (starttls.ErrInjectedData), and
// bytes that arrive a moment later, where the server's first TLS record
// belongs, fail the handshake (starttls.ErrHandshake): TLS never starts
// with them. The upgrade sends no startup message: that, and the
// authentication, is the caller's, on the connection the upgrade returns.
package postgres

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"

	"github.com/tlsup/tlsup/starttls"
)

// Port is PostgreSQL's port. TLS starts on it with the SSLRequest; there is
// no separate implicit-TLS port.
const Port = 5432

// MaxErrorLength bounds an ErrorResponse read as the answer to the
// SSLRequest, its length word included. A longer one is
// starttls.ErrTooLarge, and its body is never read.
const MaxErrorLength = 4096

// sslRequest is the SSLRequest message: length 8, then the code 1234 5679
// (section 55.7).
var sslRequest = []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}

// SSLRequest returns a copy of the 8 bytes of the SSLRequest message, for
// tests and fake servers.
func SSLRequest() []byte { return slices.Clone(sslRequest) }

// Upgrader speaks the client side of the SSLRequest for starttls.Upgrade.
// The zero value is ready to use; it holds no state.
type Upgrader struct{}

var _ starttls.Upgrader = Upgrader{}

// Protocol returns "postgres".
func (Upgrader) Protocol() string { return "postgres" }

// Keyword returns "": PostgreSQL advertises nothing, so the core always
// sends the SSLRequest, whatever the policy, and the server's answer decides.
func (Upgrader) Keyword() string { return "" }

// Greet reads nothing: the server speaks only when asked.
func (Upgrader) Greet(ctx context.Context, c *starttls.Conn) (starttls.Greeting, error) {
	return starttls.Greeting{}, nil
}

// Discover returns an empty capability set, before TLS and inside it: the
// server advertises nothing until the startup message, which is the
// caller's to send.
func (Upgrader) Discover(ctx context.Context, c *starttls.Conn) (*starttls.Capabilities, error) {
	return &starttls.Capabilities{}, nil
}

// StartTLS writes the SSLRequest and reads the one-byte answer: 'S' is the
// go-ahead (nil), 'N' an error matching starttls.ErrNotOffered, an 'E'
// ErrorResponse a *starttls.ReplyError matching starttls.ErrRefused (its
// severity, SQLSTATE and message, escaped), an ErrorResponse longer than
// MaxErrorLength starttls.ErrTooLarge, and any other byte
// starttls.ErrProtocol. It reads nothing behind the 'S'.
func (Upgrader) StartTLS(ctx context.Context, c *starttls.Conn) error {
	if _, err := c.Write(sslRequest); err != nil {
		return err
	}
	c.Mark("C: SSLRequest") // binary: the transcript gets a note per message
	var answer [1]byte
	if _, err := io.ReadFull(c, answer[:]); err != nil {
		return err
	}
	c.Mark(fmt.Sprintf("S: %q", answer[0]))
	switch answer[0] {
	case 'S':
		return nil
	case 'N':
		return fmt.Errorf("%w: the server answered N to the SSLRequest", starttls.ErrNotOffered)
	case 'E':
		return readErrorResponse(c)
	}
	return starttls.NewProtocolError("postgres: SSLRequest answered with byte %#02x", answer[0])
}

// readErrorResponse reads the rest of an ErrorResponse (the 'E' is read):
// its length, bounded before anything is allocated, then its fields.
func readErrorResponse(r io.Reader) error {
	var length [4]byte
	if _, err := io.ReadFull(r, length[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(length[:])
	if n < 4 {
		return starttls.NewProtocolError("postgres: ErrorResponse length %d", n)
	}
	if n > MaxErrorLength {
		return fmt.Errorf("%w: postgres: ErrorResponse of %d bytes (limit %d)", starttls.ErrTooLarge, n, MaxErrorLength)
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(r, body); err != nil {
		return err
	}
	fields, err := ParseErrorFields(body)
	if err != nil {
		return err
	}
	return &starttls.ReplyError{
		Protocol: "postgres",
		Command:  "SSLRequest",
		Status:   "E",
		Text:     starttls.Escape(fields.String()),
	}
}

// ErrorFields are the fields of an ErrorResponse that a refusal reports.
type ErrorFields struct {
	// Severity is the S field (ERROR, FATAL, PANIC or a localised name).
	Severity string
	// Code is the C field, the SQLSTATE.
	Code string
	// Message is the M field, the primary message.
	Message string
}

// String joins the non-empty fields with spaces: "FATAL 0A000 message".
func (f ErrorFields) String() string {
	var parts []string
	for _, s := range []string{f.Severity, f.Code, f.Message} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " ")
}

// ParseErrorFields parses the body of an ErrorResponse, after its type byte
// and length word: fields made of a type byte and a NUL-terminated string,
// ended by a NUL (section 55.8, "Error and Notice Message Fields"). Fields other
// than S, C and M are skipped. A body that does not end with the final NUL
// is starttls.ErrProtocol. The strings are returned as sent: escape them
// before showing them.
func ParseErrorFields(body []byte) (ErrorFields, error) {
	var f ErrorFields
	for {
		if len(body) == 0 {
			return f, starttls.NewProtocolError("postgres: ErrorResponse without its final NUL")
		}
		kind := body[0]
		if kind == 0 {
			if len(body) > 1 {
				return f, starttls.NewProtocolError("postgres: %d bytes after the ErrorResponse's final NUL", len(body)-1)
			}
			return f, nil
		}
		value, rest, ok := bytes.Cut(body[1:], []byte{0})
		if !ok {
			return f, starttls.NewProtocolError("postgres: unterminated ErrorResponse field %q", kind)
		}
		switch kind {
		case 'S':
			f.Severity = string(value)
		case 'C':
			f.Code = string(value)
		case 'M':
			f.Message = string(value)
		}
		body = rest
	}
}

// Options configures [Upgrade] and [Dial]. A nil *Options means the
// defaults: Required policy, the SSLRequest, and for Dial a verifying TLS
// config for the dialled host.
type Options struct {
	// TLSConfig is cloned for the handshake. Zero: for Dial, a verifying
	// config for the host part of the address; for Upgrade, an error, since
	// a bare conn carries no name to verify.
	TLSConfig *tls.Config
	// Policy is the downgrade policy; zero is starttls.Required, under
	// which an 'N' answer fails with starttls.ErrNotOffered.
	// starttls.Opportunistic continues in plaintext after an 'N'
	// (Result.Plaintext).
	Policy starttls.Policy
	// Mode: zero (Auto) and starttls.StartTLS send the SSLRequest;
	// starttls.Implicit starts TLS at once, as PostgreSQL 17's direct TLS
	// negotiation does (the "postgresql" ALPN protocol is then offered
	// unless TLSConfig sets NextProtos).
	Mode starttls.Mode
	// Conn sets the reader's bounds and the transcript; nil means the
	// defaults.
	Conn *starttls.Options
}

func (o *Options) config() *starttls.Config {
	if o == nil {
		o = &Options{}
	}
	cfg := &starttls.Config{TLSConfig: o.TLSConfig, Policy: o.Policy, Mode: o.Mode, Conn: o.Conn}
	if o.Mode == starttls.Implicit && o.TLSConfig != nil && len(o.TLSConfig.NextProtos) == 0 {
		// PostgreSQL 17 requires ALPN on a direct TLS connection.
		cfg.TLSConfig = o.TLSConfig.Clone()
		cfg.TLSConfig.NextProtos = []string{"postgresql"}
	}
	return cfg
}

// Upgrade sends the SSLRequest on conn, a fresh PostgreSQL connection, and
// on 'S' runs the handshake. It sends no startup message: the caller sends
// it on Result.Conn (or the returned *tls.Conn), inside TLS.
//
// The result says which answer came: Result.TLS after 'S', Result.Plaintext
// after 'N' under the Opportunistic policy (Result.Conn is then the
// plaintext connection); any other answer is an error. See
// starttls.Upgrade for the context contract, the errors, and who owns conn:
// on error it is closed.
func Upgrade(ctx context.Context, conn net.Conn, opts *Options) (*tls.Conn, *starttls.Result, error) {
	return starttls.Upgrade(ctx, conn, Upgrader{}, opts.config())
}

// Dial connects to addr ("host:port", PostgreSQL's is [Port]) and upgrades
// the connection as [Upgrade] does. A failed connect is a *starttls.Error
// at step starttls.StepConnect.
func Dial(ctx context.Context, network, addr string, opts *Options) (*tls.Conn, *starttls.Result, error) {
	cfg := opts.config()
	if cfg.Mode == starttls.Implicit && cfg.TLSConfig == nil {
		cfg.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"postgresql"}}
	}
	return starttls.Dial(ctx, network, addr, Upgrader{}, cfg)
}
