package pop3_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/pop3"
	"github.com/tlsup/tlsup/starttls"
)

type srvServed struct {
	tc  *starttls.Conn
	err error
}

// srvServeOn runs srv.Serve on conn in a goroutine and, when it succeeds,
// the post-TLS loop; the channel yields the front's result (the loop's
// error in its place when the loop fails).
func srvServeOn(ctx context.Context, srv *pop3.Server, conn net.Conn) <-chan srvServed {
	done := make(chan srvServed, 1)
	go func() {
		tc, err := srv.Serve(ctx, conn)
		if err == nil {
			err = srvPostTLS(tc)
			tc.Close()
		}
		done <- srvServed{tc, err}
	}()
	return done
}

func srvWait(t *testing.T, done <-chan srvServed) srvServed {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10s")
		return srvServed{}
	}
}

// srvPostTLS is a minimal caller loop after the front, as a real server
// would have: CAPA with the list after TLS, STLS refused in both states,
// USER/PASS demo demo, STAT, QUIT.
func srvPostTLS(c *starttls.Conn) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	user, transaction := "", false
	for {
		line, err := c.ReadLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		cmd, err := pop3.ParseCommand(string(line))
		if err != nil {
			if err := c.WriteLine("-ERR invalid command"); err != nil {
				return err
			}
			continue
		}
		reply := ""
		switch {
		case cmd.Name == "CAPA":
			caps := pop3.Capabilities(&pop3.CapabilityOptions{TLS: true, UserPass: true, Mechanisms: []string{"PLAIN"}})
			if err := pop3.WriteMultiline(c, "+OK Capability list follows", caps.List()); err != nil {
				return err
			}
			continue
		case cmd.Name == "STLS":
			reply = pop3.RefuseSTLS(true)
		case cmd.Name == "USER" && !transaction:
			user = cmd.Rest
			reply = "+OK"
		case cmd.Name == "PASS" && !transaction:
			if user == "demo" && cmd.Rest == "demo" {
				transaction = true
				reply = "+OK maildrop locked and ready"
			} else {
				reply = "-ERR [AUTH] invalid credentials"
			}
		case cmd.Name == "STAT" && transaction:
			reply = "+OK 0 0"
		case cmd.Name == "QUIT":
			c.WriteLine("+OK bye")
			return nil
		default:
			reply = "-ERR unknown command"
		}
		if err := c.WriteLine(reply); err != nil {
			return err
		}
	}
}

func srvNew(pki *scripttest.PKI) *pop3.Server {
	return &pop3.Server{Options: starttls.ServerOptions{TLSConfig: pki.Server(), Hostname: scripttest.TestName}}
}

func srvClientOpts(pki *scripttest.PKI) *scripttest.Options {
	return &scripttest.Options{Role: scripttest.Client, TLSConfig: pki.Client(scripttest.TestName)}
}

const (
	srvGreeting   = "S: +OK mx.example.test POP3 ready\n"
	srvCapaBefore = `
		S: +OK Capability list follows
		S: UIDL
		S: RESP-CODES
		S: AUTH-RESP-CODE
		S: STLS
		S: .
	`
	srvCapaAfter = `
		S: +OK Capability list follows
		S: UIDL
		S: RESP-CODES
		S: AUTH-RESP-CODE
		S: USER
		S: SASL PLAIN
		S: .
	`
)

func TestServerTranscripts(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		mutate  func(*pop3.Server)
		wantErr []error // nil: the upgrade and the post-TLS loop succeed
	}{{
		name: "upgrade, fresh CAPA, no STLS after TLS, second STLS refused",
		script: srvGreeting + `
			C: CAPA
		` + srvCapaBefore + `
			C: STLS
			S: +OK Begin TLS negotiation
			!tls
			C: CAPA
		` + srvCapaAfter + `
			C: STLS
			S: -ERR Command not permitted when TLS active
			C: USER demo
			S: +OK
			C: PASS demo
			S: +OK maildrop locked and ready
			C: STAT
			S: +OK 0 0
			C: QUIT
			S: +OK bye
		`,
	}, {
		name: "STLS right after the greeting, lower case",
		script: srvGreeting + `
			C: stls
			S: +OK Begin TLS negotiation
			!tls
			C: QUIT
			S: +OK bye
		`,
	}, {
		name: "commands before TLS refused with the exact replies",
		script: srvGreeting + `
			C: NOOP
			S: +OK
			C: USER demo
			S: -ERR [AUTH] TLS required, use STLS first
			C: PASS demo
			S: -ERR [AUTH] TLS required, use STLS first
			C: APOP demo c4c9334bac560ecc979e58001b3e22fb
			S: -ERR [AUTH] TLS required, use STLS first
			C: AUTH PLAIN AGRlbW8AZGVtbw==
			S: -ERR [AUTH] TLS required, use STLS first
			C: auth
			S: -ERR [AUTH] TLS required, use STLS first
			C: STAT
			S: -ERR Command not permitted before TLS, use STLS first
			C: RETR 1
			S: -ERR Command not permitted before TLS, use STLS first
			C: XYZZ
			S: -ERR Command not permitted before TLS, use STLS first
			C: STLS now
			S: -ERR STLS takes no arguments
			C: CAPA x
			S: -ERR CAPA takes no arguments
			C: ſtls
			S: -ERR Invalid command
			C: "STLS\x00\r\n"
			S: -ERR Invalid command
			C: XSTLS
			S: -ERR Invalid command
			C:
			S: -ERR Invalid command
			C: QUIT
			S: +OK mx.example.test POP3 server signing off
			!eof
		`,
		mutate:  func(s *pop3.Server) { s.Options.MaxErrors = 30 },
		wantErr: []error{starttls.ErrQuit},
	}, {
		name: "CAPA pipelined behind STLS in the same write",
		script: srvGreeting + `
			C: STLS
			C+ CAPA
			S: -ERR Commands pipelined behind STLS, closing connection
			!eof
		`,
		wantErr: []error{starttls.ErrInjectedData},
	}, {
		name: "USER and PASS pipelined behind STLS in the same write",
		script: srvGreeting + `
			C: CAPA
		` + srvCapaBefore + `
			C: STLS
			C+ USER demo
			C+ PASS demo
			S: -ERR Commands pipelined behind STLS, closing connection
			!eof
		`,
		wantErr: []error{starttls.ErrInjectedData},
	}, {
		name: "a partial line pipelined behind STLS",
		script: srvGreeting + `
			C: "STLS\r\nU"
			S: -ERR Commands pipelined behind STLS, closing connection
			!eof
		`,
		wantErr: []error{starttls.ErrInjectedData},
	}, {
		name: "commands pipelined before STLS are answered in turn",
		script: srvGreeting + `
			C: NOOP
			C+ CAPA
			S: +OK
		` + srvCapaBefore + `
			C: STLS
			S: +OK Begin TLS negotiation
			!tls
			C: QUIT
			S: +OK bye
		`,
	}, {
		name: "over-long command line",
		script: srvGreeting + `
			C: USER ` + strings.Repeat("x", 5000) + `
			S: -ERR Line too long, closing connection
			!eof
		`,
		wantErr: []error{starttls.ErrTooLarge},
	}, {
		name: "too many refused commands",
		script: srvGreeting + `
			C: USER demo
			S: -ERR [AUTH] TLS required, use STLS first
			C: STAT
			S: -ERR Command not permitted before TLS, use STLS first
			C: NOOP
			S: +OK
			C: LIST
			S: -ERR Too many errors, closing connection
			!eof
		`,
		mutate:  func(s *pop3.Server) { s.Options.MaxErrors = 2 },
		wantErr: []error{starttls.ErrProtocol},
	}, {
		name: "idle client is closed without a reply",
		script: srvGreeting + `
			!eof
		`,
		mutate:  func(s *pop3.Server) { s.Options.IdleTimeout = 100 * time.Millisecond },
		wantErr: []error{os.ErrDeadlineExceeded},
	}, {
		name: "client hangs up",
		script: srvGreeting + `
			C: NOOP
			S: +OK
			!close
		`,
		wantErr: []error{io.ErrUnexpectedEOF},
	}, {
		name: "client stalls mid-handshake",
		script: srvGreeting + `
			C: STLS
			S: +OK Begin TLS negotiation
			C: "\x16\x03\x01\x00"
			!hold
		`,
		mutate:  func(s *pop3.Server) { s.Options.HandshakeTimeout = 200 * time.Millisecond },
		wantErr: []error{starttls.ErrHandshake, context.DeadlineExceeded},
	}, {
		name: "client speaks plaintext after the go-ahead",
		script: srvGreeting + `
			C: STLS
			S: +OK Begin TLS negotiation
			C: USER demo
			!hold
		`,
		wantErr: []error{starttls.ErrHandshake},
	}, {
		name: "extensions advertised by the front",
		script: srvGreeting + `
			C: CAPA
			S: +OK Capability list follows
			S: TOP
			S: ..HIDDEN
			S: STLS
			S: .
			C: QUIT
			S: +OK mx.example.test POP3 server signing off
		`,
		mutate: func(s *pop3.Server) {
			s.Extensions = []string{"TOP", "USER", "SASL PLAIN", ".HIDDEN", "stls", "BAD\tTAB"}
		},
		wantErr: []error{starttls.ErrQuit},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			srv := srvNew(pki)
			if tt.mutate != nil {
				tt.mutate(srv)
			}
			conn, peer := scripttest.TCP(t, tt.script, srvClientOpts(pki))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r := srvWait(t, srvServeOn(ctx, srv, conn))
			require.NoError(t, peer.Wait(), "the client script")
			if tt.wantErr == nil {
				require.NoError(t, r.err)
				require.NotNil(t, r.tc.TLS(), "the session runs over TLS")
				return
			}
			require.Error(t, r.err)
			for _, want := range tt.wantErr {
				require.ErrorIs(t, r.err, want, "got %v", r.err)
			}
			var e *starttls.Error
			require.ErrorAs(t, r.err, &e)
			assert.Equal(t, "pop3", e.Protocol)
			assert.Nil(t, r.tc)
			srvAssertClosed(t, conn)
		})
	}
}

// srvAssertClosed checks that the front closed conn: using it fails with
// net.ErrClosed.
func srvAssertClosed(t *testing.T, conn net.Conn) {
	t.Helper()
	_, err := conn.Write([]byte("x"))
	assert.ErrorIs(t, err, net.ErrClosed, "the conn must be closed on error")
}

// The same pipelined command, split into two writes 1 ms apart: whichever
// way the two writes arrive, the front must fail and never answer CAPA.
func TestServerPipelinedSplitWrites(t *testing.T) {
	pki := scripttest.NewPKI(t)
	for i := 0; i < 10; i++ {
		var transcript bytes.Buffer
		srv := srvNew(pki)
		srv.Options.Conn = &starttls.Options{Transcript: &transcript, Server: true}
		conn, peer := scripttest.TCP(t, srvGreeting+`
			C: STLS
			!sleep 1ms
			C: CAPA
			!hold
		`, srvClientOpts(pki))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r := srvWait(t, srvServeOn(ctx, srv, conn))
		cancel()
		require.NoError(t, peer.Wait())
		require.Error(t, r.err)
		assert.True(t, errors.Is(r.err, starttls.ErrInjectedData) || errors.Is(r.err, starttls.ErrHandshake),
			"got %v, want ErrInjectedData or ErrHandshake", r.err)
		assert.NotContains(t, transcript.String(), "Capability list", "CAPA must never be answered")
		assert.NotContains(t, transcript.String(), "C: CAPA", "CAPA must never be read as a command")
		srvAssertClosed(t, conn)
	}
}

// A client that stalls mid-handshake does not stop the listener from
// serving others, and is dropped when its context ends.
func TestServerListenerKeepsServing(t *testing.T) {
	pki := scripttest.NewPKI(t)
	srv := srvNew(pki)
	srv.Options.HandshakeTimeout = time.Minute // only the context drops the staller
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		client string // the client's address
		err    error
	}
	results := make(chan result, 2)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := <-srvServeOn(ctx, srv, conn)
				results <- result{conn.RemoteAddr().String(), r.err}
			}()
		}
	}()

	// The staller: STLS, then half a TLS record header, then silence.
	staller, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer staller.Close()
	staller.SetDeadline(time.Now().Add(5 * time.Second))
	sc := starttls.NewConn(staller, nil)
	line, err := sc.ReadLine()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(line), "+OK "), "greeting %q", line)
	require.NoError(t, sc.WriteLine("STLS"))
	line, err = sc.ReadLine()
	require.NoError(t, err)
	require.Equal(t, pop3.ReplyGoAhead, string(line))
	_, err = staller.Write([]byte{0x16, 0x03})
	require.NoError(t, err)

	// Another client upgrades and quits meanwhile.
	other, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer other.Close()
	uctx, ucancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ucancel()
	tc, res, err := pop3.Upgrade(uctx, other, &pop3.Options{TLSConfig: pki.Client(scripttest.TestName)})
	require.NoError(t, err)
	defer tc.Close()
	require.True(t, res.TLS)
	res.Conn.SetDeadline(time.Now().Add(5 * time.Second))
	require.NoError(t, res.Conn.WriteLine("QUIT"))
	line, err = res.Conn.ReadLine()
	require.NoError(t, err)
	require.Equal(t, "+OK bye", string(line))
	select {
	case r := <-results:
		require.Equal(t, other.LocalAddr().String(), r.client, "the other client finishes first")
		require.NoError(t, r.err)
	case <-time.After(5 * time.Second):
		t.Fatal("the other client's session did not end")
	}
	select {
	case r := <-results:
		t.Fatalf("the staller was dropped before its context ended: %v", r.err)
	default:
	}

	// Ending the context drops the staller at once.
	cancel()
	select {
	case r := <-results:
		require.Equal(t, staller.LocalAddr().String(), r.client)
		require.ErrorIs(t, r.err, starttls.ErrHandshake)
		require.ErrorIs(t, r.err, context.Canceled)
	case <-time.After(2 * time.Second):
		t.Fatal("the staller was not dropped within 2s of the cancel")
	}
}

// Cancelling the context aborts a front blocked on a silent client.
func TestServerCancel(t *testing.T) {
	pki := scripttest.NewPKI(t)
	srvConn, cliConn := srvTCPPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := srvServeOn(ctx, srvNew(pki), srvConn)
	cliConn.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := starttls.NewConn(cliConn, nil).ReadLine()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(line), "+OK "), "greeting %q", line)
	cancel()
	select {
	case r := <-done:
		require.ErrorIs(t, r.err, context.Canceled)
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not return within 2s of the cancel")
	}
	srvAssertClosed(t, srvConn)
}

// The library's own client against the front.
func TestServerRoundTrip(t *testing.T) {
	pki := scripttest.NewPKI(t)
	srvConn, cliConn := srvTCPPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := srvServeOn(ctx, srvNew(pki), srvConn)
	tc, res, err := pop3.Upgrade(ctx, cliConn, &pop3.Options{TLSConfig: pki.Client(scripttest.TestName)})
	require.NoError(t, err)
	defer tc.Close()
	assert.True(t, res.TLS)
	assert.Equal(t, []string{"UIDL", "RESP-CODES", "AUTH-RESP-CODE", "STLS"}, res.Before.List())
	assert.False(t, res.Before.Has("USER"), "no USER before TLS")
	assert.False(t, res.Before.Has("SASL"), "no SASL before TLS")
	assert.Equal(t, []string{"UIDL", "RESP-CODES", "AUTH-RESP-CODE", "USER", "SASL PLAIN"}, res.After.List())
	assert.False(t, res.After.Has("STLS"), "no STLS after TLS")
	assert.Equal(t, scripttest.TestName, res.State.ServerName)

	c := res.Conn
	c.SetDeadline(time.Now().Add(5 * time.Second))
	for _, step := range []struct{ send, want string }{
		{"STLS", pop3.ReplyTLSActive},
		{"USER demo", "+OK"},
		{"PASS demo", "+OK maildrop locked and ready"},
		{"STAT", "+OK 0 0"},
		{"QUIT", "+OK bye"},
	} {
		require.NoError(t, c.WriteLine(step.send))
		line, err := c.ReadLine()
		require.NoError(t, err)
		assert.Equal(t, step.want, string(line))
	}
	r := srvWait(t, done)
	require.NoError(t, r.err)
}

// srvTCPPair returns both ends of a loopback TCP connection.
func srvTCPPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	select {
	case server = <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
	}
	require.NotNil(t, server)
	t.Cleanup(func() { server.Close() })
	return server, client
}

func TestServerNoTLSConfig(t *testing.T) {
	srvConn, _ := srvTCPPair(t)
	var srv *pop3.Server
	tc, err := srv.Serve(context.Background(), srvConn)
	require.Error(t, err)
	assert.Nil(t, tc)
	srvAssertClosed(t, srvConn)
}

// The context bounds the whole front, not each command: a client that keeps
// sending NOOP is dropped when it ends.
func TestServerContextBoundsFront(t *testing.T) {
	pki := scripttest.NewPKI(t)
	srvConn, cliConn := srvTCPPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := srvServeOn(ctx, srvNew(pki), srvConn)
	c := starttls.NewConn(cliConn, nil)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err := c.ReadLine()
	require.NoError(t, err)
	for err == nil {
		if err = c.WriteLine("NOOP"); err == nil {
			var line []byte
			line, err = c.ReadLine()
			if err == nil {
				require.Equal(t, "+OK", string(line))
			}
		}
	}
	require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the front must close first, got %v", err)
	r := srvWait(t, done)
	require.ErrorIs(t, r.err, context.DeadlineExceeded)
	srvAssertClosed(t, srvConn)
}
