package bytepeer_test

import (
	"crypto/tls"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/bytepeer"
	"github.com/tlsup/tlsup/internal/scripttest"
)

func TestSendExpect(t *testing.T) {
	conn, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error {
		if err := p.Expect([]byte("ping")); err != nil {
			return err
		}
		if err := p.SendString("pong"); err != nil {
			return err
		}
		return p.ExpectEOF()
	}, nil)
	_, err := conn.Write([]byte("ping"))
	require.NoError(t, err)
	got := make([]byte, 4)
	_, err = io.ReadFull(conn, got)
	require.NoError(t, err)
	assert.Equal(t, "pong", string(got))
	conn.Close()
	require.NoError(t, peer.Wait())
}

func TestExpectMismatch(t *testing.T) {
	conn, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error {
		return p.Expect([]byte("ping"))
	}, nil)
	conn.Write([]byte("pang"))
	err := peer.Wait()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `got "pang", want "ping"`)
}

// ExpectUntil keeps what came after the separator for the next read.
func TestExpectUntilKeepsTheRest(t *testing.T) {
	conn, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error {
		head, err := p.ExpectUntil(">")
		if err != nil {
			return err
		}
		if string(head) != "<a>" {
			return assert.AnError
		}
		return p.Expect([]byte("<b/>"))
	}, nil)
	conn.Write([]byte("<a><b/>"))
	require.NoError(t, peer.Wait())
}

// Bytes left over by ExpectUntil fail TLS: they would be plaintext.
func TestTLSRefusesLeftovers(t *testing.T) {
	pki := scripttest.NewPKI(t)
	conn, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error {
		if _, err := p.ExpectUntil(">"); err != nil {
			return err
		}
		return p.TLS()
	}, &bytepeer.Options{TLSConfig: pki.Server()})
	conn.Write([]byte("<a>x"))
	err := peer.Wait()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "buffered before TLS")
}

func TestTLS(t *testing.T) {
	pki := scripttest.NewPKI(t)
	conn, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error {
		if err := p.TLS(); err != nil {
			return err
		}
		return p.SendString("inside")
	}, &bytepeer.Options{TLSConfig: pki.Server()})
	tc := tls.Client(conn, pki.Client(scripttest.TestName))
	got := make([]byte, 6)
	_, err := io.ReadFull(tc, got)
	require.NoError(t, err)
	assert.Equal(t, "inside", string(got))
	tc.Close()
	require.NoError(t, peer.Wait())
}

// Cleanup ends a minute's stall and a Hold: the test would otherwise hang.
func TestCleanupEndsSleepAndHold(t *testing.T) {
	t.Run("sleep", func(t *testing.T) {
		bytepeer.TCP(t, func(p *bytepeer.Conn) error {
			p.Sleep(time.Minute)
			return nil
		}, nil)
	})
	t.Run("hold", func(t *testing.T) {
		bytepeer.TCP(t, func(p *bytepeer.Conn) error { return p.Hold() }, nil)
	})
}

func TestExpectTimeout(t *testing.T) {
	_, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error {
		return p.Expect([]byte("x"))
	}, &bytepeer.Options{Timeout: 50 * time.Millisecond})
	require.Error(t, peer.Wait())
}
