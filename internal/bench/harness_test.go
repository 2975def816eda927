package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/starttls"
)

// TestClients runs every benchmark client once against its server, so that
// plain go test keeps the harness honest; it takes a few handshakes.
func TestClients(t *testing.T) {
	tp := newTLSPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	floor := startPeer(t, floorServer(tp.server))
	smtpPeer := startPeer(t, smtpServer.serve(tp.server))
	imapPeer := startPeer(t, imapServer.serve(tp.server))
	pop3Peer := startPeer(t, pop3Server.serve(tp.server))
	upgradePeer := startPeer(t, serverUpgradeServer(tp.server))
	frontPeer := startPeer(t, frontServer(tp.server))
	for _, tc := range []struct {
		name   string
		addr   string
		client func(string, *tls.Config) error
	}{
		{"raw-tls", floor.addr, rawTLS},
		{"smtp-minimal", smtpPeer.addr, minimalSMTP},
		{"smtp-library", smtpPeer.addr, libraryClient(ctx, smtpUpgrade)},
		{"smtp-net-smtp", smtpPeer.addr, netSMTP},
		{"imap-minimal", imapPeer.addr, minimalIMAP},
		{"imap-library", imapPeer.addr, libraryClient(ctx, imapUpgrade)},
		{"pop3-minimal", pop3Peer.addr, minimalPOP3},
		{"pop3-library", pop3Peer.addr, libraryClient(ctx, pop3Upgrade)},
		{"server-upgrade", upgradePeer.addr, minimalSMTP},
		{"server-front", frontPeer.addr, minimalSMTP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, tc.client(tc.addr, tp.client))
		})
	}
}

// TestServerUpgradeHandsOver checks what the buffer reuse of
// starttls.ServerUpgrade promises: the new Conn reads what comes over TLS,
// and the Conn it was given can no longer read at all.
func TestServerUpgradeHandsOver(t *testing.T) {
	tp := newTLSPair(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	clientErr := make(chan error, 1)
	go func() {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			clientErr <- err
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write(cmdSTARTTLS); err != nil {
			clientErr <- err
			return
		}
		var buf [64]byte
		if _, err := readLine(conn, buf[:]); err != nil {
			clientErr <- err
			return
		}
		tc := tls.Client(conn, tp.client)
		if err := tc.Handshake(); err != nil {
			clientErr <- err
			return
		}
		_, err = io.WriteString(tc, "EHLO inside\r\n")
		clientErr <- err
		io.Copy(io.Discard, tc)
	}()
	conn, err := ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := starttls.NewConn(conn, &starttls.Options{Server: true})
	line, err := c.ReadLine()
	require.NoError(t, err)
	require.Equal(t, "STARTTLS", string(line))
	tc, err := starttls.ServerUpgrade(ctx, c, &starttls.ServerSwitch{
		Protocol: "smtp", GoAhead: "220 go ahead", TLSConfig: tp.server,
	})
	require.NoError(t, err)
	require.NotNil(t, tc.TLS(), "the new Conn wraps the *tls.Conn")
	line, err = tc.ReadLine()
	require.NoError(t, err)
	assert.Equal(t, "EHLO inside", string(line), "got the line sent inside TLS")
	assert.Zero(t, c.Buffered())
	_, err = c.ReadLine()
	assert.True(t, errors.Is(err, net.ErrClosed), "old Conn ReadLine: got %v, want net.ErrClosed", err)
	_, err = c.Read(make([]byte, 1))
	assert.True(t, errors.Is(err, net.ErrClosed), "old Conn Read: got %v, want net.ErrClosed", err)
	assert.True(t, errors.Is(c.Discard(1), net.ErrClosed), "old Conn Discard")
	require.NoError(t, <-clientErr)
	require.NoError(t, tc.WriteCommand("250", "ok", "inside"))
	require.Error(t, tc.WriteCommand("250", "a\r\nRSET"), "an argument with CRLF is refused")
}
