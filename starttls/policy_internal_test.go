package starttls

import (
	"context"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// portUpgrader is a made-up protocol with an implicit-TLS port; the core
// has never heard of it.
type portUpgrader struct{ port int }

func (portUpgrader) Protocol() string { return "toy" }
func (portUpgrader) Keyword() string  { return "STARTTLS" }
func (portUpgrader) Greet(context.Context, *Conn) (Greeting, error) {
	return Greeting{}, nil
}
func (portUpgrader) Discover(context.Context, *Conn) (*Capabilities, error) {
	return &Capabilities{}, nil
}
func (portUpgrader) StartTLS(context.Context, *Conn) error { return nil }
func (u portUpgrader) ImplicitPort() int                   { return u.port }

type noPortUpgrader struct{ portUpgrader }

func (noPortUpgrader) ImplicitPort() {} // hides the method: no ImplicitPorter

func TestResolveMode(t *testing.T) {
	// "submissions" is 465 in Go's own service table, whatever the
	// machine's /etc/services says.
	sub, err := net.LookupPort("tcp", "submissions")
	require.NoError(t, err)
	tests := []struct {
		mode Mode
		u    Upgrader
		addr string
		want Mode
	}{
		{Auto, portUpgrader{7465}, "mx.example.test:7465", Implicit},
		{Auto, portUpgrader{7465}, "mx.example.test:25", StartTLS},
		{Auto, portUpgrader{7465}, "[::1]:7465", Implicit},
		{Auto, portUpgrader{sub}, "mx.example.test:submissions", Implicit},
		{Auto, portUpgrader{sub}, "mx.example.test:smtp", StartTLS},
		{Auto, portUpgrader{0}, "host:0", StartTLS},
		{Auto, noPortUpgrader{portUpgrader{465}}, "host:465", StartTLS},
		{Auto, portUpgrader{465}, "no-port", StartTLS},
		{Auto, portUpgrader{465}, "host:no-such-service", StartTLS},
		{StartTLS, portUpgrader{465}, "host:465", StartTLS},
		{Implicit, portUpgrader{465}, "host:25", Implicit},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, resolveMode(tt.mode, tt.u, tt.addr), "%v %q port %v", tt.mode, tt.addr, tt.u)
		if host, port, err := net.SplitHostPort(tt.addr); err == nil {
			if n, err := net.LookupPort("tcp", port); err == nil {
				addr := &net.TCPAddr{IP: net.ParseIP(host), Port: n}
				assert.Equal(t, tt.want, resolveConnMode(tt.mode, tt.u, addr), "conn %v %v", tt.mode, addr)
			}
		}
	}
	assert.Equal(t, StartTLS, resolveConnMode(Auto, portUpgrader{465}, nil))
}
