package upgraders_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/examples/upgraders"
	"github.com/tlsup/tlsup/examples/xmpp"
	"github.com/tlsup/tlsup/starttls"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name, protocol string
		implicit       int
	}{
		{"smtp", "smtp", 465},
		{"SMTP", "smtp", 465},
		{"lmtp", "lmtp", 0},
		{"imap", "imap", 993},
		{"pop3", "pop3", 995},
		{"sieve", "sieve", 0},
		{"nntp", "nntp", 563},
		{"ftp", "ftp", 990},
		{"postgres", "postgres", 0},
		{"ldap", "ldap", 636},
		{"XMPP", "xmpp", 5223},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := upgraders.New(tt.name, &upgraders.Options{LocalName: "client.example.test"})
			require.NoError(t, err)
			assert.Equal(t, tt.protocol, u.Protocol())
			port := 0
			if p, ok := u.(starttls.ImplicitPorter); ok {
				port = p.ImplicitPort()
			}
			assert.Equal(t, tt.implicit, port)
		})
	}
	for _, name := range upgraders.Names() {
		u, err := upgraders.New(name, nil)
		require.NoError(t, err, "every listed name works")
		assert.Equal(t, name, u.Protocol(), "the name is the Upgrader's own")
	}
	u, err := upgraders.New("xmpp", &upgraders.Options{Domain: "example.test"})
	require.NoError(t, err)
	require.IsType(t, &xmpp.Upgrader{}, u)
	assert.Equal(t, "example.test", u.(*xmpp.Upgrader).Domain, "Domain reaches the XMPP stream's 'to'")
	_, err = upgraders.New("gopher\x1b", nil)
	require.ErrorContains(t, err, `unknown protocol "gopher\\x1b"`)
}

// TestNewASCIICaseOnly: a name matches in ASCII case only; Unicode case
// mapping (U+0130, a capital I with a dot, lowers to "i") makes no
// protocol name of another string.
func TestNewASCIICaseOnly(t *testing.T) {
	for _, name := range []string{"\u0130MAP", "S\u0130EVE", "smtp\u0130"} {
		_, err := upgraders.New(name, nil)
		require.Error(t, err, "New(%q)", name)
	}
	u, err := upgraders.New("iMaP", nil)
	require.NoError(t, err)
	assert.Equal(t, "imap", u.Protocol())
}
