package tlsconf_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/tlsconf"
)

// upgradeWith runs one SMTP upgrade against a minimal server on 127.0.0.1
// using serverTLS, with session tickets (the shared fake peer disables
// them), and returns whether the handshake resumed.
func upgradeWith(t *testing.T, serverTLS, clientTLS *tls.Config, wantErr error) bool {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(conn)
		fmt.Fprint(conn, "220 mx.example.test ESMTP\r\n")
		r.ReadString('\n') // EHLO
		fmt.Fprint(conn, "250-mx.example.test\r\n250 STARTTLS\r\n")
		r.ReadString('\n') // STARTTLS
		fmt.Fprint(conn, "220 go ahead\r\n")
		tc := tls.Server(conn, serverTLS)
		tr := bufio.NewReader(tc)
		if _, err := tr.ReadString('\n'); err != nil { // EHLO inside TLS
			return
		}
		fmt.Fprint(tc, "250-mx.example.test\r\n250 AUTH PLAIN\r\n")
		tr.ReadString('\n') // until the client closes
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tc, res, err := smtp.Dial(ctx, "tcp", ln.Addr().String(), &smtp.Options{TLSConfig: clientTLS})
	if wantErr != nil {
		require.ErrorContains(t, err, wantErr.Error())
		return res.Resumed
	}
	require.NoError(t, err)
	// Read what the server sends after the handshake (the TLS 1.3 session
	// ticket came before the EHLO reply, which Dial read) and close.
	tc.Close()
	assert.Equal(t, res.State.DidResume, res.Resumed)
	return res.Resumed
}

func TestSessionCache(t *testing.T) {
	pki := scripttest.NewPKI(t)
	otherPKI := scripttest.NewPKI(t)
	serverTLS := pki.Server()
	strict := pki.Client(scripttest.TestName)
	lax := &tls.Config{ServerName: scripttest.TestName, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
	// Roots that trust both CAs: a different pool, hence another policy.
	both := pki.CA.Pool()
	both.AddCert(otherPKI.CA.Certificate())
	wider := tlsconf.Client(scripttest.TestName, both)
	encrypt, _ := tlsconf.Encrypt(scripttest.TestName, pki.CA.Pool())

	tests := []struct {
		name         string
		first, later *tls.Config
		wantResumed  bool
	}{
		{"same policy resumes", strict, strict, true},
		{"lax session never serves a strict config", lax, strict, false},
		{"other roots never share", wider, strict, false},
		{"callbacks never share", encrypt, encrypt, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := tlsconf.NewSessionCache(8)
			first, later := cache.Config(tt.first), cache.Config(tt.later)
			assert.False(t, upgradeWith(t, serverTLS, first, nil), "nothing cached yet")
			assert.Equal(t, tt.wantResumed, upgradeWith(t, serverTLS, later, nil))
		})
	}
}

// TestSessionCacheHazard is the control: crypto/tls checks the roots and
// the name again when it resumes, but never calls VerifyPeerCertificate
// (a DANE or pinning check). With crypto/tls's own cache shared by name, a
// session made without the check is resumed by a config whose check would
// have refused the server; with SessionCache it is not.
func TestSessionCacheHazard(t *testing.T) {
	pki := scripttest.NewPKI(t)
	serverTLS := pki.Server()
	refuse := func([][]byte, [][]*x509.Certificate) error { return errors.New("pinned key differs") }

	shared := tls.NewLRUClientSessionCache(8)
	plain := pki.Client(scripttest.TestName)
	plain.ClientSessionCache = shared
	pinned := pki.Client(scripttest.TestName)
	pinned.VerifyPeerCertificate = refuse
	pinned.ClientSessionCache = shared
	assert.False(t, upgradeWith(t, serverTLS, plain, nil))
	assert.True(t, upgradeWith(t, serverTLS, pinned, nil), "resumed, and the pinning check never ran")

	cache := tlsconf.NewSessionCache(8)
	assert.False(t, upgradeWith(t, serverTLS, cache.Config(pki.Client(scripttest.TestName)), nil))
	pinned = pki.Client(scripttest.TestName)
	pinned.VerifyPeerCertificate = refuse
	upgradeWith(t, serverTLS, cache.Config(pinned), errors.New("pinned key differs"))
}
