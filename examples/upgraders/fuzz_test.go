package upgraders_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/examples/upgraders"
	"github.com/tlsup/tlsup/starttls"
)

// FuzzNew feeds arbitrary names to New and checks: a name is accepted
// exactly when it is one of Names in ASCII case (no Unicode case mapping
// turns another string into a protocol name), the Upgrader's protocol is
// then that name, and a refusal is one printable line of bounded length
// that lists the known names.
func FuzzNew(f *testing.F) {
	for _, name := range append(upgraders.Names(), "SMTP", "XMPP", "gopher\x1b", "", "smtp ", "imaps", "\u0130MAP", "SM\u0130TP") {
		f.Add(name, "client.example.test")
	}
	f.Fuzz(func(t *testing.T, name, localName string) {
		u, err := upgraders.New(name, &upgraders.Options{LocalName: localName, Domain: localName})
		canonical := ""
		for _, n := range upgraders.Names() {
			if starttls.EqualFold(n, name) {
				canonical = n
			}
		}
		if canonical != "" {
			require.NoError(t, err, "New(%q)", name)
			require.Equal(t, canonical, u.Protocol())
			return
		}
		require.Error(t, err, "New(%q) accepted a name that is none of %v", name, upgraders.Names())
		require.Nil(t, u)
		msg := err.Error()
		require.Equal(t, -1, starttls.IndexControl(msg), "no control character in %q", msg)
		require.True(t, utf8.ValidString(msg), "valid UTF-8: %q", msg)
		// Escape cuts the name at about 512 bytes and %q may double each
		// byte of that: bounded, whatever the name's length.
		require.LessOrEqual(t, len(msg), 1200, "bounded: %q", msg)
		require.True(t, strings.HasSuffix(msg, "(want one of "+strings.Join(upgraders.Names(), ", ")+")"), "the known names: %q", msg)
	})
}
