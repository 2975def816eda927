package handoff_test

import (
	"crypto/x509"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInProcess runs each hand-off against the in-process servers and
// checks what the server saw: the message, and no second EHLO (the
// library's is answered by smtp.HandOff).
func TestInProcess(t *testing.T) {
	tests := []struct {
		name string
		send func(addr string, roots *x509.CertPool, user, password string) error
	}{
		{"net/smtp", sendNetSMTP},
		{"go-smtp", sendGoSMTP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, stop := startSMTP()
			t.Cleanup(stop)
			require.NoError(t, tt.send(s.addr, s.roots, testUser, testPassword))
			msgs := s.received()
			require.Len(t, msgs, 1)
			assert.Contains(t, msgs[0], "Subject: hand-off")
			assert.Equal(t, 2, s.ehlos(), "one EHLO before TLS, one inside it by tlsup, none by the library")
			assert.NotContains(t, s.wire.String(), "AUTH PLAIN AHVzZXIAc2VjcmV0\r\n250", "sanity: the wire log is read")
		})
		t.Run(tt.name+"/wrong password", func(t *testing.T) {
			s, stop := startSMTP()
			t.Cleanup(stop)
			require.Error(t, tt.send(s.addr, s.roots, testUser, "wrong"))
			assert.Empty(t, s.received())
		})
	}
	t.Run("go-imap", func(t *testing.T) {
		addr, roots, stop := startIMAP()
		t.Cleanup(stop)
		n, err := selectGoIMAP(addr, roots, testUser, testPassword)
		require.NoError(t, err)
		assert.Equal(t, uint32(1), n)
		_, err = selectGoIMAP(addr, roots, testUser, "wrong")
		require.Error(t, err)
	})
}

// TestRealServers runs the hand-offs against the real Postfix submission
// listener (AUTH and one message) and Dovecot (LOGIN and SELECT) that
// .ci/handoff.sh starts. Without TLSUP_REAL_SERVERS=1 it is skipped,
// so that go test ./... stays hermetic.
func TestRealServers(t *testing.T) {
	if os.Getenv("TLSUP_REAL_SERVERS") != "1" {
		t.Skip("real servers not started: bash .ci/handoff.sh starts them (TLSUP_REAL_SERVERS=1)")
	}
	need := func(name string) string {
		v := os.Getenv(name)
		require.NotEmpty(t, v, "%s must be set with TLSUP_REAL_SERVERS=1", name)
		return v
	}
	pem, err := os.ReadFile(need("TLSUP_CA"))
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(pem), "no certificate in TLSUP_CA")
	user, password := need("TLSUP_USER"), need("TLSUP_PASSWORD")
	submission, imapAddr := need("TLSUP_SUBMISSION_ADDR"), need("TLSUP_IMAP_ADDR")

	for _, tt := range []struct {
		name string
		send func(addr string, roots *x509.CertPool, user, password string) error
	}{
		{"postfix/net/smtp", sendNetSMTP},
		{"postfix/go-smtp", sendGoSMTP},
	} {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, tt.send(submission, roots, user, password))
			require.Error(t, tt.send(submission, roots, user, password+"-wrong"), "a wrong password is refused")
		})
	}
	t.Run("dovecot/go-imap", func(t *testing.T) {
		_, err := selectGoIMAP(imapAddr, roots, user, password)
		require.NoError(t, err)
		_, err = selectGoIMAP(imapAddr, roots, user, password+"-wrong")
		require.Error(t, err)
	})
}

// TestReadmeSnippets keeps the README's hand-off snippets identical to the
// code the examples and tests run.
func TestReadmeSnippets(t *testing.T) {
	src, err := os.ReadFile("example_test.go")
	require.NoError(t, err)
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	for _, name := range []string{"netsmtp", "gosmtp", "goimap"} {
		_, rest, ok := strings.Cut(string(src), "\t// README:"+name+":begin\n")
		require.True(t, ok, name)
		body, _, ok := strings.Cut(rest, "\t// README:"+name+":end\n")
		require.True(t, ok, name)
		var snippet strings.Builder
		for _, line := range strings.SplitAfter(body, "\n") {
			snippet.WriteString(strings.TrimPrefix(line, "\t"))
		}
		assert.True(t, strings.Contains(string(readme), snippet.String()), "README's %s hand-off differs from example_test.go", name)
	}
}
