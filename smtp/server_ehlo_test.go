package smtp_test

import (
	"bufio"
	"cmp"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/internal/servertest"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
)

// TestServerEHLOMatchesCapabilities: the front writes its EHLO (LHLO)
// reply line by line without building a set; it must be exactly
// WriteReply(250, host, Capabilities(&CapabilityOptions{Extensions})...)
// whatever the configured extensions, and refuse an unsafe one before
// writing any line of the reply.
func TestServerEHLOMatchesCapabilities(t *testing.T) {
	pki := scripttest.NewPKI(t)
	tests := []struct {
		name    string
		lmtp    bool
		exts    []string
		unsafe  bool // an extension with CR/LF/NUL: the reply is refused
		wantLen int  // reply lines expected, a check on the test itself
	}{
		{name: "defaults", wantLen: 5},
		{name: "defaults, LMTP", lmtp: true, wantLen: 5},
		{name: "empty", exts: []string{}, wantLen: 2},
		{name: "state keywords dropped", exts: []string{"SIZE 1000", "starttls", "AUTH PLAIN", "auth=login", "StartTLS x", "DSN"}, wantLen: 5},
		{name: "a long line", exts: []string{"X-" + strings.Repeat("A", 200)}, wantLen: 3},
		{name: "unsafe extension", exts: []string{"PIPELINING", "SIZE 1\r\n250 AUTH PLAIN"}, unsafe: true},
		{name: "unsafe but dropped", exts: []string{"AUTH PLAIN\r\n250 X", "DSN"}, wantLen: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &smtp.Server{Options: servertest.ServerOptions(pki), LMTP: tt.lmtp, Extensions: tt.exts}
			host := cmp.Or(srv.Options.Hostname, "localhost")
			server, client := servertest.TCPPair(t)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			done := servertest.ServeOn(ctx, srv.Serve, postFor(srv), server)
			require.NoError(t, client.SetDeadline(time.Now().Add(5*time.Second)))
			r := bufio.NewReader(client)
			greeting, err := r.ReadString('\n')
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(greeting, "220 "), greeting)
			verb := "EHLO"
			if tt.lmtp {
				verb = "LHLO"
			}
			_, err = client.Write([]byte(verb + " client.example\r\n"))
			require.NoError(t, err)

			if tt.unsafe {
				res := servertest.Wait(t, done)
				require.ErrorIs(t, res.Err, starttls.ErrUnsafeArgument)
				rest, _ := r.ReadString('\n')
				assert.Empty(t, rest, "no line of the reply is written")
				return
			}
			want := append([]string{host}, smtp.Capabilities(&smtp.CapabilityOptions{Extensions: tt.exts}).List()...)
			require.Len(t, want, tt.wantLen)
			var got []string
			for {
				line, err := r.ReadString('\n')
				require.NoError(t, err)
				got = append(got, line)
				if len(line) > 3 && line[3] == ' ' {
					break
				}
			}
			var expect []string
			for i, w := range want {
				sep := "-"
				if i == len(want)-1 {
					sep = " "
				}
				expect = append(expect, "250"+sep+w+"\r\n")
			}
			assert.Equal(t, expect, got)
			_, err = client.Write([]byte("QUIT\r\n"))
			require.NoError(t, err)
			res := servertest.Wait(t, done)
			assert.ErrorIs(t, res.Err, starttls.ErrQuit)
		})
	}
}
