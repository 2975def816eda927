package starttls

import (
	"fmt"
	"net"
	"strconv"
)

// Policy says what a client does when STARTTLS is missing or fails. The zero
// value, Required, never continues without TLS.
type Policy int

const (
	// Required: STARTTLS must be advertised and must succeed. A server that
	// does not advertise it gets ErrNotOffered and STARTTLS is not sent.
	Required Policy = iota
	// Always: STARTTLS is sent even when it is not advertised, which defeats
	// a man in the middle who strips it from the capability list. Any
	// failure is an error.
	Always
	// Opportunistic: when STARTTLS is not advertised the session continues
	// in plaintext and the result says so (Result.TLS is false). Once
	// advertised, any failure is an error: a refusal or a failed handshake
	// never falls back to plaintext. This is an explicit opt-in.
	Opportunistic
)

// String returns "required", "always" or "opportunistic".
func (p Policy) String() string {
	switch p {
	case Required:
		return "required"
	case Always:
		return "always"
	case Opportunistic:
		return "opportunistic"
	}
	return "policy(" + strconv.Itoa(int(p)) + ")"
}

// ParsePolicy parses the names String returns.
func ParsePolicy(s string) (Policy, error) {
	for _, p := range []Policy{Required, Always, Opportunistic} {
		if s == p.String() {
			return p, nil
		}
	}
	return 0, fmt.Errorf("starttls: unknown policy %q (want required, always or opportunistic)", s)
}

// Mode says how TLS starts. The zero value, Auto, picks by port.
type Mode int

const (
	// Auto: implicit TLS on the protocol's implicit-TLS ports (465, 993,
	// 995), STARTTLS on every other port.
	Auto Mode = iota
	// StartTLS: plaintext greeting, then the STARTTLS (STLS) command.
	StartTLS
	// Implicit: TLS from the first byte (RFC 8314), with the same
	// verification and capability discovery.
	Implicit
)

// String returns "auto", "starttls" or "implicit".
func (m Mode) String() string {
	switch m {
	case Auto:
		return "auto"
	case StartTLS:
		return "starttls"
	case Implicit:
		return "implicit"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// ParseMode parses the names String returns.
func ParseMode(s string) (Mode, error) {
	for _, m := range []Mode{Auto, StartTLS, Implicit} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("starttls: unknown mode %q (want auto, starttls or implicit)", s)
}

// Ports lists a protocol's well-known ports.
type Ports struct {
	// StartTLS is the port where the session starts in plaintext (25, 24,
	// 143, 110).
	StartTLS int
	// Implicit is the implicit-TLS port (465, 993, 995); 0 for none.
	Implicit int
	// Other are further plaintext ports of the protocol (587 for SMTP
	// submission).
	Other []int
}

// WellKnownPorts returns the port table of a protocol: "smtp", "lmtp",
// "imap" or "pop3"; ok is false for any other name.
func WellKnownPorts(protocol string) (p Ports, ok bool) {
	switch protocol {
	case "smtp":
		return Ports{StartTLS: 25, Implicit: 465, Other: []int{587}}, true
	case "lmtp":
		return Ports{StartTLS: 24}, true
	case "imap":
		return Ports{StartTLS: 143, Implicit: 993}, true
	case "pop3":
		return Ports{StartTLS: 110, Implicit: 995}, true
	}
	return Ports{}, false
}

// ProtocolForPort returns the protocol conventionally served on port, or ""
// when the port is not a well-known mail port.
func ProtocolForPort(port int) string {
	for _, name := range []string{"smtp", "lmtp", "imap", "pop3"} {
		p, _ := WellKnownPorts(name)
		if port == p.StartTLS || (p.Implicit != 0 && port == p.Implicit) {
			return name
		}
		for _, o := range p.Other {
			if port == o {
				return name
			}
		}
	}
	return ""
}

// Resolve turns Auto into StartTLS or Implicit for the port of addr
// ("host:port") under protocol; other modes are returned unchanged.
func (m Mode) Resolve(protocol, addr string) Mode {
	if m != Auto {
		return m
	}
	_, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return StartTLS
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return StartTLS
	}
	if p, ok := WellKnownPorts(protocol); ok && p.Implicit != 0 && port == p.Implicit {
		return Implicit
	}
	return StartTLS
}
