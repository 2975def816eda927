// Package ldap upgrades an LDAP connection to TLS with the StartTLS extended
// operation (RFC 4511, Section 4.14; RFC 4513, Section 3), on top of
// github.com/tlsup/tlsup/starttls, as a third party would write it: nothing
// in the core knows LDAP. Port 389 upgrades with StartTLS; port 636 (LDAPS)
// starts TLS with the first byte, and the core's Auto mode picks it through
// [Upgrader.ImplicitPort].
//
// The client sends an ExtendedRequest (RFC 4511, Section 4.12) with the
// StartTLS OID 1.3.6.1.4.1.1466.20037 as message 1 and reads one
// ExtendedResponse: resultCode success is the go-ahead; protocolError, which
// a server that does not support TLS must answer (slapd without TLS
// configured does), is starttls.ErrNotOffered (so the Required policy fails
// and Opportunistic continues in plaintext); unavailable and every other
// code are refusals (starttls.ErrRefused); a Notice of Disconnection
// (Section 4.4.1) is a refusal too, the server closing; anything else,
// another message ID or another operation, is starttls.ErrProtocol. The
// diagnostic message is bounded and escaped in every error.
//
// The BER elements needed (RFC 4511, Section 5.1) are read by hand:
// definite lengths only, every length bounded before anything is allocated
// (a 4 GiB length is starttls.ErrTooLarge, and nothing of that size is
// read or allocated), and exactly one message read, nothing behind it.
//
// # Security
//
// The core refuses the switch when a byte is buffered behind the
// ExtendedResponse (starttls.ErrInjectedData): an attacker's forged
// BindResponse or SearchResultEntry appended to it would otherwise be read
// as if it had come over TLS. Bytes that arrive a moment later fail the
// handshake (starttls.ErrHandshake). No bind is ever sent before TLS:
// authenticate on the connection the upgrade returns. The name verified is
// the configured one (RFC 4513, Section 3.1.3), never one the server sends.
package ldap

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"github.com/tlsup/tlsup/starttls"
)

// Ports of LDAP.
const (
	// Port is LDAP's port, where TLS starts with the StartTLS operation.
	Port = 389
	// PortLDAPS is the port where TLS starts with the first byte.
	PortLDAPS = 636
)

// OIDs of the extended operations involved.
const (
	// OIDStartTLS names the StartTLS request and response (RFC 4511,
	// Section 4.14.1).
	OIDStartTLS = "1.3.6.1.4.1.1466.20037"
	// OIDNoticeOfDisconnection names the unsolicited notification of a
	// server that is closing the connection (RFC 4511, Section 4.4.1).
	OIDNoticeOfDisconnection = "1.3.6.1.4.1.1466.20036"
)

// DefaultMaxMessageLength bounds the StartTLS response when
// Upgrader.MaxMessageLength is zero. A StartTLS response is some 40 bytes
// plus the diagnostic message and any referral.
const DefaultMaxMessageLength = 16 << 10

// maxDiagnostic bounds the diagnostic message carried into an error,
// before escaping.
const maxDiagnostic = 512

// Result codes of RFC 4511, Appendix A, that the upgrade tells apart.
const (
	resultSuccess       = 0
	resultProtocolError = 2
)

// messageID is the StartTLS request's message ID: the first operation on
// the connection.
const messageID = 1

// StartTLSRequest returns the BER encoding of the StartTLS ExtendedRequest
// the upgrade sends: LDAPMessage { messageID 1, extendedReq { requestName
// 1.3.6.1.4.1.1466.20037 } }, 31 bytes. For tests and fake servers.
func StartTLSRequest() []byte {
	op := appendElement(nil, tagExtendedRequest, appendElement(nil, tagRequestName, []byte(OIDStartTLS)))
	return appendElement(nil, tagSequence, appendInt(nil, tagInteger, messageID), op)
}

// Upgrader speaks the client side of LDAP's StartTLS for starttls.Upgrade.
// The zero value is ready to use.
type Upgrader struct {
	// MaxMessageLength bounds the StartTLS response, its tag and length
	// octets excluded. Zero means DefaultMaxMessageLength.
	MaxMessageLength int
}

var _ starttls.Upgrader = (*Upgrader)(nil)

// Protocol returns "ldap".
func (u *Upgrader) Protocol() string { return "ldap" }

// Keyword returns "": LDAP advertises nothing before the request (reading
// the root DSE's supportedExtension would be a plaintext answer an attacker
// can edit), so the core always sends the StartTLS request and the
// server's answer decides.
func (u *Upgrader) Keyword() string { return "" }

// ImplicitPort returns 636, LDAPS.
func (u *Upgrader) ImplicitPort() int { return PortLDAPS }

// Greet reads nothing: an LDAP server speaks only when asked.
func (u *Upgrader) Greet(ctx context.Context, c *starttls.Conn) (starttls.Greeting, error) {
	return starttls.Greeting{}, nil
}

// Discover returns an empty capability set, before TLS and inside it.
func (u *Upgrader) Discover(ctx context.Context, c *starttls.Conn) (*starttls.Capabilities, error) {
	return &starttls.Capabilities{}, nil
}

// StartTLS writes the StartTLS request and reads exactly one LDAP message:
// the ExtendedResponse. It returns nil for resultCode success; a
// *starttls.ReplyError matching starttls.ErrNotOffered for protocolError
// (TLS not supported) and starttls.ErrRefused for any other code or a
// Notice of Disconnection, with the code and the escaped diagnostic
// message; starttls.ErrTooLarge for a message over MaxMessageLength;
// starttls.ErrProtocol for malformed BER, another message ID, another
// operation, or a success naming another OID.
func (u *Upgrader) StartTLS(ctx context.Context, c *starttls.Conn) error {
	if _, err := c.Write(StartTLSRequest()); err != nil {
		return err
	}
	c.Mark("C: ExtendedRequest " + OIDStartTLS) // binary: a note per message
	max := u.MaxMessageLength
	if max <= 0 {
		max = DefaultMaxMessageLength
	}
	msg, err := readElement(c, max)
	if err != nil {
		return err
	}
	resp, err := parseResponse(msg)
	if err != nil {
		return err
	}
	note := fmt.Sprintf("S: ExtendedResponse resultCode %d", resp.resultCode)
	if len(resp.diagnostic) > 0 {
		note += " " + clipped(resp.diagnostic)
	}
	c.Mark(note)
	return resp.verdict()
}

// extendedResponse is what the upgrade reads of an ExtendedResponse.
type extendedResponse struct {
	messageID    int
	resultCode   int
	diagnostic   []byte
	responseName []byte // nil when absent
}

// parseResponse parses an LDAPMessage that must carry an ExtendedResponse
// (RFC 4511, Sections 4.2 and 4.12).
func parseResponse(msg element) (*extendedResponse, error) {
	if msg.tag != tagSequence {
		return nil, starttls.NewProtocolError("ldap: message has tag %#02x, want a SEQUENCE", msg.tag)
	}
	s := &sliceReader{b: msg.contents}
	idBytes, err := s.expect(tagInteger, "messageID")
	if err != nil {
		return nil, err
	}
	id, err := parseInt(idBytes, "messageID")
	if err != nil {
		return nil, err
	}
	op, err := s.next()
	if err != nil {
		return nil, starttls.NewProtocolError("ldap: message %d without an operation", id)
	}
	if op.tag != tagExtendedResponse {
		return nil, starttls.NewProtocolError("ldap: answered with operation tag %#02x, want an ExtendedResponse", op.tag)
	}
	// After the operation: the optional controls, then nothing.
	if len(s.b) > 0 {
		controls, err := s.next()
		if err != nil {
			return nil, err
		}
		if controls.tag != tagControls {
			return nil, starttls.NewProtocolError("ldap: element %#02x after the operation", controls.tag)
		}
		if len(s.b) > 0 {
			return nil, starttls.NewProtocolError("ldap: %d bytes after the controls", len(s.b))
		}
	}
	resp := &extendedResponse{messageID: id}
	r := &sliceReader{b: op.contents}
	code, err := r.expect(tagEnumerated, "resultCode")
	if err != nil {
		return nil, err
	}
	if resp.resultCode, err = parseInt(code, "resultCode"); err != nil {
		return nil, err
	}
	if _, err := r.expect(tagOctetString, "matchedDN"); err != nil {
		return nil, err
	}
	if resp.diagnostic, err = r.expect(tagOctetString, "diagnosticMessage"); err != nil {
		return nil, err
	}
	// The optional fields, in their order: referral [3], responseName
	// [10], responseValue [11].
	order := 0
	for len(r.b) > 0 {
		e, err := r.next()
		if err != nil {
			return nil, err
		}
		rank := optionalRank(e.tag)
		if rank <= order {
			return nil, starttls.NewProtocolError("ldap: ExtendedResponse element %#02x unexpected here", e.tag)
		}
		order = rank
		if e.tag == tagResponseName {
			resp.responseName = e.contents
		}
	}
	return resp, nil
}

// optionalRank is the position of an optional ExtendedResponse field, 0
// for a tag that is none of them.
func optionalRank(tag byte) int {
	switch tag {
	case tagReferral:
		return 1
	case tagResponseName:
		return 2
	case tagResponseValue:
		return 3
	}
	return 0
}

// verdict turns a parsed response into the StartTLS outcome.
func (r *extendedResponse) verdict() error {
	if r.messageID == 0 {
		// RFC 4511, Section 4.4: an unsolicited notification. The only
		// one defined says the server is closing the connection.
		if string(r.responseName) == OIDNoticeOfDisconnection {
			return r.reply("notice of disconnection", starttls.ErrRefused)
		}
		return starttls.NewProtocolError("ldap: unsolicited notification %q", clipped(r.responseName))
	}
	if r.messageID != messageID {
		return starttls.NewProtocolError("ldap: response to message %d, want %d", r.messageID, messageID)
	}
	switch r.resultCode {
	case resultSuccess:
		if r.responseName != nil && string(r.responseName) != OIDStartTLS {
			return starttls.NewProtocolError("ldap: success for extended operation %q, want %s", clipped(r.responseName), OIDStartTLS)
		}
		return nil
	case resultProtocolError:
		// RFC 4511, Section 4.14.2 (RFC 2830, Section 2.3): a server
		// that does not support TLS answers protocolError.
		return r.reply("", starttls.ErrNotOffered)
	}
	return r.reply("", starttls.ErrRefused)
}

// resultName names the result codes (RFC 4511, Appendix A) a StartTLS
// request can meet, for errors; "" for the others.
func resultName(code int) string {
	switch code {
	case 1:
		return "operationsError"
	case 2:
		return "protocolError"
	case 10:
		return "referral"
	case 13:
		return "confidentialityRequired"
	case 51:
		return "busy"
	case 52:
		return "unavailable"
	case 53:
		return "unwillingToPerform"
	case 80:
		return "other"
	}
	return ""
}

func (r *extendedResponse) reply(status string, kind error) error {
	if status == "" {
		status = resultName(r.resultCode)
	}
	return &starttls.ReplyError{
		Protocol: "ldap",
		Command:  "StartTLS",
		Code:     r.resultCode,
		Status:   status,
		Text:     clipped(r.diagnostic),
		Kind:     kind,
	}
}

// clipped escapes peer text, bounded to maxDiagnostic bytes.
func clipped(b []byte) string {
	if len(b) > maxDiagnostic {
		return starttls.Escape(string(b[:maxDiagnostic])) + "..."
	}
	return starttls.Escape(string(b))
}

// Options configures [Upgrade] and [Dial]. A nil *Options means the
// defaults: Required policy, Auto mode, and for Dial a verifying TLS config
// for the dialled host.
type Options struct {
	// TLSConfig is cloned for the handshake. Zero: for Dial, a verifying
	// config for the host part of the address; for Upgrade, an error, since
	// a bare conn carries no name to verify.
	TLSConfig *tls.Config
	// Policy is the downgrade policy; zero is starttls.Required, under
	// which a protocolError answer fails with starttls.ErrNotOffered.
	Policy starttls.Policy
	// Mode is StartTLS or Implicit; zero (Auto) means implicit TLS on port
	// 636 and StartTLS elsewhere.
	Mode starttls.Mode
	// MaxMessageLength bounds the StartTLS response; zero means
	// DefaultMaxMessageLength.
	MaxMessageLength int
	// Conn sets the transcript; nil means the defaults.
	Conn *starttls.Options
}

func (o *Options) split() (*Upgrader, *starttls.Config) {
	if o == nil {
		o = &Options{}
	}
	return &Upgrader{MaxMessageLength: o.MaxMessageLength},
		&starttls.Config{TLSConfig: o.TLSConfig, Policy: o.Policy, Mode: o.Mode, Conn: o.Conn}
}

// Upgrade runs StartTLS on conn, a fresh LDAP connection (nothing sent on
// it yet), and the handshake. See starttls.Upgrade for the context
// contract, the errors, and who owns conn: on error it is closed. Bind on
// Result.Conn (or the returned *tls.Conn) afterwards, inside TLS; under
// the Opportunistic policy Result.Plaintext says the server does not
// support TLS, and a bind would then send its password in the clear.
func Upgrade(ctx context.Context, conn net.Conn, opts *Options) (*tls.Conn, *starttls.Result, error) {
	u, cfg := opts.split()
	return starttls.Upgrade(ctx, conn, u, cfg)
}

// Dial connects to addr ("host:port") and upgrades the connection as
// [Upgrade] does; with Mode Auto, port 636 gets implicit TLS. A failed
// connect is a *starttls.Error at step starttls.StepConnect.
func Dial(ctx context.Context, network, addr string, opts *Options) (*tls.Conn, *starttls.Result, error) {
	u, cfg := opts.split()
	return starttls.Dial(ctx, network, addr, u, cfg)
}
