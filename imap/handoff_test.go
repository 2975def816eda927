package imap_test

import (
	"bufio"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/imap"
	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
)

// TestHandOff: a client that waits for a greeting gets one, carrying the
// capabilities discovered inside TLS, and its commands reach the server.
func TestHandOff(t *testing.T) {
	pki := scripttest.NewPKI(t)
	o := upgrade(t, pki, greeting+capsStartTLS+goAhead+afterTLS+`
		C: a1 NOOP
		S: a1 OK NOOP completed
	`, setup{})
	require.NoError(t, o.err)
	h := imap.HandOff(o.res)
	require.NotNil(t, h)
	r := bufio.NewReader(h)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "* OK [CAPABILITY IMAP4rev2 IMAP4rev1 AUTH=PLAIN AUTH=SCRAM-SHA-256] IMAP session continued after STARTTLS\r\n", line)
	_, err = h.Write([]byte("a1 NOOP\r\n"))
	require.NoError(t, err)
	line, err = r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "a1 OK NOOP completed\r\n", line)
	require.NoError(t, o.peer.Wait())
}

// TestHandOffDropsNonAtoms: an entry that could not stand in a response
// code (a "]" would end it early) is left out of the synthetic greeting.
func TestHandOffDropsNonAtoms(t *testing.T) {
	fake := &starttls.Result{Conn: starttls.NewConn(nil, nil), After: starttls.NewCapabilities("IMAP4rev2", "X]Y", "AUTH=PLAIN", "")}
	line, err := bufio.NewReader(imap.HandOff(fake)).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "* OK [CAPABILITY IMAP4rev2 AUTH=PLAIN] IMAP session continued after STARTTLS\r\n", line)
	assert.Nil(t, imap.HandOff(&starttls.Result{}))
}

// TestHandOffPlaintext: a plaintext session's greeting offers no password
// mechanism and says LOGINDISABLED.
func TestHandOffPlaintext(t *testing.T) {
	fake := &starttls.Result{Conn: starttls.NewConn(nil, nil), Plaintext: true,
		Before: starttls.NewCapabilities("IMAP4rev1", "AUTH=PLAIN", "IDLE")}
	line, err := bufio.NewReader(imap.HandOff(fake)).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "* OK [CAPABILITY IMAP4rev1 IDLE LOGINDISABLED] IMAP session continued without TLS\r\n", line)
}
