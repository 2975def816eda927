package smtp_test

import (
	"bytes"
	"cmp"
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
	"github.com/tlsup/tlsup/internal/servertest"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
)

// serveOn runs srv.Serve on conn, then postTLS (servertest.ServeOn).
func serveOn(ctx context.Context, srv *smtp.Server, conn net.Conn) <-chan servertest.Served {
	return servertest.ServeOn(ctx, srv.Serve, postFor(srv), conn)
}

// postFor is postTLS for srv's host name.
func postFor(srv *smtp.Server) servertest.PostFunc {
	host := cmp.Or(srv.Options.Hostname, "localhost")
	return func(c *starttls.Conn) error { return postTLS(c, host) }
}

// postTLS is a minimal caller loop after the front, as a real server would
// have: a fresh EHLO is required before MAIL, STARTTLS is refused.
func postTLS(c *starttls.Conn, host string) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	greeted := false
	for {
		line, err := c.ReadLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		verb, _, _ := strings.Cut(strings.ToUpper(string(line)), " ")
		switch verb {
		case "EHLO", "LHLO":
			greeted = true
			caps := smtp.Capabilities(&smtp.CapabilityOptions{TLS: true, Mechanisms: []string{"PLAIN"}})
			err = smtp.WriteReply(c, 250, append([]string{host}, caps.List()...)...)
		case "STARTTLS":
			err = c.WriteLine(smtp.ReplyTLSActive)
		case "MAIL":
			if !greeted {
				err = c.WriteLine("503 5.5.1 EHLO first")
			} else {
				err = c.WriteLine("250 2.1.0 OK")
			}
		case "QUIT":
			c.WriteLine("221 2.0.0 bye")
			return nil
		default:
			err = c.WriteLine("502 5.5.2 not implemented")
		}
		if err != nil {
			return err
		}
	}
}

func newServer(pki *scripttest.PKI) *smtp.Server {
	return &smtp.Server{Options: servertest.ServerOptions(pki)}
}

// The EHLO reply before TLS, as the front sends it.
const ehloBefore = `
	S: 250-mx.example.test
	S: 250-PIPELINING
	S: 250-8BITMIME
	S: 250-ENHANCEDSTATUSCODES
	S: 250 STARTTLS
`

func TestServerTranscripts(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		mutate  func(*smtp.Server)
		wantErr error // nil: the upgrade and the post-TLS loop succeed
	}{{
		name: "upgrade, fresh EHLO, no STARTTLS after TLS, second STARTTLS refused",
		script: `
			S: 220 mx.example.test ESMTP ready
			C: EHLO client.example
		` + ehloBefore + `
			C: STARTTLS
			S: 220 2.0.0 Ready to start TLS
			!tls
			C: MAIL FROM:<a@example.test>
			S: 503 5.5.1 EHLO first
			C: EHLO client.example
			S: 250-mx.example.test
			S: 250-PIPELINING
			S: 250-8BITMIME
			S: 250-ENHANCEDSTATUSCODES
			S: 250 AUTH PLAIN
			C: STARTTLS
			S: 503 5.5.1 TLS already active
			C: MAIL FROM:<a@example.test>
			S: 250 2.1.0 OK
			C: QUIT
			S: 221 2.0.0 bye
		`,
	}, {
		name: "commands before TLS refused with the exact replies",
		script: `
			S: 220 mx.example.test ESMTP ready
			C: HELO client.example
			S: 250 mx.example.test
			C: NOOP
			S: 250 2.0.0 OK
			C: rset
			S: 250 2.0.0 OK
			C: AUTH PLAIN AGRlbW8AZGVtbw==
			S: 530 5.7.0 Must issue a STARTTLS command first
			C: MAIL FROM:<a@example.test>
			S: 530 5.7.0 Must issue a STARTTLS command first
			C: RCPT TO:<b@example.test>
			S: 530 5.7.0 Must issue a STARTTLS command first
			C: DATA
			S: 530 5.7.0 Must issue a STARTTLS command first
			C: VRFY postmaster
			S: 530 5.7.0 Must issue a STARTTLS command first
			C: XYZZY
			S: 530 5.7.0 Must issue a STARTTLS command first
			C: LHLO client.example
			S: 530 5.7.0 Must issue a STARTTLS command first
			C: STARTTLS now
			S: 501 5.5.4 Syntax error (no parameters allowed)
			C: QUIT
			S: 221 2.0.0 mx.example.test closing connection
			!eof
		`,
		mutate:  func(s *smtp.Server) { s.Options.MaxErrors = 20 },
		wantErr: starttls.ErrQuit,
	}, {
		name: "look-alike STARTTLS with a long s is an unknown command",
		script: `
			S: 220 mx.example.test ESMTP ready
			C: ſtarttls
			S: 530 5.7.0 Must issue a STARTTLS command first
			C: QUIT
			S: 221 2.0.0 mx.example.test closing connection
		`,
		wantErr: starttls.ErrQuit,
	}, {
		name: "RSET pipelined behind STARTTLS in the same write",
		script: `
			S: 220 mx.example.test ESMTP ready
			C: EHLO client.example
		` + ehloBefore + `
			C: STARTTLS
			C+ RSET
			S: 554 5.5.0 Commands pipelined behind STARTTLS, closing connection
			!eof
		`,
		wantErr: starttls.ErrInjectedData,
	}, {
		name: "a whole mail transaction pipelined behind STARTTLS",
		script: `
			S: 220 mx.example.test ESMTP ready
			C: EHLO client.example
		` + ehloBefore + `
			C: STARTTLS
			C+ MAIL FROM:<attacker@example.test>
			C+ RCPT TO:<victim@example.test>
			C+ DATA
			C+ Subject: injected
			C+
			C+ hello
			C+ .
			C+ QUIT
			S: 554 5.5.0 Commands pipelined behind STARTTLS, closing connection
			!eof
		`,
		wantErr: starttls.ErrInjectedData,
	}, {
		name: "over-long command line",
		script: `
			S: 220 mx.example.test ESMTP ready
			C: NOOP ` + strings.Repeat("x", 200) + `
			S: 500 5.5.2 Line too long, closing connection
			!eof
		`,
		mutate:  func(s *smtp.Server) { s.Options.Conn = &starttls.Options{MaxLineLength: 100} },
		wantErr: starttls.ErrTooLarge,
	}, {
		name: "too many refused commands",
		script: `
			S: 220 mx.example.test ESMTP ready
			C: MAIL FROM:<a@example.test>
			S: 530 5.7.0 Must issue a STARTTLS command first
			C: AUTH LOGIN
			S: 530 5.7.0 Must issue a STARTTLS command first
			C: DATA
			S: 421 4.7.0 mx.example.test Too many errors, closing connection
			!eof
		`,
		mutate:  func(s *smtp.Server) { s.Options.MaxErrors = 2 },
		wantErr: starttls.ErrProtocol,
	}, {
		name: "idle client closed",
		script: `
			S: 220 mx.example.test ESMTP ready
			S: 421 4.4.2 mx.example.test Idle timeout, closing connection
			!eof
		`,
		mutate:  func(s *smtp.Server) { s.Options.IdleTimeout = 50 * time.Millisecond },
		wantErr: os.ErrDeadlineExceeded,
	}, {
		name: "client stalls in the handshake",
		script: `
			S: 220 mx.example.test ESMTP ready
			C: STARTTLS
			S: 220 2.0.0 Ready to start TLS
			!hold
		`,
		mutate:  func(s *smtp.Server) { s.Options.HandshakeTimeout = 100 * time.Millisecond },
		wantErr: context.DeadlineExceeded,
	}, {
		name: "client hangs up",
		script: `
			S: 220 mx.example.test ESMTP ready
			C: NOOP
			S: 250 2.0.0 OK
			!close
		`,
		wantErr: io.ErrUnexpectedEOF,
	}, {
		name: "LMTP: LHLO, EHLO refused, upgrade",
		script: `
			S: 220 mx.example.test LMTP ready
			C: EHLO client.example
			S: 500 5.5.1 LMTP: use LHLO
			C: LHLO client.example
		` + ehloBefore + `
			C: STARTTLS
			S: 220 2.0.0 Ready to start TLS
			!tls
			C: LHLO client.example
			S: 250-mx.example.test
			S: 250-PIPELINING
			S: 250-8BITMIME
			S: 250-ENHANCEDSTATUSCODES
			S: 250 AUTH PLAIN
			C: QUIT
			S: 221 2.0.0 bye
		`,
		mutate: func(s *smtp.Server) { s.LMTP = true },
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			srv := newServer(pki)
			if tt.mutate != nil {
				tt.mutate(srv)
			}
			var want []error
			if tt.wantErr != nil {
				want = append(want, tt.wantErr)
			}
			servertest.Transcript(t, pki, srv.Serve, postFor(srv), srv.Protocol(), tt.script, want...)
		})
	}
}

// STARTTLS and RSET in two writes 1 ms apart: whichever way the race goes,
// the front fails and RSET is never answered, neither in plaintext nor in
// TLS.
func TestServerPipelinedSplitWrites(t *testing.T) {
	for _, behind := range []string{"RSET\r\n", "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"} {
		t.Run(strings.Fields(behind)[0], func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			srv := newServer(pki)
			conn, client := servertest.TCPPair(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			done := serveOn(ctx, srv, conn)

			client.SetDeadline(time.Now().Add(5 * time.Second))
			_, err := client.Write([]byte("STARTTLS\r\n"))
			require.NoError(t, err)
			time.Sleep(time.Millisecond) // the race under test, not a synchronisation
			_, err = client.Write([]byte(behind))
			require.NoError(t, err)
			got, _ := io.ReadAll(client) // until the server closes, or the deadline
			r := servertest.Wait(t, done)
			require.Error(t, r.Err)
			assert.True(t, errors.Is(r.Err, starttls.ErrInjectedData) || errors.Is(r.Err, starttls.ErrHandshake),
				"got %v, want ErrInjectedData or ErrHandshake", r.Err)
			text := string(got)
			require.True(t, strings.HasPrefix(text, "220 mx.example.test ESMTP ready\r\n"), "got %q", text)
			rest := strings.TrimPrefix(text, "220 mx.example.test ESMTP ready\r\n")
			if !errors.Is(r.Err, starttls.ErrHandshake) {
				assert.Equal(t, smtp.ReplyPipelined+"\r\n", rest)
			} else {
				// The bytes came after the go-ahead: the handshake read
				// them as its first record and failed, which the core
				// reports as injected data too.
				// The go-ahead, then at most a TLS alert: never a reply.
				require.True(t, strings.HasPrefix(rest, smtp.ReplyGoAhead+"\r\n"), "got %q", rest)
				alert := strings.TrimPrefix(rest, smtp.ReplyGoAhead+"\r\n")
				assert.NotContains(t, alert, "250")
				if alert != "" {
					assert.Equal(t, byte(21), alert[0], "want nothing or a TLS alert record, got %q", alert)
				}
			}
		})
	}
}

// The library's own client against the front, with the server's transcript.
func TestServerRoundTripWithClient(t *testing.T) {
	for _, lmtp := range []bool{false, true} {
		t.Run(map[bool]string{false: "smtp", true: "lmtp"}[lmtp], func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			var transcript bytes.Buffer
			srv := newServer(pki)
			srv.LMTP = lmtp
			srv.Options.Conn = &starttls.Options{Transcript: &syncWriter{w: &transcript}}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			t.Cleanup(func() { ln.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			accepted := make(chan (<-chan servertest.Served), 1)
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					close(accepted)
					return
				}
				accepted <- serveOn(ctx, srv, conn)
			}()
			tc, res, err := smtp.Dial(ctx, "tcp", ln.Addr().String(), &smtp.Options{
				TLSConfig: pki.Client(scripttest.TestName), LMTP: lmtp})
			require.NoError(t, err)
			assert.True(t, res.TLS)
			assert.Equal(t, []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "STARTTLS"}, res.Before.List())
			assert.Equal(t, []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "AUTH PLAIN"}, res.After.List())
			require.NoError(t, res.Conn.WriteLine("QUIT"))
			reply, err := smtp.ReadReply(res.Conn)
			require.NoError(t, err)
			assert.Equal(t, 221, reply.Code)
			tc.Close()
			done, ok := <-accepted
			require.True(t, ok, "no connection accepted")
			r := servertest.Wait(t, done)
			require.NoError(t, r.Err)
			verb := "EHLO"
			if lmtp {
				verb = "LHLO"
			}
			assert.Contains(t, transcript.String(), "C: "+verb+" localhost\nS: 250-mx.example.test\n")
			assert.Contains(t, transcript.String(), "C: STARTTLS\nS: 220 2.0.0 Ready to start TLS\n-- TLS --\n")
		})
	}
}

// A client that stalls after the go-ahead is dropped when its context ends,
// and the listener serves another client meanwhile.
func TestServerStalledClientDoesNotBlockOthers(t *testing.T) {
	pki := scripttest.NewPKI(t)
	srv := newServer(pki)
	srv.Options.HandshakeTimeout = time.Minute // only the context drops the staller
	front := servertest.Front{Serve: srv.Serve, Post: postFor(srv), Greeting: "220 ",
		StartTLS: "STARTTLS", GoAhead: smtp.ReplyGoAhead}
	// The staller reads the go-ahead and falls silent; another client
	// upgrades and quits meanwhile.
	servertest.KeepsServing(t, front, nil, func(t *testing.T, other net.Conn) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tc, res, err := smtp.Upgrade(ctx, other, &smtp.Options{TLSConfig: pki.Client(scripttest.TestName)})
		require.NoError(t, err)
		defer tc.Close()
		assert.True(t, res.TLS)
		require.NoError(t, res.Conn.WriteLine("QUIT"))
		_, err = smtp.ReadReply(res.Conn)
		require.NoError(t, err)
	})
}

// Cancelling the context while the front waits for a command aborts it.
func TestServerCancelWhileIdle(t *testing.T) {
	pki := scripttest.NewPKI(t)
	srv := newServer(pki)
	conn, peer := scripttest.TCP(t, `
		S: 220 mx.example.test ESMTP ready
		C: NOOP
		S: 250 2.0.0 OK
		!eof
	`, servertest.ClientOptions(pki))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := &lineWatcher{w: io.Discard, want: "S: 250 2.0.0 OK", seen: make(chan struct{})}
	srv.Options.Conn = &starttls.Options{Transcript: tr}
	done := serveOn(ctx, srv, conn)
	select {
	case <-tr.seen:
	case <-time.After(5 * time.Second):
		t.Fatal("the NOOP reply was not written within 5s")
	}
	cancel()
	r := servertest.Wait(t, done)
	require.ErrorIs(t, r.Err, context.Canceled)
	require.NoError(t, peer.Wait())
}

func TestServerNilTLSConfig(t *testing.T) {
	conn, peer := scripttest.TCP(t, `!eof`, &scripttest.Options{Role: scripttest.Client})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r := servertest.Wait(t, serveOn(ctx, &smtp.Server{}, conn))
	require.Error(t, r.Err)
	require.NoError(t, peer.Wait())
}

func TestCapabilities(t *testing.T) {
	tests := []struct {
		name string
		opts *smtp.CapabilityOptions
		want []string
	}{
		{"nil is before TLS", nil, []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "STARTTLS"}},
		{"before TLS, password mechanisms hidden", &smtp.CapabilityOptions{Mechanisms: []string{"PLAIN", "login"}},
			[]string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "STARTTLS"}},
		{"before TLS, other mechanisms kept", &smtp.CapabilityOptions{Mechanisms: []string{"SCRAM-SHA-256", "PLAIN"}},
			[]string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "STARTTLS", "AUTH SCRAM-SHA-256"}},
		{"before TLS, plaintext allowed explicitly", &smtp.CapabilityOptions{Mechanisms: []string{"PLAIN", "LOGIN"}, AllowPlaintextAuth: true},
			[]string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "STARTTLS", "AUTH PLAIN LOGIN"}},
		{"after TLS", &smtp.CapabilityOptions{TLS: true, Mechanisms: []string{"PLAIN", "LOGIN"}},
			[]string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "AUTH PLAIN LOGIN"}},
		{"after TLS, no mechanisms", &smtp.CapabilityOptions{TLS: true},
			[]string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"}},
		{"extensions cannot smuggle STARTTLS or AUTH", &smtp.CapabilityOptions{TLS: true,
			Extensions: []string{"SIZE 1000", "starttls", "AUTH PLAIN", "auth=login"}},
			[]string{"SIZE 1000", "auth=login"}},
		{"empty extensions", &smtp.CapabilityOptions{Extensions: []string{}}, []string{"STARTTLS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, smtp.Capabilities(tt.opts).List())
		})
	}
}

func TestWriteReply(t *testing.T) {
	tests := []struct {
		code    int
		texts   []string
		want    string
		wantErr error
	}{
		{250, []string{"mx", "PIPELINING", "STARTTLS"}, "250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n", nil},
		{221, []string{"bye"}, "221 bye\r\n", nil},
		{354, nil, "354\r\n", nil},
		{250, []string{"ok", "evil\r\n250 injected"}, "", starttls.ErrUnsafeArgument},
	}
	for _, tt := range tests {
		conn := scripttest.NewFakeConn(nil)
		c := starttls.NewConn(conn, nil)
		err := smtp.WriteReply(c, tt.code, tt.texts...)
		if tt.wantErr != nil {
			require.ErrorIs(t, err, tt.wantErr)
		} else {
			require.NoError(t, err)
		}
		assert.Equal(t, tt.want, conn.Written())
	}
	c := starttls.NewConn(scripttest.NewFakeConn(nil), nil)
	assert.Error(t, smtp.WriteReply(c, 99, "x"))
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// lineWatcher closes seen once a transcript line equal to want was written.
type lineWatcher struct {
	mu   sync.Mutex
	w    io.Writer
	want string
	seen chan struct{}
	done bool
}

func (l *lineWatcher) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done && strings.TrimSuffix(string(p), "\n") == l.want {
		l.done = true
		close(l.seen)
	}
	return l.w.Write(p)
}
