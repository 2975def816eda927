package xmpp_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/examples/xmpp"
	"github.com/tlsup/tlsup/internal/bytepeer"
	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
)

const (
	domain      = scripttest.TestName
	serverHead  = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='" + domain + "' version='1.0' xml:lang='en'>"
	featuresTLS = "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" +
		"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>"
	featuresAfter = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\n  <mechanism>PLAIN</mechanism>\n  <mechanism>SCRAM-SHA-1</mechanism>\n</mechanisms></stream:features>"
	featuresNone  = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"
	startTLS      = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
	proceed       = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
	clientHeadEnd = "xmlns:stream='http://etherx.jabber.org/streams'>"
)

// expectOpen reads the client's stream header and checks its 'to'.
func expectOpen(p *bytepeer.Conn) error {
	head, err := p.ExpectUntil(clientHeadEnd)
	if err != nil {
		return err
	}
	if !strings.Contains(string(head), "to='"+domain+"'") || !strings.HasPrefix(string(head), "<?xml version='1.0'?><stream:stream ") {
		return fmt.Errorf("client header %q", head)
	}
	return nil
}

// serve is a peer that opens the stream with head and features, reads
// <starttls/> and sends answer (all in the given pieces), then waits for
// the client to close.
func serve(pieces ...string) func(*bytepeer.Conn) error {
	return func(p *bytepeer.Conn) error {
		if err := expectOpen(p); err != nil {
			return err
		}
		for _, piece := range pieces {
			if piece == startTLS {
				if err := p.Expect([]byte(startTLS)); err != nil {
					return err
				}
				continue
			}
			if err := p.SendString(piece); err != nil {
				return err
			}
		}
		return p.ExpectEOF()
	}
}

func options(pki *scripttest.PKI) *xmpp.Options {
	return &xmpp.Options{Domain: domain, TLSConfig: pki.Client(domain)}
}

func TestUpgradeGoAhead(t *testing.T) {
	pki := scripttest.NewPKI(t)
	conn, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error {
		if err := expectOpen(p); err != nil {
			return err
		}
		if err := p.SendString(serverHead + featuresTLS); err != nil {
			return err
		}
		if err := p.Expect([]byte(startTLS)); err != nil {
			return err
		}
		if err := p.SendString(proceed); err != nil {
			return err
		}
		if err := p.TLS(); err != nil {
			return err
		}
		// RFC 6120, Section 5.4.3.3: the client restarts the stream.
		if err := expectOpen(p); err != nil {
			return err
		}
		if err := p.SendString(serverHead + featuresAfter); err != nil {
			return err
		}
		return p.Expect([]byte("<auth"))
	}, &bytepeer.Options{TLSConfig: pki.Server()})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := options(pki)
	var transcript scripttest.SyncBuffer
	opts.Conn = &starttls.Options{Transcript: &transcript}
	tc, res, err := xmpp.Upgrade(ctx, conn, opts)
	require.NoError(t, err)
	defer tc.Close()
	open := "C: <?xml version='1.0'?><stream:stream to='" + domain + "' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>\n" +
		"S: <stream:stream from='" + domain + "'>\n"
	assert.Equal(t, open+"S: <stream:features> starttls, mechanisms SCRAM-SHA-1\n"+
		"C: <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\n"+
		"S: <proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'>\n"+
		"-- TLS --\n"+open+"S: <stream:features> mechanisms PLAIN SCRAM-SHA-1\n", transcript.String(), "a note per element")
	assert.True(t, res.TLS)
	assert.Equal(t, "xmpp", res.Protocol)
	assert.Equal(t, domain, res.Greeting)
	assert.Equal(t, []string{"starttls", "mechanisms SCRAM-SHA-1"}, res.Before.List())
	assert.Equal(t, []string{"mechanisms PLAIN SCRAM-SHA-1"}, res.After.List())
	_, err = res.Conn.Write([]byte("<auth"))
	require.NoError(t, err)
	require.NoError(t, peer.Wait())
}

// The features and the answer arrive in pieces, cut inside tags and
// attribute values; required is reported.
func TestUpgradeSplitAcrossReads(t *testing.T) {
	pki := scripttest.NewPKI(t)
	all := serverHead + "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"
	conn, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error {
		if err := expectOpen(p); err != nil {
			return err
		}
		for i := 0; i < len(all); i += 7 {
			if err := p.SendString(all[i:min(i+7, len(all))]); err != nil {
				return err
			}
			p.Sleep(time.Millisecond)
		}
		if err := p.Expect([]byte(startTLS)); err != nil {
			return err
		}
		for _, piece := range []string{"<proc", "eed xmlns='urn:ietf:params:", "xml:ns:xmpp-tls'>", "</proceed>"} {
			if err := p.SendString(piece); err != nil {
				return err
			}
			p.Sleep(2 * time.Millisecond)
		}
		if err := p.TLS(); err != nil {
			return err
		}
		if err := expectOpen(p); err != nil {
			return err
		}
		return p.SendString(serverHead + featuresAfter)
	}, &bytepeer.Options{TLSConfig: pki.Server()})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc, res, err := xmpp.Upgrade(ctx, conn, options(pki))
	require.NoError(t, err)
	tc.Close()
	assert.Equal(t, []string{"starttls required"}, res.Before.List())
	require.NoError(t, peer.Wait())
}

func TestUpgradeImplicit(t *testing.T) {
	pki := scripttest.NewPKI(t)
	conn, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error {
		if err := p.TLS(); err != nil {
			return err
		}
		if err := expectOpen(p); err != nil {
			return err
		}
		if err := p.SendString(serverHead + featuresAfter); err != nil {
			return err
		}
		return p.ExpectEOF()
	}, &bytepeer.Options{TLSConfig: pki.Server()})
	opts := options(pki)
	opts.Mode = starttls.Implicit
	tc, res, err := xmpp.Upgrade(context.Background(), conn, opts)
	require.NoError(t, err)
	assert.Nil(t, res.Before)
	assert.Equal(t, []string{"mechanisms PLAIN SCRAM-SHA-1"}, res.After.List())
	tc.Close()
	require.NoError(t, peer.Wait())
	assert.Equal(t, xmpp.PortDirectTLS, (&xmpp.Upgrader{}).ImplicitPort())
}

func TestUpgradeNotOffered(t *testing.T) {
	pki := scripttest.NewPKI(t)
	t.Run("required", func(t *testing.T) {
		conn, peer := bytepeer.TCP(t, serve(serverHead+featuresNone), nil)
		_, res, err := xmpp.Upgrade(context.Background(), conn, options(pki))
		require.ErrorIs(t, err, starttls.ErrNotOffered)
		assert.Equal(t, []string{"mechanisms PLAIN"}, res.Before.List())
		require.NoError(t, peer.Wait(), "starttls not sent, conn closed")
	})
	t.Run("opportunistic", func(t *testing.T) {
		conn, peer := bytepeer.TCP(t, serve(serverHead+featuresNone), nil)
		opts := options(pki)
		opts.Policy = starttls.Opportunistic
		tc, res, err := xmpp.Upgrade(context.Background(), conn, opts)
		require.NoError(t, err)
		assert.Nil(t, tc)
		assert.True(t, res.Plaintext)
		res.Conn.Close()
		require.NoError(t, peer.Wait())
	})
	t.Run("always", func(t *testing.T) {
		conn, peer := bytepeer.TCP(t, serve(serverHead+featuresNone, startTLS,
			"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>"), nil)
		opts := options(pki)
		opts.Policy = starttls.Always
		_, _, err := xmpp.Upgrade(context.Background(), conn, opts)
		require.ErrorIs(t, err, starttls.ErrRefused)
		require.NoError(t, peer.Wait())
	})
	t.Run("starttls in another namespace", func(t *testing.T) {
		conn, peer := bytepeer.TCP(t, serve(serverHead+"<stream:features><starttls xmlns='urn:example:not-tls'/></stream:features>"), nil)
		_, res, err := xmpp.Upgrade(context.Background(), conn, options(pki))
		require.ErrorIs(t, err, starttls.ErrNotOffered)
		assert.Equal(t, []string{"{urn:example:not-tls}starttls"}, res.Before.List())
		require.NoError(t, peer.Wait())
	})
}

func TestUpgradeFailures(t *testing.T) {
	pki := scripttest.NewPKI(t)
	deep := "<stream:features>" + strings.Repeat("<x>", 40) + strings.Repeat("</x>", 40) + "</stream:features>"
	big := "<stream:features><x>" + strings.Repeat("a", 70<<10) + "</x></stream:features>"
	laughs := "<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;'>]>" + serverHead[len("<?xml version='1.0'?>"):]
	tests := []struct {
		name   string
		peer   func(*bytepeer.Conn) error
		kind   error
		step   starttls.Step
		status string // the ReplyError's status, when one
		text   string // its text
	}{
		{name: "failure", peer: serve(serverHead+featuresTLS, startTLS, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>"),
			kind: starttls.ErrRefused, step: starttls.StepStartTLS, status: "failure"},
		{name: "stream error after starttls", peer: serve(serverHead+featuresTLS, startTLS,
			"<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>no &amp; \u202enever</text></stream:error>"),
			kind: starttls.ErrRefused, step: starttls.StepStartTLS, status: "stream error", text: `policy-violation: no & \u202enever`},
		{name: "stream error for features", peer: serve(serverHead + "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"),
			kind: starttls.ErrGreetingRejected, step: starttls.StepDiscover, status: "stream error", text: "host-unknown"},
		{name: "proceed in the wrong namespace", peer: serve(serverHead+featuresTLS, startTLS, "<proceed xmlns='jabber:client'/>"),
			kind: starttls.ErrProtocol, step: starttls.StepStartTLS},
		{name: "proceed with an undeclared prefix", peer: serve(serverHead+featuresTLS, startTLS, "<tls:proceed/>"),
			kind: starttls.ErrProtocol, step: starttls.StepStartTLS},
		{name: "proceed with content", peer: serve(serverHead+featuresTLS, startTLS, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'><x/></proceed>"),
			kind: starttls.ErrProtocol, step: starttls.StepStartTLS},
		{name: "injected in the same write", peer: serve(serverHead+featuresTLS, startTLS, proceed+serverHead+featuresNone),
			kind: starttls.ErrInjectedData, step: starttls.StepStartTLS},
		{name: "injected white space", peer: serve(serverHead+featuresTLS, startTLS, proceed+" "),
			kind: starttls.ErrInjectedData, step: starttls.StepStartTLS},
		{name: "entity declarations", peer: serve(laughs + featuresTLS), kind: starttls.ErrProtocol, step: starttls.StepGreeting},
		{name: "undefined entity", peer: serve(serverHead + "<stream:features><x>&b;</x></stream:features>"), kind: starttls.ErrProtocol, step: starttls.StepDiscover},
		{name: "comment", peer: serve(serverHead + "<!-- hi --><stream:features/>"), kind: starttls.ErrProtocol, step: starttls.StepDiscover},
		{name: "processing instruction", peer: serve(serverHead + "<?evil x?><stream:features/>"), kind: starttls.ErrProtocol, step: starttls.StepDiscover},
		{name: "deep nesting", peer: serve(serverHead + deep), kind: starttls.ErrTooLarge, step: starttls.StepDiscover},
		{name: "oversized features", peer: serve(serverHead + big), kind: starttls.ErrTooLarge, step: starttls.StepDiscover},
		{name: "garbage", peer: serve("HTTP/1.1 400 Bad Request\r\n\r\n"), kind: starttls.ErrProtocol, step: starttls.StepGreeting},
		{name: "binary", peer: serve("\x16\x03\x01\x00\x05hello"), kind: starttls.ErrProtocol, step: starttls.StepGreeting},
		{name: "not a stream header", peer: serve("<?xml version='1.0'?><html>"), kind: starttls.ErrProtocol, step: starttls.StepGreeting},
		{name: "stream in the wrong namespace", peer: serve("<stream:stream xmlns:stream='urn:x' version='1.0'>"), kind: starttls.ErrProtocol, step: starttls.StepGreeting},
		{name: "version 0.9", peer: serve(strings.Replace(serverHead, " version='1.0' xml:lang", " xml:lang", 1)), kind: starttls.ErrProtocol, step: starttls.StepGreeting},
		{name: "text between elements", peer: serve(serverHead + "hello<stream:features/>"), kind: starttls.ErrProtocol, step: starttls.StepDiscover},
		{name: "end of stream for features", peer: serve(serverHead + "</stream:stream>"), kind: io.ErrUnexpectedEOF, step: starttls.StepDiscover},
		{name: "mismatched end tag", peer: serve(serverHead + "<stream:features></x>"), kind: starttls.ErrProtocol, step: starttls.StepDiscover},
		{name: "hang-up before the header", peer: expectOpen, kind: io.ErrUnexpectedEOF, step: starttls.StepGreeting},
		{name: "hang-up inside the header", peer: func(p *bytepeer.Conn) error {
			if err := expectOpen(p); err != nil {
				return err
			}
			return p.SendString(serverHead[:50])
		}, kind: io.ErrUnexpectedEOF, step: starttls.StepGreeting},
		{name: "hang-up inside the features", peer: func(p *bytepeer.Conn) error {
			if err := expectOpen(p); err != nil {
				return err
			}
			return p.SendString(serverHead + featuresTLS[:40])
		}, kind: io.ErrUnexpectedEOF, step: starttls.StepDiscover},
		{name: "hang-up after starttls", peer: func(p *bytepeer.Conn) error {
			if err := expectOpen(p); err != nil {
				return err
			}
			if err := p.SendString(serverHead + featuresTLS); err != nil {
				return err
			}
			return p.Expect([]byte(startTLS))
		}, kind: io.ErrUnexpectedEOF, step: starttls.StepStartTLS},
		{name: "hang-up after proceed", peer: func(p *bytepeer.Conn) error {
			if err := expectOpen(p); err != nil {
				return err
			}
			if err := p.SendString(serverHead + featuresTLS); err != nil {
				return err
			}
			if err := p.Expect([]byte(startTLS)); err != nil {
				return err
			}
			return p.SendString(proceed)
		}, kind: starttls.ErrHandshake, step: starttls.StepHandshake},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, peer := bytepeer.TCP(t, tt.peer, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tc, res, err := xmpp.Upgrade(ctx, conn, options(pki))
			require.ErrorIs(t, err, tt.kind)
			assert.Nil(t, tc)
			assert.False(t, res.TLS)
			var serr *starttls.Error
			require.ErrorAs(t, err, &serr)
			assert.Equal(t, tt.step, serr.Step, "%v", err)
			if tt.status != "" {
				var reply *starttls.ReplyError
				require.ErrorAs(t, err, &reply)
				assert.Equal(t, tt.status, reply.Status)
				assert.Equal(t, tt.text, reply.Text)
			}
			assert.Equal(t, -1, starttls.IndexControl(err.Error()), "raw control in %q", err)
			require.NoError(t, peer.Wait())
		})
	}
}

// A forged stream sent a moment after <proceed/> fails the handshake.
func TestUpgradeInjectedLater(t *testing.T) {
	pki := scripttest.NewPKI(t)
	conn, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error {
		if err := expectOpen(p); err != nil {
			return err
		}
		if err := p.SendString(serverHead + featuresTLS); err != nil {
			return err
		}
		if err := p.Expect([]byte(startTLS)); err != nil {
			return err
		}
		if err := p.SendString(proceed); err != nil {
			return err
		}
		p.Sleep(50 * time.Millisecond)
		p.SendString(serverHead + featuresNone)
		return p.Hold()
	}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, res, err := xmpp.Upgrade(ctx, conn, options(pki))
	require.ErrorIs(t, err, starttls.ErrHandshake)
	assert.False(t, res.TLS)
	require.NoError(t, peer.Wait())
}

// A silent server at each step, before and inside TLS.
func TestUpgradeSilence(t *testing.T) {
	pki := scripttest.NewPKI(t)
	until := func(stage int) func(*bytepeer.Conn) error {
		return func(p *bytepeer.Conn) error {
			steps := []func() error{
				func() error { return expectOpen(p) },
				func() error { return p.SendString(serverHead) },
				func() error { return p.SendString(featuresTLS) },
				func() error { return p.Expect([]byte(startTLS)) },
				func() error { return p.SendString(proceed) },
				p.TLS,
				func() error { return expectOpen(p) },
				func() error { return p.SendString(serverHead) },
			}
			for _, step := range steps[:stage] {
				if err := step(); err != nil {
					return err
				}
			}
			return p.Hold()
		}
	}
	tests := []struct {
		name  string
		stage int
		step  starttls.Step
		tls   bool
	}{
		{"no header", 1, starttls.StepGreeting, false},
		{"no features", 2, starttls.StepDiscover, false},
		{"no answer", 4, starttls.StepStartTLS, false},
		{"no handshake", 5, starttls.StepHandshake, false},
		{"no header inside TLS", 7, starttls.StepRediscover, true},
		{"no features inside TLS", 8, starttls.StepRediscover, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, peer := bytepeer.TCP(t, until(tt.stage), &bytepeer.Options{TLSConfig: pki.Server()})
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, res, err := xmpp.Upgrade(ctx, conn, options(pki))
			require.ErrorIs(t, err, context.DeadlineExceeded)
			var serr *starttls.Error
			require.ErrorAs(t, err, &serr)
			assert.Equal(t, tt.step, serr.Step)
			assert.Equal(t, tt.tls, res.TLS)
			require.NoError(t, peer.Wait())
		})
	}
}

func TestUpgradeWrongCA(t *testing.T) {
	pki, other := scripttest.NewPKI(t), scripttest.NewPKI(t)
	conn, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error {
		if err := expectOpen(p); err != nil {
			return err
		}
		if err := p.SendString(serverHead + featuresTLS); err != nil {
			return err
		}
		if err := p.Expect([]byte(startTLS)); err != nil {
			return err
		}
		if err := p.SendString(proceed); err != nil {
			return err
		}
		p.TLS()
		return nil
	}, &bytepeer.Options{TLSConfig: pki.Server()})
	_, _, err := xmpp.Upgrade(context.Background(), conn, options(other))
	var cerr *tls.CertificateVerificationError
	require.ErrorAs(t, err, &cerr)
	require.NoError(t, peer.Wait())
}

func TestDomain(t *testing.T) {
	pki := scripttest.NewPKI(t)
	t.Run("from the ServerName", func(t *testing.T) {
		conn, peer := bytepeer.TCP(t, serve(serverHead+featuresNone), nil)
		_, _, err := xmpp.Upgrade(context.Background(), conn, &xmpp.Options{TLSConfig: pki.Client(domain)})
		require.ErrorIs(t, err, starttls.ErrNotOffered)
		require.NoError(t, peer.Wait())
	})
	t.Run("unsafe", func(t *testing.T) {
		conn, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error { return p.ExpectEOF() }, nil)
		_, _, err := xmpp.Upgrade(context.Background(), conn, &xmpp.Options{Domain: "a'><x", TLSConfig: pki.Client(domain)})
		require.ErrorIs(t, err, starttls.ErrUnsafeArgument)
		require.NoError(t, peer.Wait())
	})
	t.Run("none", func(t *testing.T) {
		conn, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error { return p.ExpectEOF() }, nil)
		_, _, err := xmpp.Upgrade(context.Background(), conn, &xmpp.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
		require.ErrorIs(t, err, starttls.ErrConfig)
		require.NoError(t, peer.Wait())
	})
}

func TestDial(t *testing.T) {
	addr, peer := bytepeer.Listen(t, func(p *bytepeer.Conn) error {
		head, err := p.ExpectUntil(clientHeadEnd)
		if err != nil {
			return err
		}
		if !strings.Contains(string(head), "to='127.0.0.1'") {
			return fmt.Errorf("header %q", head)
		}
		return p.SendString(serverHead + featuresNone)
	}, nil)
	_, res, err := xmpp.Dial(context.Background(), "tcp", addr, &xmpp.Options{Policy: starttls.Opportunistic})
	require.NoError(t, err)
	assert.True(t, res.Plaintext)
	res.Conn.Close()
	require.NoError(t, peer.Wait())
}

// Cancelling the context ends a wait for the features at once.
func TestUpgradeCancel(t *testing.T) {
	pki := scripttest.NewPKI(t)
	conn, peer := bytepeer.TCP(t, func(p *bytepeer.Conn) error {
		if err := expectOpen(p); err != nil {
			return err
		}
		if err := p.SendString(serverHead + "<stream:features>"); err != nil {
			return err
		}
		return p.Hold()
	}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, _, err := xmpp.Upgrade(ctx, conn, options(pki))
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, peer.Wait())
}
