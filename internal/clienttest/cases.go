package clienttest

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// Success is the positive control: a well-behaved server, over net.Pipe
// and TCP, gives a verified session, the capabilities of both sides of
// TLS, and Mode StartTLS.
func Success(t *testing.T, p Protocol) {
	for _, tr := range []transport{pipe, tcp} {
		t.Run(tr.String(), func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			o := p.upgrade(t, pki, p.full(), setup{transport: tr})
			p.requireSucceeded(t, o)
			require.NoError(t, o.peer.Wait())
			assert.Equal(t, starttls.StartTLS, o.res.Mode)
			assert.Equal(t, starttls.Required, o.res.Policy)
			assert.NotEqual(t, 0, o.res.Before.Len(), "the capabilities before TLS are reported")
			assert.Contains(t, o.transcript.String(), "-- TLS --")
		})
	}
}

// Trickle: a server that sends one byte per write, before and inside TLS,
// is read to the end.
func Trickle(t *testing.T, p Protocol) {
	pki := scripttest.NewPKI(t)
	o := p.upgrade(t, pki, "!trickle\n"+p.full(), setup{})
	p.requireSucceeded(t, o)
	require.NoError(t, o.peer.Wait())
}

// HangUp: a server that hangs up at any step, by closing or by a reset,
// fails the upgrade with io.ErrUnexpectedEOF at that step (a hang-up in
// the handshake is also ErrHandshake).
func HangUp(t *testing.T, p Protocol) {
	for _, tr := range []transport{tcp, reset} {
		for _, st := range p.steps() {
			t.Run(tr.String()+"/"+st.name, func(t *testing.T) {
				pki := scripttest.NewPKI(t)
				script, server := st.script+"\n!close", (*tls.Config)(nil)
				want := []error{io.ErrUnexpectedEOF}
				if st.step == starttls.StepHandshake {
					script, server = st.script+"\n!tls", hangUpInHandshake(pki)
					want = append(want, starttls.ErrHandshake)
				}
				o := p.upgrade(t, pki, script, setup{transport: tr, server: server})
				p.requireFailed(t, o, st.step, want...)
				assert.Equal(t, st.tls, o.res.TLS)
				if server != nil {
					require.Error(t, o.peer.Wait(), "the peer hung up in its own handshake")
				} else {
					require.NoError(t, o.peer.Wait())
				}
			})
		}
	}
	t.Run("partial-greeting", func(t *testing.T) {
		pki := scripttest.NewPKI(t)
		text := p.greetingText()
		o := p.upgrade(t, pki, raw(text[:len(text)/2])+"\n!close", setup{transport: tcp})
		p.requireFailed(t, o, starttls.StepGreeting, io.ErrUnexpectedEOF)
		require.NoError(t, o.peer.Wait())
	})
}

// Silence: a server that stops talking at any step is cut off by the
// context's deadline at that step, and the conn is closed.
func Silence(t *testing.T, p Protocol) {
	for _, st := range p.steps() {
		t.Run(st.name, func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			// In the handshake step the peer reads the ClientHello and
			// ignores it.
			o := p.upgrade(t, pki, st.script+"\n!hold", setup{timeout: 300 * time.Millisecond})
			p.requireFailed(t, o, st.step, context.DeadlineExceeded)
			assert.Equal(t, st.tls, o.res.TLS)
			require.NoError(t, o.peer.Wait(), "the client must close the conn")
		})
	}
}

// Cancel: cancelling the context while the client waits at any step ends
// the upgrade at that step with context.Canceled, and closes the conn.
func Cancel(t *testing.T, p Protocol) {
	for _, st := range p.steps() {
		t.Run(st.name, func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := setup{ctx: ctx}
			trigger := &cancelAfter{n: st.clientLines, cancel: cancel}
			if st.step == starttls.StepHandshake {
				trigger.n = 0 // at the mark that precedes the ClientHello
			}
			switch {
			case st.step == starttls.StepGreeting:
				s.wrap = func(c net.Conn) net.Conn { return &cancelOnRead{Conn: c, cancel: cancel} }
			case st.afterHandshake:
				// No client line to wait on: cancel once the handshake
				// is done, as the wait for the unasked list begins.
				trigger.n = -1
				s.ctx = starttls.WithClientTrace(ctx, &starttls.ClientTrace{
					HandshakeDone: func(_ tls.ConnectionState, err error) {
						if err == nil {
							trigger.fire()
						}
					},
				})
			default:
				s.transcript = trigger
			}
			// Bounded anyway: a cancel that never lands must not hang the
			// test.
			stop := time.AfterFunc(10*time.Second, cancel)
			defer stop.Stop()
			o := p.upgrade(t, pki, st.script+"\n!hold", s)
			p.requireFailed(t, o, st.step, context.Canceled)
			assert.NotErrorIs(t, o.err, context.DeadlineExceeded)
			if st.step != starttls.StepGreeting {
				assert.True(t, trigger.didFire(), "the cancel came from the trigger (transcript or handshake hook)")
			}
			require.NoError(t, o.peer.Wait(), "the client must close the conn")
		})
	}
}

// PreCancelled: a context already done when Upgrade is called fails it
// before a byte is written, in either mode, and closes the conn.
func PreCancelled(t *testing.T, p Protocol) {
	for _, tc := range []struct {
		mode starttls.Mode
		step starttls.Step
	}{
		{starttls.StartTLS, starttls.StepGreeting},
		{starttls.Implicit, starttls.StepHandshake},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			// The greeting is already there, in one write: nothing may
			// answer it.
			o := p.upgrade(t, pki, oneWrite(p.Greeting)+"!eof", setup{
				transport: tcp, ctx: ctx, cfg: starttls.Config{Mode: tc.mode},
			})
			p.requireFailed(t, o, tc.step, context.Canceled)
			require.NoError(t, o.peer.Wait(), "nothing may be written")
		})
	}
}

// Deadline: a server trickling a greeting that never ends cannot extend
// the context's deadline, however often it sends a byte.
func Deadline(t *testing.T, p Protocol) {
	pki := scripttest.NewPKI(t)
	endless := raw(p.greetingText() + strings.Repeat("x", 400))
	o := p.upgrade(t, pki, "!trickle 5ms\n"+endless, setup{transport: tcp, timeout: 300 * time.Millisecond})
	p.requireFailed(t, o, starttls.StepGreeting, context.DeadlineExceeded)
	o.peer.Wait() // its writes fail once the client has closed
}

// TooLarge: a greeting line over the bound fails with ErrTooLarge, without
// reading the rest.
func TooLarge(t *testing.T, p Protocol) {
	pki := scripttest.NewPKI(t)
	huge := raw(p.greetingText() + strings.Repeat("x", 1<<16))
	o := p.upgrade(t, pki, huge, setup{transport: tcp,
		cfg: starttls.Config{Conn: &starttls.Options{MaxLineLength: 512}}})
	p.requireFailed(t, o, starttls.StepGreeting, starttls.ErrTooLarge)
	o.peer.Wait() // its write may fail: the client stopped reading
}

// Config: a nil TLSConfig, or one that names no server and does not skip
// verification, fails with ErrConfig before a byte is read or written,
// and closes the conn.
func Config(t *testing.T, p Protocol) {
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"nil", nil},
		{"nameless", &tls.Config{MinVersion: tls.VersionTLS12}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := scripttest.NewFakeConn([]byte(p.greetingText() + "\r\n"))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			tlsConn, res, err := p.Upgrade(ctx, conn, &starttls.Config{TLSConfig: tc.cfg})
			require.ErrorIs(t, err, starttls.ErrConfig)
			var e *starttls.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, starttls.StepConfig, e.Step)
			assert.Equal(t, p.Name, e.Protocol)
			assert.Nil(t, tlsConn)
			require.NotNil(t, res)
			assert.Empty(t, conn.Written(), "nothing may be written")
			assert.Empty(t, res.Greeting, "nothing may be read")
			assert.True(t, conn.Closed(), "the conn must be closed")
		})
	}
}

// CertificateFaults: a certificate that does not verify fails the
// handshake with the crypto/tls verification error in the chain, in both
// modes; TLS is not reported and nothing is discovered.
func CertificateFaults(t *testing.T, p Protocol) {
	pki := scripttest.NewPKI(t)
	selfSigned, err := tlsconf.SelfSigned(scripttest.TestName)
	require.NoError(t, err)
	otherCA, err := tlsconf.NewCA("another CA")
	require.NoError(t, err)
	unknownRoot, err := otherCA.Issue(scripttest.TestName)
	require.NoError(t, err)
	expired, err := pki.CA.IssueLeaf(tlsconf.Leaf{
		Names:     []string{scripttest.TestName},
		NotBefore: time.Now().Add(-72 * time.Hour),
		NotAfter:  time.Now().Add(-24 * time.Hour),
	})
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		server *tls.Config
		verify string
	}{
		{"self-signed", scripttest.ServerWith(selfSigned), scripttest.TestName},
		{"unknown-root", scripttest.ServerWith(unknownRoot), scripttest.TestName},
		{"wrong-host", pki.Server(), "other.example.test"},
		{"expired", scripttest.ServerWith(expired), scripttest.TestName},
	} {
		for _, mode := range []starttls.Mode{starttls.StartTLS, starttls.Implicit} {
			t.Run(tc.name+"/"+mode.String(), func(t *testing.T) {
				script := p.toGoAhead() + "\n!tls"
				if mode == starttls.Implicit {
					script = "!tls"
				}
				// Over TCP: on net.Pipe the client's alert would wait for
				// the server to finish writing its flight, which waits for
				// the client to read it.
				o := p.upgrade(t, pki, script, setup{transport: tcp, server: tc.server,
					cfg: starttls.Config{Mode: mode, TLSConfig: pki.Client(tc.verify)}})
				p.requireFailed(t, o, starttls.StepHandshake, starttls.ErrHandshake)
				var verr *tls.CertificateVerificationError
				require.ErrorAs(t, o.err, &verr)
				assert.NotEmpty(t, verr.UnverifiedCertificates)
				assert.False(t, o.res.TLS, "TLS is reported only after a verified handshake")
				assert.Nil(t, o.res.After)
				require.ErrorContains(t, o.peer.Wait(), "handshake")
			})
		}
	}
}

// Modes: Implicit starts TLS with the first byte; Auto picks it on the
// protocol's implicit port and STARTTLS elsewhere; StartTLS keeps to
// STARTTLS even on the implicit port; Implicit against a plaintext server
// is a handshake failure that quotes what the server said.
func Modes(t *testing.T, p Protocol) {
	// In Mode Implicit the client asks even with Unasked: nothing comes
	// unasked without STARTTLS.
	implicit := join("!tls", p.Greeting, p.Ask, p.After)
	onPort := func(port int) func(net.Conn) net.Conn {
		return func(c net.Conn) net.Conn { return portConn{c, port} }
	}
	type modeCase struct {
		name   string
		mode   starttls.Mode
		wrap   func(net.Conn) net.Conn
		script string
		want   starttls.Mode
	}
	cases := []modeCase{
		{"implicit", starttls.Implicit, nil, implicit, starttls.Implicit},
		{"auto-other-port", starttls.Auto, nil, p.full(), starttls.StartTLS},
	}
	if p.ImplicitPort != 0 {
		cases = append(cases,
			modeCase{"auto-implicit-port", starttls.Auto, onPort(p.ImplicitPort), implicit, starttls.Implicit},
			modeCase{"starttls-on-implicit-port", starttls.StartTLS, onPort(p.ImplicitPort), p.full(), starttls.StartTLS})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			o := p.upgrade(t, pki, tc.script, setup{transport: tcp, wrap: tc.wrap, cfg: starttls.Config{Mode: tc.mode}})
			require.NoError(t, o.err)
			require.NoError(t, o.peer.Wait())
			assert.Equal(t, tc.want, o.res.Mode)
			assert.True(t, o.res.TLS)
			assert.Equal(t, p.AfterList, o.res.After.List())
			if tc.want == starttls.Implicit {
				assert.Nil(t, o.res.Before, "no plaintext capabilities in implicit mode")
				assert.NotEmpty(t, o.res.Greeting, "the greeting is read inside TLS")
				// Part of the first line: its text after a code (SMTP,
				// IMAP), or a value in it (ManageSieve's IMPLEMENTATION).
				assert.Contains(t, p.greetingText(), o.res.Greeting, "greeting %q", o.res.Greeting)
			}
		})
	}
	t.Run("implicit-against-plaintext", func(t *testing.T) {
		pki := scripttest.NewPKI(t)
		// In one write: the client stops reading at the first bytes.
		o := p.upgrade(t, pki, oneWrite(p.Greeting)+"!hold", setup{transport: tcp, cfg: starttls.Config{Mode: starttls.Implicit}})
		p.requireFailed(t, o, starttls.StepHandshake, starttls.ErrHandshake)
		assert.NotErrorIs(t, o.err, starttls.ErrInjectedData)
		assert.Contains(t, o.err.Error(), `("`+starttls.Escape(p.greetingText()[:3]), "the plaintext is quoted")
		require.NoError(t, o.peer.Wait())
	})
}

// Dial connects, verifies the name dialled when the config names none, and
// reports a failed connect at StepConnect.
func Dial(t *testing.T, p Protocol) {
	pki := scripttest.NewPKI(t)
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"servername", pki.Client(scripttest.TestName)},
		// No ServerName: the host dialled (127.0.0.1) is verified.
		{"from-address", &tls.Config{RootCAs: pki.CA.Pool(), MinVersion: tls.VersionTLS12}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, peer := scripttest.Listen(t, p.full(), &scripttest.Options{TLSConfig: pki.Server()})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			tlsConn, res, err := p.Dial(ctx, "tcp", addr, &starttls.Config{TLSConfig: tc.cfg})
			require.NoError(t, err)
			defer tlsConn.Close()
			require.NoError(t, peer.Wait())
			assert.True(t, res.TLS)
			assert.Equal(t, starttls.StartTLS, res.Mode)
			assert.Equal(t, p.AfterList, res.After.List())
		})
	}
	t.Run("refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, res, err := p.Dial(ctx, "tcp", addr, &starttls.Config{TLSConfig: pki.Client(scripttest.TestName)})
		var e *starttls.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, starttls.StepConnect, e.Step)
		require.NotNil(t, res)
		assert.False(t, res.TLS)
	})
	t.Run("service-names", func(t *testing.T) {
		// Mode Auto resolves a service name as the dial would. The
		// context is done before the dial, so that no connection is
		// attempted: only the resolution is under test.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for _, tc := range []struct {
			service string
			want    starttls.Mode
		}{
			{p.ImplicitService, starttls.Implicit},
			{p.Service, starttls.StartTLS},
			{"no-such-service", starttls.StartTLS},
		} {
			if tc.service == "" {
				continue
			}
			_, res, err := p.Dial(ctx, "tcp", "127.0.0.1:"+tc.service, &starttls.Config{TLSConfig: pki.Client(scripttest.TestName)})
			var e *starttls.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, starttls.StepConnect, e.Step)
			assert.Equal(t, tc.want, res.Mode, "127.0.0.1:%s", tc.service)
		}
	})
	t.Run("bad-address", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _, err := p.Dial(ctx, "tcp", "no-port", nil)
		var e *starttls.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, starttls.StepConnect, e.Step)
	})
}

// BufferedInjection: bytes in the go-ahead's write, behind it, were
// written by whoever sits on the plaintext path: ErrInjectedData, and no
// ClientHello is sent.
func BufferedInjection(t *testing.T, p Protocol) {
	for _, tc := range []struct{ name, extra string }{
		{"forged-line", "S+ " + p.Forged},
		{"partial-line", "S+ " + strconv.Quote(p.Forged[:len(p.Forged)/2])},
		{"one-byte", `S+ "x"`},
		{"bare-crlf", `S+ "\r\n"`},
		{"tls-record", `S+ "\x16\x03\x01\x00\x05\x00\xff\x00"`},
	} {
		for _, tr := range []transport{pipe, tcp} {
			t.Run(tc.name+"/"+tr.String(), func(t *testing.T) {
				pki := scripttest.NewPKI(t)
				o := p.upgrade(t, pki, join(p.toGoAhead(), tc.extra, "!eof"), setup{transport: tr})
				p.requireFailed(t, o, starttls.StepStartTLS, starttls.ErrInjectedData)
				assert.False(t, o.res.TLS)
				require.NoError(t, o.peer.Wait(), "the peer must see no ClientHello, only the close")
			})
		}
	}
}

// LateInjection: forged bytes a moment after the go-ahead are read by the
// handshake where the server's first TLS record belongs. That is a
// handshake failure quoting them (a server answering the ClientHello in
// plaintext looks the same on the wire), not ErrInjectedData, which is kept
// for bytes that were there when the switch began; never a session.
func LateInjection(t *testing.T, p Protocol) {
	pki := scripttest.NewPKI(t)
	o := p.upgrade(t, pki, join(p.toGoAhead(), "!sleep 100ms", "S: "+p.Forged, "!hold"), setup{transport: tcp})
	p.requireFailed(t, o, starttls.StepHandshake, starttls.ErrHandshake)
	assert.NotErrorIs(t, o.err, starttls.ErrInjectedData)
	assert.Contains(t, o.err.Error(), `("`+starttls.Escape(p.Forged[:3]), "the plaintext is quoted")
	assert.False(t, o.res.TLS)
	require.NoError(t, o.peer.Wait())
}

// SessionAndRedaction: after the upgrade the session continues on
// Result.Conn, untouched by the context that bounded the upgrade, and the
// protocol's credentials written there reach the transcript redacted.
func SessionAndRedaction(t *testing.T, p Protocol) {
	pki := scripttest.NewPKI(t)
	ctx, cancel := context.WithCancel(context.Background())
	parts := []string{p.full()}
	for _, a := range p.Auth {
		parts = append(parts, "C: "+a.Line, "S: "+a.Reply)
	}
	o := p.upgrade(t, pki, join(parts...), setup{ctx: ctx})
	cancel() // must not affect the session any more
	p.requireSucceeded(t, o)
	c := o.res.Conn
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	for _, a := range p.Auth {
		require.NoError(t, c.WriteLine(a.Line))
		line, err := c.ReadLine()
		require.NoError(t, err)
		assert.Equal(t, a.Reply, string(line))
	}
	require.NoError(t, o.peer.Wait())
	transcript := o.transcript.String()
	for _, a := range p.Auth {
		assert.Contains(t, transcript, "C: "+a.Recorded+"\n")
		if a.Secret != "" {
			assert.NotContains(t, transcript, a.Secret)
		}
		assert.Contains(t, transcript, "S: "+a.Reply+"\n", "the server's lines are recorded as they are")
	}
}
