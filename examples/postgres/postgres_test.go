package postgres_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/examples/postgres"
	"github.com/tlsup/tlsup/internal/bytepeer"
	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
)

// errorResponse builds an ErrorResponse with the given fields.
func errorResponse(fields ...string) []byte {
	var body bytes.Buffer
	for _, f := range fields {
		body.WriteString(f)
		body.WriteByte(0)
	}
	body.WriteByte(0)
	msg := []byte{'E', 0, 0, 0, 0}
	binary.BigEndian.PutUint32(msg[1:], uint32(body.Len()+4))
	return append(msg, body.Bytes()...)
}

// answer is a peer that reads the SSLRequest and sends reply in one write.
func answer(reply []byte) func(*bytepeer.Conn) error {
	return func(p *bytepeer.Conn) error {
		if err := p.Expect(postgres.SSLRequest()); err != nil {
			return err
		}
		if err := p.Send(reply); err != nil {
			return err
		}
		return p.ExpectEOF()
	}
}

func TestUpgradeGoAhead(t *testing.T) {
	pki := scripttest.NewPKI(t)
	conn, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error {
		if err := p.Expect(postgres.SSLRequest()); err != nil {
			return err
		}
		if err := p.SendString("S"); err != nil {
			return err
		}
		if err := p.TLS(); err != nil {
			return err
		}
		// The startup message is the caller's: the first bytes inside TLS.
		if err := p.Expect([]byte("startup")); err != nil {
			return err
		}
		return p.SendString("R")
	}, &bytepeer.Options{TLSConfig: pki.Server()})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var transcript scripttest.SyncBuffer
	tc, res, err := postgres.Upgrade(ctx, conn, &postgres.Options{TLSConfig: pki.Client(scripttest.TestName),
		Conn: &starttls.Options{Transcript: &transcript}})
	require.NoError(t, err)
	require.NotNil(t, tc)
	assert.Equal(t, "C: SSLRequest\nS: 'S'\n-- TLS --\n", transcript.String(), "a note per binary message")
	assert.True(t, res.TLS)
	assert.False(t, res.Plaintext)
	assert.Equal(t, "postgres", res.Protocol)
	assert.Equal(t, starttls.StartTLS, res.Mode)
	assert.Empty(t, res.Greeting)
	assert.Zero(t, res.Before.Len())
	assert.Zero(t, res.After.Len())
	assert.Equal(t, scripttest.TestName, res.State.ServerName)

	_, err = res.Conn.Write([]byte("startup"))
	require.NoError(t, err)
	var b [1]byte
	_, err = io.ReadFull(res.Conn, b[:])
	require.NoError(t, err)
	assert.Equal(t, byte('R'), b[0])
	tc.Close()
	require.NoError(t, peer.Wait())
}

func TestUpgradeNotOffered(t *testing.T) {
	pki := scripttest.NewPKI(t)
	for _, policy := range []starttls.Policy{starttls.Required, starttls.Always} {
		t.Run(policy.String(), func(t *testing.T) {
			conn, peer := bytepeer.TCP(t, answer([]byte("N")), nil)
			_, res, err := postgres.Upgrade(context.Background(), conn,
				&postgres.Options{TLSConfig: pki.Client(scripttest.TestName), Policy: policy})
			require.ErrorIs(t, err, starttls.ErrNotOffered)
			assert.False(t, res.TLS)
			assert.False(t, res.Plaintext)
			require.NoError(t, peer.Wait(), "the conn is closed on error")
		})
	}
}

func TestUpgradeOpportunisticPlaintext(t *testing.T) {
	pki := scripttest.NewPKI(t)
	conn, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error {
		if err := p.Expect(postgres.SSLRequest()); err != nil {
			return err
		}
		if err := p.SendString("N"); err != nil {
			return err
		}
		return p.Expect([]byte("startup"))
	}, nil)
	tc, res, err := postgres.Upgrade(context.Background(), conn,
		&postgres.Options{TLSConfig: pki.Client(scripttest.TestName), Policy: starttls.Opportunistic})
	require.NoError(t, err)
	assert.Nil(t, tc)
	assert.True(t, res.Plaintext)
	assert.False(t, res.TLS)
	require.NotNil(t, res.Conn)
	assert.Nil(t, res.Conn.TLS())
	_, err = res.Conn.Write([]byte("startup"))
	require.NoError(t, err)
	require.NoError(t, peer.Wait())
	res.Conn.Close()
}

func TestUpgradeFailures(t *testing.T) {
	pki := scripttest.NewPKI(t)
	huge := []byte{'E', 0xff, 0xff, 0xff, 0xff}
	tests := []struct {
		name  string
		peer  func(*bytepeer.Conn) error
		kind  error
		text  string // in the error, when not ""
		reply string // the *ReplyError's text, when not ""
	}{
		{name: "refusal", peer: answer(errorResponse("SFATAL", "C0A000", "Munsupported frontend protocol 1234.5679")),
			kind: starttls.ErrRefused, reply: "FATAL 0A000 unsupported frontend protocol 1234.5679"},
		{name: "refusal escaped", peer: answer(errorResponse("SERROR", "M\x1b[31mred\r\n")),
			kind: starttls.ErrRefused, reply: `ERROR \x1b[31mred\r\n`},
		{name: "4 GiB error", peer: answer(huge), kind: starttls.ErrTooLarge},
		{name: "error over the bound", peer: answer(binary.BigEndian.AppendUint32([]byte{'E'}, postgres.MaxErrorLength+1)), kind: starttls.ErrTooLarge},
		{name: "error length under 4", peer: answer([]byte{'E', 0, 0, 0, 3}), kind: starttls.ErrProtocol},
		{name: "error without final NUL", peer: answer([]byte{'E', 0, 0, 0, 6, 'M', 0}), kind: starttls.ErrProtocol},
		{name: "garbage", peer: answer([]byte("H")), kind: starttls.ErrProtocol, text: "0x48"},
		{name: "NUL", peer: answer([]byte{0}), kind: starttls.ErrProtocol},
		{name: "injected in the same write", peer: answer([]byte("SR\x00\x00\x00\x08\x00\x00\x00\x00")), kind: starttls.ErrInjectedData},
		{name: "hang-up before the answer", peer: func(p *bytepeer.Conn) error {
			return p.Expect(postgres.SSLRequest())
		}, kind: io.ErrUnexpectedEOF},
		{name: "hang-up inside the error", peer: func(p *bytepeer.Conn) error {
			if err := p.Expect(postgres.SSLRequest()); err != nil {
				return err
			}
			return p.Send(errorResponse("SFATAL", "Mbye")[:8])
		}, kind: io.ErrUnexpectedEOF},
		{name: "hang-up after S", peer: func(p *bytepeer.Conn) error {
			if err := p.Expect(postgres.SSLRequest()); err != nil {
				return err
			}
			return p.SendString("S")
		}, kind: starttls.ErrHandshake},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, peer := bytepeer.TCP(t, tt.peer, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tc, res, err := postgres.Upgrade(ctx, conn, &postgres.Options{TLSConfig: pki.Client(scripttest.TestName)})
			require.ErrorIs(t, err, tt.kind)
			assert.Nil(t, tc)
			assert.False(t, res.TLS)
			assert.Nil(t, res.Conn)
			if tt.text != "" {
				assert.Contains(t, err.Error(), tt.text)
			}
			if tt.reply != "" {
				var reply *starttls.ReplyError
				require.ErrorAs(t, err, &reply)
				assert.Equal(t, tt.reply, reply.Text)
				assert.Equal(t, "E", reply.Status)
			}
			assert.Equal(t, -1, starttls.IndexControl(err.Error()), "raw control in %q", err)
			require.NoError(t, peer.Wait())
		})
	}
}

// Bytes sent a moment after the 'S', where the server's first TLS record
// belongs, fail the handshake: TLS never starts with them.
func TestUpgradeInjectedLater(t *testing.T) {
	pki := scripttest.NewPKI(t)
	conn, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error {
		if err := p.Expect(postgres.SSLRequest()); err != nil {
			return err
		}
		if err := p.SendString("S"); err != nil {
			return err
		}
		p.Sleep(50 * time.Millisecond)
		p.Send(append([]byte{'R', 0, 0, 0, 8, 0, 0, 0, 0}, errorResponse("SFATAL", "Mforged")...))
		return p.Hold()
	}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, res, err := postgres.Upgrade(ctx, conn, &postgres.Options{TLSConfig: pki.Client(scripttest.TestName)})
	require.ErrorIs(t, err, starttls.ErrHandshake)
	var serr *starttls.Error
	require.ErrorAs(t, err, &serr)
	assert.Equal(t, starttls.StepHandshake, serr.Step)
	assert.False(t, res.TLS)
	require.NoError(t, peer.Wait())
}

// A silent server at each step: the context ends the upgrade.
func TestUpgradeSilence(t *testing.T) {
	pki := scripttest.NewPKI(t)
	tests := []struct {
		name string
		peer func(*bytepeer.Conn) error
		step starttls.Step
	}{
		{"no answer", func(p *bytepeer.Conn) error { return p.Hold() }, starttls.StepStartTLS},
		{"no handshake", func(p *bytepeer.Conn) error {
			if err := p.Expect(postgres.SSLRequest()); err != nil {
				return err
			}
			if err := p.SendString("S"); err != nil {
				return err
			}
			return p.Hold()
		}, starttls.StepHandshake},
		{"error trickled", func(p *bytepeer.Conn) error {
			if err := p.Expect(postgres.SSLRequest()); err != nil {
				return err
			}
			if err := p.Send([]byte{'E', 0, 0}); err != nil {
				return err
			}
			return p.Hold()
		}, starttls.StepStartTLS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, peer := bytepeer.TCP(t, tt.peer, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			_, _, err := postgres.Upgrade(ctx, conn, &postgres.Options{TLSConfig: pki.Client(scripttest.TestName)})
			require.ErrorIs(t, err, context.DeadlineExceeded)
			var serr *starttls.Error
			require.ErrorAs(t, err, &serr)
			assert.Equal(t, tt.step, serr.Step)
			require.NoError(t, peer.Wait())
		})
	}
}

func TestUpgradeWrongCA(t *testing.T) {
	pki, other := scripttest.NewPKI(t), scripttest.NewPKI(t)
	conn, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error {
		if err := p.Expect(postgres.SSLRequest()); err != nil {
			return err
		}
		if err := p.SendString("S"); err != nil {
			return err
		}
		p.TLS() // fails: the client rejects the certificate
		return nil
	}, &bytepeer.Options{TLSConfig: pki.Server()})
	_, res, err := postgres.Upgrade(context.Background(), conn, &postgres.Options{TLSConfig: other.Client(scripttest.TestName)})
	require.ErrorIs(t, err, starttls.ErrHandshake)
	var cerr *tls.CertificateVerificationError
	require.ErrorAs(t, err, &cerr)
	assert.False(t, res.TLS)
	require.NoError(t, peer.Wait())
}

func TestUpgradeNilTLSConfig(t *testing.T) {
	conn, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error { return p.ExpectEOF() }, nil)
	_, _, err := postgres.Upgrade(context.Background(), conn, nil)
	require.ErrorIs(t, err, starttls.ErrConfig)
	require.NoError(t, peer.Wait())
}

func TestDial(t *testing.T) {
	pki := scripttest.NewPKI(t)
	addr, peer := bytepeer.Listen(t, func(p *bytepeer.Conn) error {
		if err := p.Expect(postgres.SSLRequest()); err != nil {
			return err
		}
		if err := p.SendString("S"); err != nil {
			return err
		}
		return p.TLS()
	}, &bytepeer.Options{TLSConfig: pki.Server()})
	tc, res, err := postgres.Dial(context.Background(), "tcp", addr,
		&postgres.Options{TLSConfig: pki.Client(scripttest.TestName)})
	require.NoError(t, err)
	assert.True(t, res.TLS)
	tc.Close()
	require.NoError(t, peer.Wait())

	_, res, err = postgres.Dial(context.Background(), "tcp", "127.0.0.1:1", nil)
	var serr *starttls.Error
	require.ErrorAs(t, err, &serr)
	assert.Equal(t, starttls.StepConnect, serr.Step)
	assert.False(t, res.TLS)
}

func TestParseErrorFields(t *testing.T) {
	tests := []struct {
		body string
		want postgres.ErrorFields
		err  error
	}{
		{"SFATAL\x00VFATAL\x00C0A000\x00Munsupported\x00\x00", postgres.ErrorFields{Severity: "FATAL", Code: "0A000", Message: "unsupported"}, nil},
		{"\x00", postgres.ErrorFields{}, nil},
		{"", postgres.ErrorFields{}, starttls.ErrProtocol},
		{"Mno end\x00", postgres.ErrorFields{Message: "no end"}, starttls.ErrProtocol},
		{"Mcut", postgres.ErrorFields{}, starttls.ErrProtocol},
		{"\x00\x00", postgres.ErrorFields{}, starttls.ErrProtocol},
	}
	for _, tt := range tests {
		got, err := postgres.ParseErrorFields([]byte(tt.body))
		if tt.err != nil {
			require.ErrorIs(t, err, tt.err, "body %q", tt.body)
			continue
		}
		require.NoError(t, err, "body %q", tt.body)
		assert.Equal(t, tt.want, got, "body %q", tt.body)
	}
	assert.Equal(t, "FATAL 0A000 x", postgres.ErrorFields{Severity: "FATAL", Code: "0A000", Message: "x"}.String())
}

// The SSLRequest is the documented 8 bytes: length 8, code 80877103.
func TestSSLRequestBytes(t *testing.T) {
	b := postgres.SSLRequest()
	require.Len(t, b, 8)
	assert.Equal(t, uint32(8), binary.BigEndian.Uint32(b))
	assert.Equal(t, uint32(1234<<16|5679), binary.BigEndian.Uint32(b[4:]))
	b[0] = 9
	assert.Equal(t, byte(0), postgres.SSLRequest()[0], "a copy")
}

// Mode Implicit is PostgreSQL 17's direct TLS: the handshake comes first
// and offers the "postgresql" ALPN protocol.
func TestUpgradeImplicitALPN(t *testing.T) {
	pki := scripttest.NewPKI(t)
	server := pki.Server()
	server.NextProtos = []string{"postgresql"}
	conn, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error {
		if err := p.TLS(); err != nil {
			return err
		}
		return p.Expect([]byte("startup"))
	}, &bytepeer.Options{TLSConfig: server})
	tc, res, err := postgres.Upgrade(context.Background(), conn,
		&postgres.Options{TLSConfig: pki.Client(scripttest.TestName), Mode: starttls.Implicit})
	require.NoError(t, err)
	defer tc.Close()
	assert.Equal(t, starttls.Implicit, res.Mode)
	assert.Equal(t, "postgresql", res.State.NegotiatedProtocol)
	_, err = res.Conn.Write([]byte("startup"))
	require.NoError(t, err)
	require.NoError(t, peer.Wait())
}

// Cancelling the context ends a wait for the answer at once.
func TestUpgradeCancel(t *testing.T) {
	pki := scripttest.NewPKI(t)
	conn, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error { return p.Hold() }, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, _, err := postgres.Upgrade(ctx, conn, &postgres.Options{TLSConfig: pki.Client(scripttest.TestName)})
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, peer.Wait())
}
