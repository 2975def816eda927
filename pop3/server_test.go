package pop3_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/internal/servertest"
	"github.com/tlsup/tlsup/pop3"
	"github.com/tlsup/tlsup/starttls"
)

// srvServeOn runs srv.Serve on conn, then srvPostTLS (servertest.ServeOn).
func srvServeOn(ctx context.Context, srv *pop3.Server, conn net.Conn) <-chan servertest.Served {
	return servertest.ServeOn(ctx, srv.Serve, srvPostTLS, conn)
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
	return &pop3.Server{Options: servertest.ServerOptions(pki)}
}

// srvFront is srv as the shared server tests drive it.
func srvFront(srv *pop3.Server) servertest.Front {
	return servertest.Front{
		Serve: srv.Serve, Post: srvPostTLS,
		Greeting: "+OK ",
		StartTLS: "STLS", GoAhead: pop3.ReplyGoAhead,
		Noop: "NOOP", NoopReply: "+OK",
	}
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
			servertest.Transcript(t, pki, srv.Serve, srvPostTLS, "pop3", tt.script, tt.wantErr...)
		})
	}
}

// The same pipelined command, split into two writes 1 ms apart: whichever
// way the two writes arrive, the front must fail and never answer CAPA.
func TestServerPipelinedSplitWrites(t *testing.T) {
	pki := scripttest.NewPKI(t)
	servertest.PipelinedSplitWrites(t, pki, func(transcript io.Writer) servertest.Front {
		srv := srvNew(pki)
		srv.Options.Conn = &starttls.Options{Transcript: transcript, Server: true}
		return srvFront(srv)
	}, srvGreeting+`
		C: STLS
		!sleep 1ms
		C: CAPA
		!hold
	`, "Capability list", "C: CAPA")
}

// A client that stalls mid-handshake does not stop the listener from
// serving others, and is dropped when its context ends.
func TestServerListenerKeepsServing(t *testing.T) {
	pki := scripttest.NewPKI(t)
	srv := srvNew(pki)
	srv.Options.HandshakeTimeout = time.Minute // only the context drops the staller
	// The staller sends half a TLS record header; another client upgrades
	// and quits meanwhile.
	servertest.KeepsServing(t, srvFront(srv), []byte{0x16, 0x03}, func(t *testing.T, other net.Conn) {
		uctx, ucancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ucancel()
		tc, res, err := pop3.Upgrade(uctx, other, &pop3.Options{TLSConfig: pki.Client(scripttest.TestName)})
		require.NoError(t, err)
		defer tc.Close()
		require.True(t, res.TLS)
		res.Conn.SetDeadline(time.Now().Add(5 * time.Second))
		require.NoError(t, res.Conn.WriteLine("QUIT"))
		line, err := res.Conn.ReadLine()
		require.NoError(t, err)
		require.Equal(t, "+OK bye", string(line))
	})
}

// Cancelling the context aborts a front blocked on a silent client.
func TestServerCancel(t *testing.T) {
	servertest.Cancel(t, srvFront(srvNew(scripttest.NewPKI(t))))
}

// The library's own client against the front.
func TestServerRoundTrip(t *testing.T) {
	pki := scripttest.NewPKI(t)
	srvConn, cliConn := servertest.TCPPair(t)
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
	r := servertest.Wait(t, done)
	require.NoError(t, r.Err)
}

func TestServerNoTLSConfig(t *testing.T) {
	var srv *pop3.Server
	servertest.NoTLSConfig(t, srv.Serve)
}

// The context bounds the whole front, not each command: a client that keeps
// sending NOOP is dropped when it ends.
func TestServerContextBoundsFront(t *testing.T) {
	servertest.ContextBoundsFront(t, srvFront(srvNew(scripttest.NewPKI(t))))
}
