package upgraders_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/examples/upgraders"
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
		_, err := upgraders.New(name, nil)
		require.NoError(t, err, "every listed name works")
	}
	_, err := upgraders.New("gopher\x1b", nil)
	require.ErrorContains(t, err, `unknown protocol "gopher\\x1b"`)
}
