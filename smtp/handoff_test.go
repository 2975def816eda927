package smtp_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	netsmtp "net/smtp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
)

// upgradeScript secures a session; handOffScript is what net/smtp then
// says on it: no second EHLO (answered locally), AUTH, one message, QUIT.
const (
	upgradeScript = `
		S: 220 mx.example.test ESMTP ready
		C: EHLO localhost
		S: 250-mx.example.test
		S: 250 STARTTLS
		C: STARTTLS
		S: 220 2.0.0 Ready to start TLS
		!tls
		C: EHLO localhost
		S: 250-mx.example.test
		S: 250-SIZE 52428800
		S: 250 AUTH PLAIN LOGIN
	`
	handOffScript = `
		C: AUTH PLAIN AHVzZXIAc2VjcmV0
		S: 235 2.7.0 Authentication successful
		C: MAIL FROM:<a@example.test>
		S: 250 2.1.0 Ok
		C: RCPT TO:<b@example.test>
		S: 250 2.1.5 Ok
		C: DATA
		S: 354 End data with <CR><LF>.<CR><LF>
		C: Subject: hand-off
		C: .
		S: 250 2.0.0 Ok: queued
		C: QUIT
		S: 221 2.0.0 Bye
		!eof
	`
)

// TestHandOffNetSMTP continues a secured session with net/smtp: greeting
// and EHLO answered by HandOff, PlainAuth allowed by TLSAuth because the
// session is TLS, and the server never sees a second EHLO.
func TestHandOffNetSMTP(t *testing.T) {
	pki := scripttest.NewPKI(t)
	conn, peer := scripttest.Pipe(t, upgradeScript+handOffScript, &scripttest.Options{TLSConfig: pki.Server()})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tc, res, err := smtp.Upgrade(ctx, conn, &smtp.Options{TLSConfig: pki.Client(scripttest.TestName)})
	require.NoError(t, err)
	defer tc.Close()

	c, err := netsmtp.NewClient(smtp.HandOff(res), scripttest.TestName)
	require.NoError(t, err)
	ok, params := c.Extension("AUTH")
	assert.True(t, ok, "AUTH from the capabilities discovered inside TLS")
	assert.Equal(t, "PLAIN LOGIN", params)
	ok, _ = c.Extension("STARTTLS")
	assert.False(t, ok, "nothing from before TLS")
	require.NoError(t, c.Auth(smtp.TLSAuth(netsmtp.PlainAuth("", "user", "secret", scripttest.TestName), res)))
	require.NoError(t, c.Mail("a@example.test"))
	require.NoError(t, c.Rcpt("b@example.test"))
	w, err := c.Data()
	require.NoError(t, err)
	_, err = fmt.Fprint(w, "Subject: hand-off\r\n")
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, c.Quit())
	require.NoError(t, peer.Wait())
}

// TestTLSAuthTellsTheTruth: PlainAuth refuses a plaintext session, as
// net/smtp means it to, and accepts only a completed handshake.
func TestTLSAuthTellsTheTruth(t *testing.T) {
	info := &netsmtp.ServerInfo{Name: "mx.example.test", Auth: []string{"PLAIN"}}
	plain := netsmtp.PlainAuth("", "user", "secret", "mx.example.test")
	tests := []struct {
		name string
		res  *starttls.Result
		ok   bool
	}{
		{"nil result", nil, false},
		{"plaintext session", &starttls.Result{Plaintext: true}, false},
		{"tls flag without handshake", &starttls.Result{TLS: true}, false},
		{"tls session", &starttls.Result{TLS: true, State: tls.ConnectionState{HandshakeComplete: true}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := smtp.TLSAuth(plain, tt.res).Start(info)
			if tt.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err, "a password over plaintext")
			}
		})
	}
}

// TestHandOffPassesOtherCommands: a first command that is no hello, and
// bytes pipelined behind the hello, reach the server.
func TestHandOffPassesOtherCommands(t *testing.T) {
	pki := scripttest.NewPKI(t)
	conn, peer := scripttest.Pipe(t, upgradeScript+`
		C: NOOP
		S: 250 2.0.0 Ok
	`, &scripttest.Options{TLSConfig: pki.Server()})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tc, res, err := smtp.Upgrade(ctx, conn, &smtp.Options{TLSConfig: pki.Client(scripttest.TestName)})
	require.NoError(t, err)
	defer tc.Close()
	h := smtp.HandOff(res)
	greeting := make([]byte, 128)
	n, err := h.Read(greeting)
	require.NoError(t, err)
	assert.Equal(t, "220 "+scripttest.TestName+" ESMTP session continued after STARTTLS\r\n", string(greeting[:n]))
	_, err = h.Write([]byte("EHLO client.example.test\r\nNOOP\r\n"))
	require.NoError(t, err)
	reply := make([]byte, 256)
	n, err = h.Read(reply)
	require.NoError(t, err)
	assert.Equal(t, "250-"+scripttest.TestName+"\r\n250-SIZE 52428800\r\n250 AUTH PLAIN LOGIN\r\n", string(reply[:n]))
	n, err = h.Read(reply)
	require.NoError(t, err)
	assert.Equal(t, "250 2.0.0 Ok\r\n", string(reply[:n]))
	require.NoError(t, peer.Wait())
	assert.Nil(t, smtp.HandOff(nil))
}

// TestHandOffPlaintextHidesAUTH: after an opportunistic plaintext session,
// the library is shown no AUTH, so it cannot be talked into sending a
// password in the clear.
func TestHandOffPlaintextHidesAUTH(t *testing.T) {
	pki := scripttest.NewPKI(t)
	conn, peer := scripttest.Pipe(t, `
		S: 220 mx.example.test ESMTP ready
		C: EHLO localhost
		S: 250-mx.example.test
		S: 250-AUTH PLAIN LOGIN
		S: 250 SIZE 1000
		C: QUIT
		S: 221 2.0.0 Bye
		!eof
	`, &scripttest.Options{TLSConfig: pki.Server()})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tc, res, err := smtp.Upgrade(ctx, conn, &smtp.Options{TLSConfig: pki.Client(scripttest.TestName), Policy: starttls.Opportunistic})
	require.NoError(t, err)
	defer tc.Close()
	require.True(t, res.Plaintext)
	c, err := netsmtp.NewClient(smtp.HandOff(res), scripttest.TestName)
	require.NoError(t, err)
	ok, _ := c.Extension("AUTH")
	assert.False(t, ok, "no AUTH shown for a plaintext session")
	ok, _ = c.Extension("SIZE")
	assert.True(t, ok)
	// PlainAuth refuses (net/smtp then says QUIT itself): no password sent.
	require.ErrorContains(t, c.Auth(smtp.TLSAuth(netsmtp.PlainAuth("", "user", "secret", scripttest.TestName), res)), "unencrypted")
	require.NoError(t, peer.Wait())
}

// TestHandOffPlaintextHidesOldStyleAUTH: the pre-standard "AUTH=LOGIN"
// line (which Python's smtplib reads as mechanisms) is left out of a
// plaintext session's EHLO reply too; found by FuzzHandOff.
func TestHandOffPlaintextHidesOldStyleAUTH(t *testing.T) {
	fake := &starttls.Result{Conn: starttls.NewConn(scripttest.NewFakeConn(nil), nil), Plaintext: true,
		Before: starttls.NewCapabilities("SIZE 1000", "AUTH=LOGIN PLAIN", "auth=login", "AUTH", "AUTHX")}
	h := smtp.HandOff(fake)
	_, err := h.Write([]byte("EHLO client.example.test\r\n"))
	require.NoError(t, err)
	got, err := io.ReadAll(h)
	require.NoError(t, err)
	assert.Equal(t, "220 localhost ESMTP session continued without TLS\r\n250-localhost\r\n250-SIZE 1000\r\n250 AUTHX\r\n", string(got))
}
