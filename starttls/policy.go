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
	// Auto: implicit TLS on the protocol's implicit-TLS port (see
	// [ImplicitPorter]), STARTTLS on every other port.
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

// ImplicitPorter is implemented by an [Upgrader] whose protocol has a port
// on which TLS starts with the first byte (RFC 8314 for mail). Mode [Auto]
// picks [Implicit] when the remote port is that port, and [StartTLS]
// otherwise; an Upgrader without it always gets StartTLS under Auto.
type ImplicitPorter interface {
	// ImplicitPort returns the implicit-TLS port, 0 for none.
	ImplicitPort() int
}

// resolveMode turns Auto into StartTLS or Implicit for the remote port of
// addr ("host:port", the port a number or a service name such as
// "submissions") under u; other modes are returned unchanged.
func resolveMode(m Mode, u Upgrader, addr string) Mode {
	if m != Auto {
		return m
	}
	_, service, err := net.SplitHostPort(addr)
	if err != nil {
		return StartTLS
	}
	port, err := strconv.Atoi(service)
	if err != nil {
		// A service name, resolved as the dial will resolve it: the
		// services database, then Go's own table.
		if port, err = net.LookupPort("tcp", service); err != nil {
			return StartTLS
		}
	}
	return modeForPort(u, port)
}

// modeForPort is Auto's choice for a remote port.
func modeForPort(u Upgrader, port int) Mode {
	if p, ok := u.(ImplicitPorter); ok && port != 0 && p.ImplicitPort() == port {
		return Implicit
	}
	return StartTLS
}

// resolveConnMode is resolveMode for a conn's remote address.
func resolveConnMode(m Mode, u Upgrader, addr net.Addr) Mode {
	if m != Auto {
		return m
	}
	switch a := addr.(type) {
	case nil:
		return StartTLS
	case *net.TCPAddr:
		return modeForPort(u, a.Port)
	}
	return resolveMode(m, u, addr.String())
}
