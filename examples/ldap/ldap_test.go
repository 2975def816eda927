package ldap

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/bytepeer"
	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
)

// response builds an LDAPMessage carrying an ExtendedResponse; name is
// the responseName, "" for none.
func response(id, code int, diagnostic, name string) []byte {
	var fields []byte
	fields = appendInt(fields, tagEnumerated, code)
	fields = appendElement(fields, tagOctetString)
	fields = appendElement(fields, tagOctetString, []byte(diagnostic))
	if name != "" {
		fields = appendElement(fields, tagResponseName, []byte(name))
	}
	return appendElement(nil, tagSequence, appendInt(nil, tagInteger, id), appendElement(nil, tagExtendedResponse, fields))
}

// withOptional builds message 1's ExtendedResponse with code and the
// given optional fields, in the order given.
func withOptional(code int, optional ...[]byte) []byte {
	fields := appendInt(nil, tagEnumerated, code)
	fields = appendElement(fields, tagOctetString)
	fields = appendElement(fields, tagOctetString)
	for _, o := range optional {
		fields = append(fields, o...)
	}
	return appendElement(nil, tagSequence, appendInt(nil, tagInteger, 1), appendElement(nil, tagExtendedResponse, fields))
}

// answer is a peer that reads the StartTLS request, sends reply in one
// write and waits for the client to close.
func answer(reply []byte) func(*bytepeer.Conn) error {
	return func(p *bytepeer.Conn) error {
		if err := p.Expect(StartTLSRequest()); err != nil {
			return err
		}
		if err := p.Send(reply); err != nil {
			return err
		}
		return p.ExpectEOF()
	}
}

// A forged BindResponse (message 2, success) an attacker appends.
var forgedBind = appendElement(nil, tagSequence, appendInt(nil, tagInteger, 2),
	appendElement(nil, 0x61, appendInt(nil, tagEnumerated, 0), appendElement(nil, tagOctetString), appendElement(nil, tagOctetString)))

func TestStartTLSRequestBytes(t *testing.T) {
	want := append([]byte{0x30, 0x1d, 0x02, 0x01, 0x01, 0x77, 0x18, 0x80, 0x16}, OIDStartTLS...)
	assert.Equal(t, want, StartTLSRequest())
}

func TestUpgradeGoAhead(t *testing.T) {
	pki := scripttest.NewPKI(t)
	for _, name := range []string{OIDStartTLS, ""} {
		t.Run("responseName "+name, func(t *testing.T) {
			conn, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error {
				if err := p.Expect(StartTLSRequest()); err != nil {
					return err
				}
				if err := p.Send(response(1, 0, "", name)); err != nil {
					return err
				}
				if err := p.TLS(); err != nil {
					return err
				}
				if err := p.Expect([]byte("bind")); err != nil {
					return err
				}
				return p.Send(forgedBind)
			}, &bytepeer.Options{TLSConfig: pki.Server()})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var transcript scripttest.SyncBuffer
			tc, res, err := Upgrade(ctx, conn, &Options{TLSConfig: pki.Client(scripttest.TestName),
				Conn: &starttls.Options{Transcript: &transcript}})
			require.NoError(t, err)
			defer tc.Close()
			assert.Equal(t, "C: ExtendedRequest 1.3.6.1.4.1.1466.20037\nS: ExtendedResponse resultCode 0\n-- TLS --\n",
				transcript.String(), "a note per BER message")
			assert.True(t, res.TLS)
			assert.Equal(t, "ldap", res.Protocol)
			assert.Equal(t, starttls.StartTLS, res.Mode)
			assert.Zero(t, res.Before.Len())
			assert.Zero(t, res.After.Len())
			_, err = res.Conn.Write([]byte("bind"))
			require.NoError(t, err)
			msg, err := readElement(res.Conn, 1024)
			require.NoError(t, err)
			assert.Equal(t, byte(tagSequence), msg.tag)
			require.NoError(t, peer.Wait())
		})
	}
}

func TestUpgradeImplicit(t *testing.T) {
	pki := scripttest.NewPKI(t)
	conn, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error {
		if err := p.TLS(); err != nil {
			return err
		}
		return p.Expect([]byte("bind"))
	}, &bytepeer.Options{TLSConfig: pki.Server()})
	tc, res, err := Upgrade(context.Background(), conn, &Options{TLSConfig: pki.Client(scripttest.TestName), Mode: starttls.Implicit})
	require.NoError(t, err)
	defer tc.Close()
	assert.Equal(t, starttls.Implicit, res.Mode)
	assert.Nil(t, res.Before)
	_, err = res.Conn.Write([]byte("bind"))
	require.NoError(t, err)
	require.NoError(t, peer.Wait())
	assert.Equal(t, PortLDAPS, (&Upgrader{}).ImplicitPort())
}

func TestUpgradeNotOffered(t *testing.T) {
	pki := scripttest.NewPKI(t)
	notSupported := response(1, resultProtocolError, "unsupported extended operation", "")
	t.Run("required", func(t *testing.T) {
		conn, peer := bytepeer.TCP(t, answer(notSupported), nil)
		_, res, err := Upgrade(context.Background(), conn, &Options{TLSConfig: pki.Client(scripttest.TestName)})
		require.ErrorIs(t, err, starttls.ErrNotOffered)
		var reply *starttls.ReplyError
		require.ErrorAs(t, err, &reply)
		assert.Equal(t, 2, reply.Code)
		assert.Equal(t, "unsupported extended operation", reply.Text)
		assert.False(t, res.Plaintext)
		require.NoError(t, peer.Wait())
	})
	t.Run("opportunistic", func(t *testing.T) {
		conn, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error {
			if err := p.Expect(StartTLSRequest()); err != nil {
				return err
			}
			if err := p.Send(notSupported); err != nil {
				return err
			}
			return p.Expect([]byte("search"))
		}, nil)
		tc, res, err := Upgrade(context.Background(), conn,
			&Options{TLSConfig: pki.Client(scripttest.TestName), Policy: starttls.Opportunistic})
		require.NoError(t, err)
		assert.Nil(t, tc)
		assert.True(t, res.Plaintext)
		_, err = res.Conn.Write([]byte("search"))
		require.NoError(t, err)
		require.NoError(t, peer.Wait())
		res.Conn.Close()
	})
}

func TestUpgradeFailures(t *testing.T) {
	pki := scripttest.NewPKI(t)
	long := bytes.Repeat([]byte("x"), 2000)
	withControls := func(extra []byte) []byte {
		msg := response(1, 0, "", OIDStartTLS)
		// Rebuild the outer SEQUENCE with controls (and extra) appended.
		inner := msg[2:]
		return appendElement(nil, tagSequence, inner, appendElement(nil, tagControls), extra)
	}
	tests := []struct {
		name   string
		peer   func(*bytepeer.Conn) error
		kind   error
		code   int    // the ReplyError's code, when a reply
		status string // its status
		text   string // its text, when not ""
	}{
		{name: "unavailable", peer: answer(response(1, 52, "TLS already started", "")), kind: starttls.ErrRefused, code: 52, status: "unavailable", text: "TLS already started"},
		{name: "operationsError escaped", peer: answer(response(1, 1, "\x1b[2J\r\nok", "")), kind: starttls.ErrRefused, code: 1, status: "operationsError", text: `\x1b[2J\r\nok`},
		{name: "diagnostic bounded", peer: answer(response(1, 53, string(long), "")), kind: starttls.ErrRefused, code: 53, status: "unwillingToPerform", text: string(long[:maxDiagnostic]) + "..."},
		{name: "notice of disconnection", peer: answer(response(0, 52, "server shutting down", OIDNoticeOfDisconnection)),
			kind: starttls.ErrRefused, code: 52, status: "notice of disconnection", text: "server shutting down"},
		{name: "referral", peer: answer(withOptional(10, appendElement(nil, tagReferral, appendElement(nil, tagOctetString, []byte("ldap://other.example.test/"))),
			appendElement(nil, tagResponseName, []byte(OIDStartTLS)))), kind: starttls.ErrRefused, code: 10, status: "referral"},
		{name: "optional fields out of order", peer: answer(withOptional(0, appendElement(nil, tagResponseName, []byte(OIDStartTLS)),
			appendElement(nil, tagReferral))), kind: starttls.ErrProtocol},
		{name: "unknown field", peer: answer(withOptional(0, appendElement(nil, tagOctetString))), kind: starttls.ErrProtocol},
		{name: "other notification", peer: answer(response(0, 0, "", "1.2.3")), kind: starttls.ErrProtocol},
		{name: "wrong message ID", peer: answer(response(2, 0, "", OIDStartTLS)), kind: starttls.ErrProtocol},
		{name: "success for another OID", peer: answer(response(1, 0, "", "1.3.6.1.4.1.4203.1.11.3")), kind: starttls.ErrProtocol},
		{name: "another operation", peer: answer(forgedBind), kind: starttls.ErrProtocol},
		{name: "controls then junk", peer: answer(withControls([]byte{0x04, 0x00})), kind: starttls.ErrProtocol},
		{name: "4 GiB length", peer: answer([]byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff}), kind: starttls.ErrTooLarge},
		{name: "4 GiB length in 5 octets", peer: answer([]byte{0x30, 0x85, 0x01, 0x00, 0x00, 0x00, 0x00}), kind: starttls.ErrTooLarge},
		{name: "length of 127 octets", peer: answer(append([]byte{0x30, 0xfe}, bytes.Repeat([]byte{0xff}, 126)...)), kind: starttls.ErrTooLarge},
		{name: "over the bound", peer: answer([]byte{0x30, 0x82, 0x40, 0x01}), kind: starttls.ErrTooLarge},
		{name: "inner length overruns", peer: answer([]byte{0x30, 0x03, 0x02, 0x05, 0x01}), kind: starttls.ErrProtocol},
		{name: "indefinite length", peer: answer([]byte{0x30, 0x80, 0, 0}), kind: starttls.ErrProtocol},
		{name: "garbage", peer: answer([]byte("\x04\x03abc")), kind: starttls.ErrProtocol},
		{name: "injected in the same write", peer: answer(append(response(1, 0, "", OIDStartTLS), forgedBind...)), kind: starttls.ErrInjectedData},
		{name: "hang-up before the answer", peer: func(p *bytepeer.Conn) error { return p.Expect(StartTLSRequest()) }, kind: io.ErrUnexpectedEOF},
		{name: "hang-up inside the answer", peer: func(p *bytepeer.Conn) error {
			if err := p.Expect(StartTLSRequest()); err != nil {
				return err
			}
			return p.Send(response(1, 0, "", OIDStartTLS)[:10])
		}, kind: io.ErrUnexpectedEOF},
		{name: "hang-up inside the length", peer: func(p *bytepeer.Conn) error {
			if err := p.Expect(StartTLSRequest()); err != nil {
				return err
			}
			return p.Send([]byte{0x30, 0x82, 0x00})
		}, kind: io.ErrUnexpectedEOF},
		{name: "hang-up after success", peer: func(p *bytepeer.Conn) error {
			if err := p.Expect(StartTLSRequest()); err != nil {
				return err
			}
			return p.Send(response(1, 0, "", OIDStartTLS))
		}, kind: starttls.ErrHandshake},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, peer := bytepeer.TCP(t, tt.peer, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tc, res, err := Upgrade(ctx, conn, &Options{TLSConfig: pki.Client(scripttest.TestName)})
			require.ErrorIs(t, err, tt.kind)
			assert.Nil(t, tc)
			assert.False(t, res.TLS)
			if tt.code != 0 || tt.text != "" {
				var reply *starttls.ReplyError
				require.ErrorAs(t, err, &reply)
				assert.Equal(t, tt.code, reply.Code)
				assert.Equal(t, tt.status, reply.Status)
				assert.Equal(t, tt.text, reply.Text)
			}
			assert.Equal(t, -1, starttls.IndexControl(err.Error()), "raw control in %q", err)
			require.NoError(t, peer.Wait())
		})
	}
}

func TestUpgradeInjectedLater(t *testing.T) {
	pki := scripttest.NewPKI(t)
	conn, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error {
		if err := p.Expect(StartTLSRequest()); err != nil {
			return err
		}
		if err := p.Send(response(1, 0, "", OIDStartTLS)); err != nil {
			return err
		}
		p.Sleep(50 * time.Millisecond)
		p.Send(forgedBind)
		return p.Hold()
	}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, res, err := Upgrade(ctx, conn, &Options{TLSConfig: pki.Client(scripttest.TestName)})
	require.ErrorIs(t, err, starttls.ErrHandshake)
	assert.False(t, res.TLS)
	require.NoError(t, peer.Wait())
}

func TestUpgradeSilence(t *testing.T) {
	pki := scripttest.NewPKI(t)
	after := func(b []byte) func(*bytepeer.Conn) error {
		return func(p *bytepeer.Conn) error {
			if err := p.Expect(StartTLSRequest()); err != nil {
				return err
			}
			if err := p.Send(b); err != nil {
				return err
			}
			return p.Hold()
		}
	}
	tests := []struct {
		name string
		peer func(*bytepeer.Conn) error
		step starttls.Step
	}{
		{"no answer", func(p *bytepeer.Conn) error { return p.Hold() }, starttls.StepStartTLS},
		{"inside the length", after([]byte{0x30, 0x84, 0}), starttls.StepStartTLS},
		{"inside the message", after(response(1, 0, "", "")[:5]), starttls.StepStartTLS},
		{"no handshake", after(response(1, 0, "", "")), starttls.StepHandshake},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, peer := bytepeer.TCP(t, tt.peer, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			_, _, err := Upgrade(ctx, conn, &Options{TLSConfig: pki.Client(scripttest.TestName)})
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
		if err := p.Expect(StartTLSRequest()); err != nil {
			return err
		}
		if err := p.Send(response(1, 0, "", OIDStartTLS)); err != nil {
			return err
		}
		p.TLS()
		return nil
	}, &bytepeer.Options{TLSConfig: pki.Server()})
	_, _, err := Upgrade(context.Background(), conn, &Options{TLSConfig: other.Client(scripttest.TestName)})
	var cerr *tls.CertificateVerificationError
	require.ErrorAs(t, err, &cerr)
	require.NoError(t, peer.Wait())
}

// A 4 GiB length is refused before anything of that size is allocated.
func TestHugeLengthAllocatesNothing(t *testing.T) {
	for _, in := range [][]byte{
		{0x30, 0x84, 0xff, 0xff, 0xff, 0xff},
		{0x30, 0x88, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := readElement(bytes.NewReader(in), DefaultMaxMessageLength)
		runtime.ReadMemStats(&after)
		require.ErrorIs(t, err, starttls.ErrTooLarge)
		assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<10), "allocated for %x", in)
	}
}

func TestReadElementReadsNothingBehind(t *testing.T) {
	in := append(response(1, 0, "", OIDStartTLS), forgedBind...)
	r := bytes.NewReader(in)
	_, err := readElement(r, DefaultMaxMessageLength)
	require.NoError(t, err)
	assert.Equal(t, len(forgedBind), r.Len())
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		in   []byte
		want int
		ok   bool
	}{
		{[]byte{0}, 0, true},
		{[]byte{0x7f}, 127, true},
		{[]byte{0, 0x80}, 128, true},
		{[]byte{0x7f, 0xff, 0xff, 0xff}, 1<<31 - 1, true},
		{[]byte{0, 0x80, 0, 0, 0}, 0, false},
		{[]byte{0x80}, 0, false},
		{nil, 0, false},
		{[]byte{1, 0, 0, 0, 0}, 0, false},
	}
	for _, tt := range tests {
		got, err := parseInt(tt.in, "x")
		if !tt.ok {
			require.ErrorIs(t, err, starttls.ErrProtocol, "%x", tt.in)
			continue
		}
		require.NoError(t, err, "%x", tt.in)
		assert.Equal(t, tt.want, got)
		assert.Equal(t, append([]byte{tagInteger, byte(len(tt.in))}, tt.in...), appendInt(nil, tagInteger, tt.want))
	}
}
