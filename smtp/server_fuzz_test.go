package smtp_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
)

var replyLine = regexp.MustCompile(`^[2-5][0-9][0-9]([ -][\x20-\x7e]*)?$`)

// FuzzServe feeds arbitrary client input to the front and checks its
// invariants: it never panics and always returns; every line it writes
// before TLS is a well-formed reply; nothing but TLS records follows the
// go-ahead; a refusal of pipelined bytes is the last thing written; AUTH is
// never advertised.
func FuzzServe(f *testing.F) {
	for _, seed := range []string{
		"EHLO client\r\nSTARTTLS\r\n",
		"EHLO client\r\nSTARTTLS\r\nRSET\r\n",
		"STARTTLS\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
		"HELO x\r\nNOOP\r\nRSET\r\nQUIT\r\n",
		"AUTH PLAIN AGRlbW8AZGVtbw==\r\nMAIL FROM:<a@b>\r\n",
		"STARTTLS x\r\nstarttls\r\n",
		"ſtarttls\r\nEHLO\r\nLHLO x\r\n",
		"EHLO x\nSTARTTLS\n\x16\x03\x01\x00\x05hello",
		"\x00\xff\r\n\r\n\r\n" + strings.Repeat("x", 300),
		"NOOP\r", "",
	} {
		f.Add([]byte(seed), false)
	}
	f.Add([]byte("LHLO x\r\nEHLO x\r\nSTARTTLS\r\n"), true)
	pki := scripttest.NewPKI(f)
	tlsConfig := pki.Server()
	f.Fuzz(func(t *testing.T, input []byte, lmtp bool) {
		conn := scripttest.NewFakeConn(input)
		srv := &smtp.Server{LMTP: lmtp, Options: starttls.ServerOptions{
			TLSConfig: tlsConfig, MaxErrors: 5, Conn: &starttls.Options{MaxLineLength: 200}}}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tc, err := srv.Serve(ctx, conn)
		if err == nil {
			tc.Close()
			return // a real handshake out of fuzz input: nothing to check
		}
		out := conn.Written()
		plain, afterGoAhead, goAhead := strings.Cut(out, smtp.ReplyGoAhead+"\r\n")
		if goAhead && afterGoAhead != "" {
			require.Contains(t, []byte{21, 22}, afterGoAhead[0], "after the go-ahead, want only TLS records, got %q", afterGoAhead)
		}
		require.True(t, strings.HasSuffix(plain, "\r\n") || plain == "", "output not ended by CRLF: %q", plain)
		lines := strings.Split(strings.TrimSuffix(plain, "\r\n"), "\r\n")
		for i, l := range lines {
			require.Regexp(t, replyLine, l, "line %d of %q", i, plain)
			require.False(t, strings.HasPrefix(l, "250-AUTH") || strings.HasPrefix(l, "250 AUTH"), "AUTH advertised before TLS")
			if l == smtp.ReplyPipelined {
				require.Equal(t, len(lines)-1, i, "nothing may follow the pipelining refusal")
				require.ErrorIs(t, err, starttls.ErrInjectedData)
			}
		}
		require.True(t, strings.HasPrefix(lines[0], "220 "), "greeting first, got %q", lines[0])
		if errors.Is(err, starttls.ErrTooLarge) {
			require.Equal(t, smtp.ReplyLineTooLong, lines[len(lines)-1])
		}
	})
}
