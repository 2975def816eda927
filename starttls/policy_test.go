package starttls_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/starttls"
)

func TestPolicyNames(t *testing.T) {
	var zero starttls.Policy
	assert.Equal(t, starttls.Required, zero, "the zero Policy is Required")
	for _, p := range []starttls.Policy{starttls.Required, starttls.Always, starttls.Opportunistic} {
		got, err := starttls.ParsePolicy(p.String())
		require.NoError(t, err)
		assert.Equal(t, p, got)
	}
	assert.Equal(t, "policy(7)", starttls.Policy(7).String())
	for _, bad := range []string{"", "Required", "may", "policy(7)"} {
		_, err := starttls.ParsePolicy(bad)
		require.Error(t, err, "ParsePolicy(%q)", bad)
		assert.Contains(t, err.Error(), "starttls: unknown policy")
	}
}

func TestModeNames(t *testing.T) {
	var zero starttls.Mode
	assert.Equal(t, starttls.Auto, zero, "the zero Mode is Auto")
	for _, m := range []starttls.Mode{starttls.Auto, starttls.StartTLS, starttls.Implicit} {
		got, err := starttls.ParseMode(m.String())
		require.NoError(t, err)
		assert.Equal(t, m, got)
	}
	assert.Equal(t, "mode(9)", starttls.Mode(9).String())
	_, err := starttls.ParseMode("tls")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "starttls: unknown mode")
}

func TestWellKnownPorts(t *testing.T) {
	tests := []struct {
		protocol string
		want     starttls.Ports
		ok       bool
	}{
		{"smtp", starttls.Ports{StartTLS: 25, Implicit: 465, Other: []int{587}}, true},
		{"lmtp", starttls.Ports{StartTLS: 24}, true},
		{"imap", starttls.Ports{StartTLS: 143, Implicit: 993}, true},
		{"pop3", starttls.Ports{StartTLS: 110, Implicit: 995}, true},
		{"SMTP", starttls.Ports{}, false},
		{"ftp", starttls.Ports{}, false},
	}
	for _, tt := range tests {
		got, ok := starttls.WellKnownPorts(tt.protocol)
		assert.Equal(t, tt.ok, ok, tt.protocol)
		assert.Equal(t, tt.want, got, tt.protocol)
	}
}

func TestProtocolForPort(t *testing.T) {
	tests := map[int]string{
		25: "smtp", 465: "smtp", 587: "smtp", 24: "lmtp", 143: "imap", 993: "imap", 110: "pop3", 995: "pop3",
		0: "", 2525: "", 80: "", 443: "", -1: "",
	}
	for port, want := range tests {
		assert.Equal(t, want, starttls.ProtocolForPort(port), "port %d", port)
	}
}

func TestModeResolve(t *testing.T) {
	tests := []struct {
		mode     starttls.Mode
		protocol string
		addr     string
		want     starttls.Mode
	}{
		{starttls.Auto, "smtp", "mx.example.test:465", starttls.Implicit},
		{starttls.Auto, "smtp", "mx.example.test:25", starttls.StartTLS},
		{starttls.Auto, "smtp", "mx.example.test:587", starttls.StartTLS},
		{starttls.Auto, "imap", "[::1]:993", starttls.Implicit},
		{starttls.Auto, "imap", "127.0.0.1:143", starttls.StartTLS},
		{starttls.Auto, "pop3", "127.0.0.1:995", starttls.Implicit},
		{starttls.Auto, "pop3", "127.0.0.1:110", starttls.StartTLS},
		{starttls.Auto, "lmtp", "127.0.0.1:24", starttls.StartTLS},
		{starttls.Auto, "lmtp", "127.0.0.1:465", starttls.StartTLS}, // LMTP has no implicit port
		{starttls.Auto, "smtp", "127.0.0.1:993", starttls.StartTLS}, // another protocol's port
		{starttls.Auto, "smtp", "no-port", starttls.StartTLS},
		{starttls.Auto, "smtp", "host:smtps", starttls.StartTLS},
		{starttls.Auto, "gopher", "host:465", starttls.StartTLS},
		{starttls.StartTLS, "smtp", "host:465", starttls.StartTLS},
		{starttls.Implicit, "smtp", "host:25", starttls.Implicit},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.mode.Resolve(tt.protocol, tt.addr), "%v.Resolve(%q, %q)", tt.mode, tt.protocol, tt.addr)
	}
}

func TestServerOptionsDefaults(t *testing.T) {
	var nilOpts *starttls.ServerOptions
	assert.Equal(t, starttls.DefaultHandshakeTimeout, nilOpts.HandshakeTimeoutOrDefault())
	assert.Equal(t, starttls.DefaultIdleTimeout, nilOpts.IdleTimeoutOrDefault())
	assert.Equal(t, starttls.DefaultMaxErrors, nilOpts.MaxErrorsOrDefault())
	assert.Equal(t, "localhost", nilOpts.HostnameOrDefault())
	c := nilOpts.NewServerConn(newFakeConn("", 0))
	assert.Equal(t, starttls.DefaultMaxLineLength, c.MaxLineLength())

	var tr syncBuffer
	o := &starttls.ServerOptions{HandshakeTimeout: 1, IdleTimeout: 2, MaxErrors: 3, Hostname: "mx",
		Conn: &starttls.Options{MaxLineLength: 64, Transcript: &tr}}
	assert.EqualValues(t, 1, o.HandshakeTimeoutOrDefault())
	assert.EqualValues(t, 2, o.IdleTimeoutOrDefault())
	assert.Equal(t, 3, o.MaxErrorsOrDefault())
	assert.Equal(t, "mx", o.HostnameOrDefault())
	c = o.NewServerConn(newFakeConn("EHLO x\r\n", 0))
	assert.Equal(t, 64, c.MaxLineLength())
	_, err := c.ReadLine()
	require.NoError(t, err)
	require.NoError(t, c.WriteLine("250 mx"))
	assert.Equal(t, "C: EHLO x\nS: 250 mx\n", tr.String(), "server role set")
	assert.False(t, o.Conn.Server, "the caller's options are not modified")
}
