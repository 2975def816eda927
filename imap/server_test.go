package imap_test

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

	"github.com/tlsup/tlsup/imap"
	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/internal/servertest"
	"github.com/tlsup/tlsup/starttls"
)

// srvServeOn runs srv.Serve on conn, then srvPostTLS (servertest.ServeOn).
func srvServeOn(ctx context.Context, srv *imap.Server, conn net.Conn) <-chan servertest.Served {
	return servertest.ServeOn(ctx, srv.Serve, srvPostTLS, conn)
}

// srvPostTLS is a minimal caller loop after the front, as a real server would
// have: it answers CAPABILITY with the list after TLS, refuses STARTTLS,
// accepts LOGIN demo demo (synchronizing literals allowed) and LOGOUT.
func srvPostTLS(c *starttls.Conn) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	authenticated := false
	for {
		cmd, err := imap.ReadCommand(c, &imap.CommandOptions{SyncLiterals: true})
		var cerr *imap.CommandError
		if errors.As(err, &cerr) {
			tag := cerr.Tag
			if tag == "" {
				tag = "*"
			}
			if cerr.Close {
				c.WriteLine("* BYE bad command")
				return nil
			}
			if err := c.WriteLine(tag + " BAD bad command"); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		var lines []string
		switch cmd.Name {
		case "CAPABILITY":
			caps := imap.Capabilities(&imap.CapabilityOptions{TLS: true, Mechanisms: []string{"PLAIN"}})
			lines = []string{imap.CapabilityLine(caps), cmd.Tag + " OK CAPABILITY completed"}
		case "STARTTLS":
			lines = []string{imap.RefuseStartTLS(cmd.Tag, true)}
		case "LOGIN":
			if len(cmd.Args) == 2 && cmd.Args[0] == "demo" && cmd.Args[1] == "demo" {
				authenticated = true
				lines = []string{cmd.Tag + " OK LOGIN completed"}
			} else {
				lines = []string{cmd.Tag + " NO [AUTHENTICATIONFAILED] invalid credentials"}
			}
		case "SELECT":
			if !authenticated {
				lines = []string{cmd.Tag + " BAD not authenticated"}
			} else {
				lines = []string{"* 0 EXISTS", cmd.Tag + " OK [READ-WRITE] SELECT completed"}
			}
		case "LOGOUT":
			c.WriteLine("* BYE logging out")
			c.WriteLine(cmd.Tag + " OK LOGOUT completed")
			return nil
		default:
			lines = []string{cmd.Tag + " BAD unknown command"}
		}
		for _, l := range lines {
			if err := c.WriteLine(l); err != nil {
				return err
			}
		}
	}
}

func srvNew(pki *scripttest.PKI) *imap.Server {
	return &imap.Server{Options: servertest.ServerOptions(pki)}
}

// srvFront is srv as the shared server tests drive it.
func srvFront(srv *imap.Server) servertest.Front {
	return servertest.Front{
		Serve: srv.Serve, Post: srvPostTLS,
		Greeting: "* OK ",
		StartTLS: "a STARTTLS", GoAhead: "a OK Begin TLS negotiation now",
		Noop: "a NOOP", NoopReply: "a OK NOOP completed",
	}
}

// The capability list before TLS, as the front sends it.
const (
	srvGreeting   = "S: * OK [CAPABILITY IMAP4rev1 LITERAL- STARTTLS LOGINDISABLED] mx.example.test ready\n"
	srvCapsBefore = "S: * CAPABILITY IMAP4rev1 LITERAL- STARTTLS LOGINDISABLED\n"
	srvCapsAfter  = "S: * CAPABILITY IMAP4rev1 LITERAL- AUTH=PLAIN\n"
)

func TestServerTranscripts(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		mutate  func(*imap.Server)
		wantErr []error // nil: the upgrade and the post-TLS loop succeed
	}{{
		name: "upgrade, fresh CAPABILITY, no STARTTLS after TLS, second STARTTLS refused",
		script: srvGreeting + `
			C: a1 CAPABILITY
		` + srvCapsBefore + `
			S: a1 OK CAPABILITY completed
			C: a2 STARTTLS
			S: a2 OK Begin TLS negotiation now
			!tls
			C: a3 CAPABILITY
		` + srvCapsAfter + `
			S: a3 OK CAPABILITY completed
			C: a4 STARTTLS
			S: a4 BAD TLS already active
			C: a5 LOGIN demo {4}
			S: + Ready for literal data
			C: demo
			S: a5 OK LOGIN completed
			C: a6 SELECT INBOX
			S: * 0 EXISTS
			S: a6 OK [READ-WRITE] SELECT completed
			C: a7 LOGOUT
			S: * BYE logging out
			S: a7 OK LOGOUT completed
		`,
	}, {
		name: "STARTTLS right after the greeting",
		script: srvGreeting + `
			C: x STARTTLS
			S: x OK Begin TLS negotiation now
			!tls
			C: y LOGOUT
			S: * BYE logging out
			S: y OK LOGOUT completed
		`,
	}, {
		name: "commands before TLS refused with the exact replies",
		script: srvGreeting + `
			C: a1 NOOP
			S: a1 OK NOOP completed
			C: a2 noop
			S: a2 OK NOOP completed
			C: a3 LOGIN demo demo
			S: a3 NO [PRIVACYREQUIRED] TLS required, use STARTTLS first
			C: a4 login "demo" "de\"mo"
			S: a4 NO [PRIVACYREQUIRED] TLS required, use STARTTLS first
			C: a5 AUTHENTICATE PLAIN
			S: a5 NO [PRIVACYREQUIRED] TLS required, use STARTTLS first
			C: a6 AUTHENTICATE PLAIN AGRlbW8AZGVtbw==
			S: a6 NO [PRIVACYREQUIRED] TLS required, use STARTTLS first
			C: a7 SELECT INBOX
			S: a7 BAD Command not allowed before TLS, use STARTTLS first
			C: a8 ID NIL
			S: a8 BAD Command not allowed before TLS, use STARTTLS first
			C: a9 XYZZY
			S: a9 BAD Command not allowed before TLS, use STARTTLS first
			C: b1 STARTTLS now
			S: b1 BAD STARTTLS takes no arguments
			C: b2 CAPABILITY IMAP4rev2
			S: b2 BAD CAPABILITY takes no arguments
			C: b3 NOOP (
			S: b3 BAD NOOP takes no arguments
			C: b4
			S: b4 BAD Missing or invalid command name
			C: +x NOOP
			S: * BAD Invalid tag
			C: b5 ſtarttls
			S: b5 BAD Missing or invalid command name
			C: "b6 NOOP\x00\r\n"
			S: b6 BAD Missing or invalid command name
			C: b7 LOGOUT
			S: * BYE mx.example.test logging out
			S: b7 OK LOGOUT completed
			!eof
		`,
		mutate:  func(s *imap.Server) { s.Options.MaxErrors = 30 },
		wantErr: []error{starttls.ErrQuit},
	}, {
		name: "a synchronizing literal is never invited before TLS",
		script: srvGreeting + `
			C: a1 LOGIN {4}
			S: a1 NO [PRIVACYREQUIRED] TLS required, use STARTTLS first
			C: a2 SELECT {5}
			S: a2 BAD Command not allowed before TLS, use STARTTLS first
			C: a3 LOGOUT
			S: * BYE mx.example.test logging out
			S: a3 OK LOGOUT completed
		`,
		wantErr: []error{starttls.ErrQuit},
	}, {
		name: "non-synchronizing literals are read and dropped before TLS",
		script: srvGreeting + `
			C: "a1 LOGIN {4+}\r\ndemo {4+}\r\ndemo\r\n"
			S: a1 NO [PRIVACYREQUIRED] TLS required, use STARTTLS first
			C: "a2 NOOP {9+}\r\nb STARTTLS\r\n"
			S: a2 BAD NOOP takes no arguments
			C: a3 STARTTLS
			S: a3 OK Begin TLS negotiation now
			!tls
			C: a4 LOGOUT
			S: * BYE logging out
			S: a4 OK LOGOUT completed
		`,
	}, {
		name: "a non-synchronizing literal over the LITERAL- bound closes the connection",
		script: srvGreeting + `
			C: a1 LOGIN {4097+}
			S: * BYE Literal too large
			!eof
		`,
		wantErr: []error{starttls.ErrTooLarge},
	}, {
		name: "NOOP pipelined behind STARTTLS in the same write",
		script: srvGreeting + `
			C: A STARTTLS
			C+ B NOOP
			S: A BAD [CLIENTBUG] Commands pipelined behind STARTTLS, closing connection
			!eof
		`,
		wantErr: []error{starttls.ErrInjectedData},
	}, {
		name: "LOGIN pipelined behind STARTTLS in the same write",
		script: srvGreeting + `
			C: a1 CAPABILITY
		` + srvCapsBefore + `
			S: a1 OK CAPABILITY completed
			C: a2 STARTTLS
			C+ a3 LOGIN demo demo
			C+ a4 SELECT INBOX
			S: a2 BAD [CLIENTBUG] Commands pipelined behind STARTTLS, closing connection
			!eof
		`,
		wantErr: []error{starttls.ErrInjectedData},
	}, {
		name: "a partial line pipelined behind STARTTLS",
		script: srvGreeting + `
			C: "a STARTTLS\r\nb"
			S: a BAD [CLIENTBUG] Commands pipelined behind STARTTLS, closing connection
			!eof
		`,
		wantErr: []error{starttls.ErrInjectedData},
	}, {
		name: "TLS records pipelined behind STARTTLS",
		script: srvGreeting + `
			C: "a STARTTLS\r\n\x16\x03\x01\x00\x05hello"
			S: a BAD [CLIENTBUG] Commands pipelined behind STARTTLS, closing connection
			!eof
		`,
		wantErr: []error{starttls.ErrInjectedData},
	}, {
		name: "commands pipelined before STARTTLS are answered in turn",
		script: srvGreeting + `
			C: a1 NOOP
			C+ a2 CAPABILITY
			S: a1 OK NOOP completed
		` + srvCapsBefore + `
			S: a2 OK CAPABILITY completed
			C: a3 STARTTLS
			S: a3 OK Begin TLS negotiation now
			!tls
			C: a4 LOGOUT
			S: * BYE logging out
			S: a4 OK LOGOUT completed
		`,
	}, {
		name: "over-long command line",
		script: srvGreeting + `
			C: a1 NOOP ` + strings.Repeat("x", 5000) + `
			S: * BYE Command line too long
			!eof
		`,
		wantErr: []error{starttls.ErrTooLarge},
	}, {
		name: "too many refused commands",
		script: srvGreeting + `
			C: a1 LOGIN demo demo
			S: a1 NO [PRIVACYREQUIRED] TLS required, use STARTTLS first
			C: a2 SELECT INBOX
			S: a2 BAD Command not allowed before TLS, use STARTTLS first
			C: a3 NOOP
			S: a3 OK NOOP completed
			C: a4 EXAMINE INBOX
			S: * BYE Too many invalid commands
			!eof
		`,
		mutate:  func(s *imap.Server) { s.Options.MaxErrors = 2 },
		wantErr: []error{starttls.ErrProtocol},
	}, {
		name: "idle client",
		script: srvGreeting + `
			S: * BYE Autologout; idle for too long
			!eof
		`,
		mutate:  func(s *imap.Server) { s.Options.IdleTimeout = 100 * time.Millisecond },
		wantErr: []error{os.ErrDeadlineExceeded},
	}, {
		name: "client hangs up",
		script: srvGreeting + `
			C: a1 NOOP
			S: a1 OK NOOP completed
			!close
		`,
		wantErr: []error{io.ErrUnexpectedEOF},
	}, {
		name: "client stalls mid-handshake",
		script: srvGreeting + `
			C: a STARTTLS
			S: a OK Begin TLS negotiation now
			C: "\x16\x03\x01\x00"
			!hold
		`,
		mutate:  func(s *imap.Server) { s.Options.HandshakeTimeout = 200 * time.Millisecond },
		wantErr: []error{starttls.ErrHandshake, context.DeadlineExceeded},
	}, {
		name: "client speaks plaintext after the go-ahead",
		script: srvGreeting + `
			C: a STARTTLS
			S: a OK Begin TLS negotiation now
			C: b LOGIN demo demo
			!hold
		`,
		wantErr: []error{starttls.ErrHandshake},
	}, {
		name: "extensions advertised by the front",
		script: `
			S: * OK [CAPABILITY IMAP4rev1 ID STARTTLS LOGINDISABLED] mx.example.test ready
			C: a CAPABILITY
			S: * CAPABILITY IMAP4rev1 ID STARTTLS LOGINDISABLED
			S: a OK CAPABILITY completed
			C: b LOGOUT
			S: * BYE mx.example.test logging out
			S: b OK LOGOUT completed
		`,
		mutate:  func(s *imap.Server) { s.Extensions = []string{"ID", "AUTH=PLAIN", "STARTTLS", "bad atom"} },
		wantErr: []error{starttls.ErrQuit},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			srv := srvNew(pki)
			if tt.mutate != nil {
				tt.mutate(srv)
			}
			servertest.Transcript(t, pki, srv.Serve, srvPostTLS, "imap", tt.script, tt.wantErr...)
		})
	}
}

// The same pipelined command, split into two writes 1 ms apart: whichever
// way the two writes arrive, the front must fail and never answer B.
func TestServerPipelinedSplitWrites(t *testing.T) {
	pki := scripttest.NewPKI(t)
	servertest.PipelinedSplitWrites(t, pki, func(transcript io.Writer) servertest.Front {
		srv := srvNew(pki)
		srv.Options.Conn = &starttls.Options{Transcript: transcript, Server: true}
		return srvFront(srv)
	}, srvGreeting+`
		C: A STARTTLS
		!sleep 1ms
		C: B NOOP
		!hold
	`, "S: B ")
}

// A client that stalls mid-handshake does not stop the listener from
// serving others, and is dropped when its context ends.
func TestServerListenerKeepsServing(t *testing.T) {
	pki := scripttest.NewPKI(t)
	srv := srvNew(pki)
	srv.Options.HandshakeTimeout = time.Minute // only the context drops the staller
	// The staller sends half a TLS record header; another client upgrades
	// and logs out meanwhile.
	servertest.KeepsServing(t, srvFront(srv), []byte{0x16, 0x03}, func(t *testing.T, other net.Conn) {
		uctx, ucancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ucancel()
		tc, res, err := imap.Upgrade(uctx, other, &imap.Options{TLSConfig: pki.Client(scripttest.TestName)})
		require.NoError(t, err)
		defer tc.Close()
		require.True(t, res.TLS)
		require.NoError(t, res.Conn.WriteLine("z LOGOUT"))
		res.Conn.SetDeadline(time.Now().Add(5 * time.Second))
		for {
			line, err := res.Conn.ReadLine()
			require.NoError(t, err)
			if strings.HasPrefix(string(line), "z ") {
				require.Equal(t, "z OK LOGOUT completed", string(line))
				break
			}
		}
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
	tc, res, err := imap.Upgrade(ctx, cliConn, &imap.Options{TLSConfig: pki.Client(scripttest.TestName)})
	require.NoError(t, err)
	defer tc.Close()
	assert.True(t, res.TLS)
	assert.Equal(t, []string{"IMAP4rev1", "LITERAL-", "STARTTLS", "LOGINDISABLED"}, res.Before.List())
	assert.False(t, res.Before.Has("AUTH=PLAIN"), "no plaintext mechanism before TLS")
	assert.Equal(t, []string{"IMAP4rev1", "LITERAL-", "AUTH=PLAIN"}, res.After.List())
	assert.False(t, res.After.Has("STARTTLS"), "no STARTTLS after TLS")
	assert.Equal(t, scripttest.TestName, res.State.ServerName)

	c := res.Conn
	c.SetDeadline(time.Now().Add(5 * time.Second))
	for _, step := range []struct{ send, want string }{
		{"s1 STARTTLS", "s1 BAD TLS already active"},
		{`s2 LOGIN "demo" "demo"`, "s2 OK LOGIN completed"},
		{"s3 LOGOUT", "* BYE logging out"},
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
	var srv *imap.Server
	servertest.NoTLSConfig(t, srv.Serve)
}

// The context bounds the whole front, not each command: a client that keeps
// sending NOOP is dropped when it ends.
func TestServerContextBoundsFront(t *testing.T) {
	servertest.ContextBoundsFront(t, srvFront(srvNew(scripttest.NewPKI(t))))
}
