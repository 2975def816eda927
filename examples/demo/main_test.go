package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/imap"
	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/pop3"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// syncBuffer is a transcript safe for writes from another goroutine.
type syncBuffer = scripttest.SyncBuffer

func TestTour(t *testing.T) {
	var out, errOut syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, nil, &out, &errOut)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
	text := out.String()
	assert.Contains(t, text, "3 of 3 upgraded")
	assert.Equal(t, 3, strings.Count(text, "-- TLS --\n"), "want one TLS switch per protocol")
	assert.Equal(t, 3, strings.Count(text, `certificate verified for "localhost"`))
	for _, want := range []string{"== smtp 127.0.0.1:", "== imap 127.0.0.1:", "== pop3 127.0.0.1:",
		"C: STARTTLS\nS: 220 2.0.0 Ready to start TLS\n-- TLS --\n", "C: STLS\nS: +OK Begin TLS negotiation\n-- TLS --\n"} {
		assert.Contains(t, text, want)
	}
	assert.NotContains(t, text, "FAILED")
	assert.NotContains(t, text, plainResponse(), "secrets must be redacted")
	assert.NotContains(t, text, "PASS demo", "secrets must be redacted")
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args []string
		want int
	}{
		{[]string{"-serve"}, 2},
		{[]string{"-smtp", "127.0.0.1:0"}, 2},
		{[]string{"-nosuchflag"}, 2},
		{[]string{"extra"}, 2},
		{[]string{"-h"}, 0},
	}
	for _, tt := range tests {
		var out, errOut syncBuffer
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		assert.Equal(t, tt.want, run(ctx, tt.args, &out, &errOut), "args %q", tt.args)
		cancel()
	}
}

// demoServer is a running "demo -serve".
type demoServer struct {
	addrs  map[string]string
	certs  string
	stderr *syncBuffer
	stop   func() int // cancels like SIGTERM and returns the exit status
}

// startServe runs "demo -serve" with args in-process and waits for its
// listener lines.
func startServe(t *testing.T, extra ...string) *demoServer {
	t.Helper()
	dir := t.TempDir()
	pr, pw := io.Pipe()
	stderr := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	exit := make(chan int, 1)
	args := append([]string{"-serve", "-certdir", dir}, extra...)
	go func() {
		code := run(ctx, args, pw, stderr)
		pw.Close()
		exit <- code
	}()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	d := &demoServer{addrs: map[string]string{}, certs: dir, stderr: stderr}
	stopped := false
	var code int
	d.stop = func() int {
		if stopped {
			return code
		}
		stopped = true
		cancel()
		// A bounded wait, not a timing: the contract's 5 s rests on the
		// program's own 2 s shutdownGrace, and a wall-time assert would
		// flake on a loaded machine; this bound catches a hang.
		select {
		case code = <-exit:
		case <-time.After(30 * time.Second):
			t.Fatal("demo -serve did not exit within 30 s of the signal")
		}
		for range lines {
		}
		return code
	}
	t.Cleanup(func() { d.stop() })
	want := 3
	if len(extra) > 0 {
		want = len(extra) / 2
	}
	timeout := time.After(10 * time.Second)
	for len(d.addrs) < want {
		select {
		case line, ok := <-lines:
			require.True(t, ok, "demo -serve ended early; stderr:\n%s", stderr.String())
			proto, addr, found := strings.Cut(line, " ")
			require.True(t, found, "unexpected line %q", line)
			d.addrs[proto] = addr
		case <-timeout:
			t.Fatalf("no listener lines within 10s; stderr:\n%s", stderr.String())
		}
	}
	return d
}

func TestServe(t *testing.T) {
	d := startServe(t)
	require.Len(t, d.addrs, 3)
	for _, p := range protocols() {
		assert.True(t, strings.HasPrefix(d.addrs[p], "127.0.0.1:"), "%s listens on %q", p, d.addrs[p])
	}
	roots, err := tlsconf.LoadRoots(filepath.Join(d.certs, "ca.pem"))
	require.NoError(t, err)

	// An idle plaintext client stays connected across the shutdown.
	idle, err := net.Dial("tcp", d.addrs["smtp"])
	require.NoError(t, err)
	t.Cleanup(func() { idle.Close() })

	for _, p := range protocols() {
		t.Run(p, func(t *testing.T) {
			var transcript syncBuffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := clientSession(ctx, p, d.addrs[p], roots, &transcript)
			require.NoError(t, err, "transcript:\n%s", transcript.String())
			assert.True(t, res.TLS)
			assert.NotEmpty(t, res.State.VerifiedChains)
		})
	}

	require.Equal(t, 0, d.stop())
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(idle)
	assert.NoError(t, err, "want the idle client's connection closed by the shutdown")
}

func TestServeOneListener(t *testing.T) {
	d := startServe(t, "-pop3", "127.0.0.1:0")
	require.Len(t, d.addrs, 1)
	assert.Contains(t, d.addrs, "pop3")
	require.Equal(t, 0, d.stop())
}

// TestSessions drives the servers of "demo -serve" with scripted clients:
// the contract's plaintext refusals and the post-TLS logic.
func TestSessions(t *testing.T) {
	d := startServe(t)
	roots, err := tlsconf.LoadRoots(filepath.Join(d.certs, "ca.pem"))
	require.NoError(t, err)
	tests := []struct {
		name, proto, script string
	}{{
		name: "smtp plaintext refusals", proto: "smtp", script: `
			S: 220 localhost ESMTP ready
			C: AUTH PLAIN AGRlbW8AZGVtbw==
			S: 530 5.7.0 Must issue a STARTTLS command first
			C: MAIL FROM:<a@localhost>
			S: 530 5.7.0 Must issue a STARTTLS command first
			C: XFOO
			S: 530 5.7.0 Must issue a STARTTLS command first
			C: STARTTLS x
			S: 501 5.5.4 Syntax error (no parameters allowed)
			C: NOOP
			S: 250 2.0.0 OK
			C: QUIT
			S: 221 2.0.0 localhost closing connection
			!eof
		`,
	}, {
		name: "smtp pipelining behind STARTTLS", proto: "smtp", script: `
			S: 220 localhost ESMTP ready
			C: STARTTLS
			C+ RSET
			S: 554 5.5.0 Commands pipelined behind STARTTLS, closing connection
			!eof
		`,
	}, {
		name: "smtp after TLS", proto: "smtp", script: `
			S: 220 localhost ESMTP ready
			C: EHLO client
			S: 250-localhost
			S: 250-PIPELINING
			S: 250-8BITMIME
			S: 250-ENHANCEDSTATUSCODES
			S: 250 STARTTLS
			C: STARTTLS
			S: 220 2.0.0 Ready to start TLS
			!tls
			C: MAIL FROM:<demo@localhost>
			S: 503 5.5.1 Send EHLO first
			C: AUTH PLAIN AGRlbW8AZGVtbw==
			S: 503 5.5.1 Send EHLO first
			C: EHLO client
			S: 250-localhost
			S: 250-PIPELINING
			S: 250-8BITMIME
			S: 250-ENHANCEDSTATUSCODES
			S: 250-SIZE 10485760
			S: 250 AUTH PLAIN
			C: STARTTLS
			S: 503 5.5.1 TLS already active
			C: AUTH PLAIN AGRlbW8Ad3Jvbmc=
			S: 535 5.7.8 Authentication credentials invalid
			C: AUTH PLAIN AGRlbW8AZGVtbw==
			S: 235 2.7.0 Authentication successful
			C: DATA
			S: 503 5.5.1 Need RCPT before DATA
			C: MAIL FROM:<demo@localhost>
			S: 250 2.1.0 Sender OK
			C: RSET
			S: 250 2.0.0 OK
			C: MAIL FROM:<demo@localhost>
			S: 250 2.1.0 Sender OK
			C: RCPT TO:<demo@localhost>
			S: 250 2.1.5 Recipient OK
			C: DATA
			S: 354 End data with <CR><LF>.<CR><LF>
			C: Subject: x
			C:
			C: ..
			C: .
			S: 250 2.0.0 Message accepted (17 octets) and discarded
			C: RSET
			S: 250 2.0.0 OK
			C: QUIT
			S: 221 2.0.0 localhost closing connection
			!eof
		`,
	}, {
		name: "imap plaintext refusals", proto: "imap", script: `
			S: * OK [CAPABILITY IMAP4rev1 LITERAL- STARTTLS LOGINDISABLED] localhost ready
			C: a LOGIN demo demo
			S: a NO [PRIVACYREQUIRED] TLS required, use STARTTLS first
			C: b AUTHENTICATE PLAIN
			S: b NO [PRIVACYREQUIRED] TLS required, use STARTTLS first
			C: c SELECT INBOX
			S: c BAD Command not allowed before TLS, use STARTTLS first
			C: d STARTTLS x
			S: d BAD STARTTLS takes no arguments
			C: e LOGOUT
			S: * BYE localhost logging out
			S: e OK LOGOUT completed
			!eof
		`,
	}, {
		name: "imap pipelining behind STARTTLS", proto: "imap", script: `
			S: * OK [CAPABILITY IMAP4rev1 LITERAL- STARTTLS LOGINDISABLED] localhost ready
			C: A STARTTLS
			C+ B NOOP
			S: A BAD [CLIENTBUG] Commands pipelined behind STARTTLS, closing connection
			!eof
		`,
	}, {
		name: "imap after TLS", proto: "imap", script: `
			S: * OK [CAPABILITY IMAP4rev1 LITERAL- STARTTLS LOGINDISABLED] localhost ready
			C: a STARTTLS
			S: a OK Begin TLS negotiation now
			!tls
			C: b CAPABILITY
			S: * CAPABILITY IMAP4rev1 LITERAL- SASL-IR AUTH=PLAIN
			S: b OK CAPABILITY completed
			C: c STARTTLS
			S: c BAD TLS already active
			C: d SELECT INBOX
			S: d BAD Log in first
			C: e AUTHENTICATE PLAIN AGRlbW8Ad3Jvbmc=
			S: e NO [AUTHENTICATIONFAILED] Invalid credentials
			C: f AUTHENTICATE PLAIN AGRlbW8AZGVtbw==
			S: f OK [CAPABILITY IMAP4rev1 LITERAL- SASL-IR AUTH=PLAIN] AUTHENTICATE completed
			C: g LIST "" *
			S: * LIST (\HasNoChildren) "/" INBOX
			S: g OK LIST completed
			C: h LIST "" "%y"
			S: h OK LIST completed
			C: i SELECT INBOX
			S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
			S: * 0 EXISTS
			S: * 0 RECENT
			S: * OK [UIDVALIDITY 1] UIDs valid
			S: * OK [UIDNEXT 1] Predicted next UID
			S: * OK [PERMANENTFLAGS ()] No permanent flags permitted
			S: i OK [READ-WRITE] SELECT completed
			C: j SEARCH ALL
			S: * SEARCH
			S: j OK SEARCH completed
			C: k LOGOUT
			S: * BYE localhost logging out
			S: k OK LOGOUT completed
			!eof
		`,
	}, {
		name: "imap LOGIN with SASL-IR and literal", proto: "imap", script: `
			S: * OK [CAPABILITY IMAP4rev1 LITERAL- STARTTLS LOGINDISABLED] localhost ready
			C: a STARTTLS
			S: a OK Begin TLS negotiation now
			!tls
			C: b LOGIN demo {4}
			S: + Ready for literal data
			C: demo
			S: b OK [CAPABILITY IMAP4rev1 LITERAL- SASL-IR AUTH=PLAIN] LOGIN completed
			C: c EXAMINE inbox
			S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
			S: * 0 EXISTS
			S: * 0 RECENT
			S: * OK [UIDVALIDITY 1] UIDs valid
			S: * OK [UIDNEXT 1] Predicted next UID
			S: * OK [PERMANENTFLAGS ()] No permanent flags permitted
			S: c OK [READ-ONLY] EXAMINE completed
			C: d STATUS INBOX (MESSAGES UIDNEXT)
			S: * STATUS INBOX (MESSAGES 0 UIDNEXT 1)
			S: d OK STATUS completed
			C: e LOGOUT
			S: * BYE localhost logging out
			S: e OK LOGOUT completed
		`,
	}, {
		name: "pop3 plaintext refusals", proto: "pop3", script: `
			S: +OK localhost POP3 ready
			C: USER demo
			S: -ERR [AUTH] TLS required, use STLS first
			C: PASS demo
			S: -ERR [AUTH] TLS required, use STLS first
			C: STAT
			S: -ERR Command not permitted before TLS, use STLS first
			C: STLS x
			S: -ERR STLS takes no arguments
			C: QUIT
			S: +OK localhost POP3 server signing off
			!eof
		`,
	}, {
		name: "pop3 pipelining behind STLS", proto: "pop3", script: `
			S: +OK localhost POP3 ready
			C: STLS
			C+ CAPA
			S: -ERR Commands pipelined behind STLS, closing connection
			!eof
		`,
	}, {
		name: "pop3 after TLS", proto: "pop3", script: `
			S: +OK localhost POP3 ready
			C: STLS
			S: +OK Begin TLS negotiation
			!tls
			C: CAPA
			S: +OK Capability list follows
			S: UIDL
			S: RESP-CODES
			S: AUTH-RESP-CODE
			S: USER
			S: SASL PLAIN
			S: .
			C: STLS
			S: -ERR Command not permitted when TLS active
			C: STAT
			S: -ERR Command not valid in the AUTHORIZATION state
			C: USER demo
			S: +OK Send PASS
			C: PASS wrong
			S: -ERR [AUTH] Invalid credentials
			C: AUTH PLAIN AGRlbW8AZGVtbw==
			S: +OK Logged in, maildrop has 0 messages
			C: STAT
			S: +OK 0 0
			C: LIST
			S: +OK 0 messages
			S: .
			C: UIDL
			S: +OK 0 messages
			S: .
			C: RETR 1
			S: -ERR No such message
			C: QUIT
			S: +OK localhost signing off
			!eof
		`,
	}, {
		name: "smtp http request before tls", proto: "smtp", script: `
			S: 220 localhost ESMTP ready
			C: POST /x HTTP/1.1
			C: Host: localhost
			!eof
		`,
	}, {
		name: "smtp http request right after tls", proto: "smtp", script: `
			S: 220 localhost ESMTP ready
			C: STARTTLS
			S: 220 2.0.0 Ready to start TLS
			!tls
			C: GET / HTTP/1.1
			C: Host: localhost
			!eof
		`,
	}, {
		name: "imap http request before tls", proto: "imap", script: `
			S: * OK [CAPABILITY {_} {_} {_} {_}] localhost ready
			C: GET / HTTP/1.1
			!eof
		`,
	}, {
		name: "imap http request right after tls", proto: "imap", script: `
			S: * OK [CAPABILITY {_} {_} {_} {_}] localhost ready
			C: a STARTTLS
			S: a OK Begin TLS negotiation now
			!tls
			C: POST /x HTTP/1.1
			C: Host: localhost
			!eof
		`,
	}, {
		name: "pop3 http request before tls", proto: "pop3", script: `
			S: +OK localhost POP3 ready
			C: GET / HTTP/1.1
			!eof
		`,
	}, {
		name: "pop3 http request right after tls", proto: "pop3", script: `
			S: +OK localhost POP3 ready
			C: STLS
			S: +OK Begin TLS negotiation
			!tls
			C: PUT /x HTTP/1.0
			!eof
		`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", d.addrs[tt.proto])
			require.NoError(t, err)
			t.Cleanup(func() { conn.Close() })
			peer := scripttest.Start(t, conn, tt.script, &scripttest.Options{
				Role: scripttest.Client, TLSConfig: tlsconf.Client(hostname, roots)})
			require.NoError(t, peer.Wait())
		})
	}
}

// TestContinuations checks AUTH PLAIN without an initial response: the
// server's empty challenge ends in a space, which a script cannot express.
func TestContinuations(t *testing.T) {
	d := startServe(t)
	roots, err := tlsconf.LoadRoots(filepath.Join(d.certs, "ca.pem"))
	require.NoError(t, err)
	tests := []struct {
		proto, auth, challenge, cancelReply, okPrefix string
	}{
		{"smtp", "AUTH PLAIN", "334 ", "501 5.0.0 Authentication cancelled", "235 "},
		{"imap", "x AUTHENTICATE PLAIN", "+ ", "x BAD Authentication cancelled", "x OK "},
		{"pop3", "AUTH PLAIN", "+ ", "-ERR Authentication cancelled", "+OK "},
	}
	for _, tt := range tests {
		t.Run(tt.proto, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cfg := tlsconf.Client(hostname, roots)
			var tc interface{ Close() error }
			var c *starttls.Conn
			switch tt.proto {
			case "smtp":
				conn, res, err := smtp.Dial(ctx, "tcp", d.addrs["smtp"], &smtp.Options{TLSConfig: cfg, Mode: starttls.StartTLS})
				require.NoError(t, err)
				tc, c = conn, res.Conn
			case "imap":
				conn, res, err := imap.Dial(ctx, "tcp", d.addrs["imap"], &imap.Options{TLSConfig: cfg, Mode: starttls.StartTLS})
				require.NoError(t, err)
				tc, c = conn, res.Conn
			case "pop3":
				conn, res, err := pop3.Dial(ctx, "tcp", d.addrs["pop3"], &pop3.Options{TLSConfig: cfg, Mode: starttls.StartTLS})
				require.NoError(t, err)
				tc, c = conn, res.Conn
			}
			t.Cleanup(func() { tc.Close() })
			c.SetDeadline(time.Now().Add(5 * time.Second))
			readLine := func() string {
				line, err := c.ReadLine()
				require.NoError(t, err)
				return string(line)
			}
			// Cancelled, then completed.
			require.NoError(t, c.WriteLine(tt.auth))
			assert.Equal(t, tt.challenge, readLine())
			require.NoError(t, c.WriteLine("*"))
			assert.Equal(t, tt.cancelReply, readLine())
			require.NoError(t, c.WriteLine(tt.auth))
			assert.Equal(t, tt.challenge, readLine())
			require.NoError(t, c.WriteLine(plainResponse()))
			got := readLine()
			assert.True(t, strings.HasPrefix(got, tt.okPrefix), "got %q, want %q...", got, tt.okPrefix)
		})
	}
}

func TestMatchMailbox(t *testing.T) {
	tests := []struct {
		pattern string
		want    bool
	}{
		{"*", true}, {"%", true}, {"INBOX", true}, {"inbox", true}, {"IN*", true}, {"I%X", true},
		{"", false}, {"INBOX/*", false}, {"x*", false}, {"INBOXX", false},
		{strings.Repeat("*", 4000) + "Y", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, matchMailbox(tt.pattern, "INBOX"), "pattern %q", tt.pattern)
	}
	assert.False(t, matchMailbox("%", "a/b"))
	assert.True(t, matchMailbox("*", "a/b"))
}

func TestCheckPlain(t *testing.T) {
	tests := []struct {
		in      string
		ok      bool
		wantErr bool
	}{
		{plainResponse(), true, false},
		{"ZGVtbwBkZW1vAGRlbW8=", true, false}, // authzid demo
		{"eABkZW1vAGRlbW8=", false, false},    // authzid x
		{"AGRlbW8Ad3Jvbmc=", false, false},
		{"=", false, true},
		{"!!!", false, true},
	}
	for _, tt := range tests {
		ok, err := checkPlain(tt.in)
		assert.Equal(t, tt.ok, ok, tt.in)
		assert.Equal(t, tt.wantErr, err != nil, tt.in)
	}
}

// TestServePipelinedSplitWrites: a command sent a few milliseconds after
// STARTTLS (STLS), so that it arrives after the go-ahead where the
// ClientHello belongs, is never answered: the handshake fails and the
// connection is closed.
func TestServePipelinedSplitWrites(t *testing.T) {
	d := startServe(t)
	for _, tc := range []struct{ proto, script string }{
		{"smtp", "S: 220 localhost ESMTP ready\nC: STARTTLS\nS: 220 2.0.0 Ready to start TLS\n!sleep 5ms\nC: RSET\n!eof"},
		{"smtp", "S: 220 localhost ESMTP ready\nC: STARTTLS\nS: 220 2.0.0 Ready to start TLS\n!sleep 5ms\nC: MAIL FROM:<a@localhost>\nC+ RCPT TO:<b@localhost>\nC+ DATA\n!eof"},
		{"imap", "S: * OK [CAPABILITY IMAP4rev1 LITERAL- STARTTLS LOGINDISABLED] localhost ready\nC: a STARTTLS\nS: a OK Begin TLS negotiation now\n!sleep 5ms\nC: b LOGIN demo demo\n!eof"},
		{"pop3", "S: +OK {_} {_} ready\nC: STLS\nS: +OK Begin TLS negotiation\n!sleep 5ms\nC: USER demo\n!eof"},
	} {
		t.Run(tc.proto, func(t *testing.T) {
			conn, err := net.Dial("tcp", d.addrs[tc.proto])
			require.NoError(t, err)
			t.Cleanup(func() { conn.Close() })
			peer := scripttest.Start(t, conn, tc.script, &scripttest.Options{Role: scripttest.Client})
			require.NoError(t, peer.Wait())
		})
	}
}

// TestServeShutdownBusy: SIGTERM (the context ending) makes -serve exit 0
// within the contract's 5 s even with clients mid-handshake, mid-DATA, idle
// inside TLS and idle before TLS; each of their connections is closed. The
// clients are driven on the test goroutine, so that each has read the last
// reply before its stall when the signal comes.
func TestServeShutdownBusy(t *testing.T) {
	d := startServe(t)
	roots, err := tlsconf.LoadRoots(filepath.Join(d.certs, "ca.pem"))
	require.NoError(t, err)
	// step writes line (when not empty) and reads one line that must start
	// with want.
	type stalled struct {
		conn net.Conn
		r    *bufio.Reader
	}
	step := func(s *stalled, line, want string) {
		t.Helper()
		if line != "" {
			_, err := io.WriteString(s.conn, line+"\r\n")
			require.NoError(t, err)
		}
		got, err := s.r.ReadString('\n')
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(got, want), "after %q: got %q, want %q...", line, got, want)
	}
	dial := func(proto string) *stalled {
		conn, err := net.Dial("tcp", d.addrs[proto])
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
		return &stalled{conn, bufio.NewReader(conn)}
	}
	startTLS := func(s *stalled) {
		t.Helper()
		require.Zero(t, s.r.Buffered())
		tc := tls.Client(s.conn, tlsconf.Client(hostname, roots))
		require.NoError(t, tc.Handshake())
		s.conn, s.r = tc, bufio.NewReader(tc)
	}
	smtpEHLO := func(s *stalled) {
		t.Helper()
		for {
			got, err := s.r.ReadString('\n')
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(got, "250"), got)
			if strings.HasPrefix(got, "250 ") {
				return
			}
		}
	}

	// SMTP: the go-ahead, then no ClientHello.
	handshake := dial("smtp")
	step(handshake, "", "220 ")
	step(handshake, "STARTTLS", "220 ")
	// SMTP: inside TLS, half a message after DATA.
	data := dial("smtp")
	step(data, "", "220 ")
	step(data, "STARTTLS", "220 ")
	startTLS(data)
	_, err = io.WriteString(data.conn, "EHLO client\r\n")
	require.NoError(t, err)
	smtpEHLO(data)
	step(data, "MAIL FROM:<demo@localhost>", "250 ")
	step(data, "RCPT TO:<demo@localhost>", "250 ")
	step(data, "DATA", "354 ")
	_, err = io.WriteString(data.conn, "Subject: half a message\r\n")
	require.NoError(t, err)
	// IMAP: idle inside TLS.
	imapIdle := dial("imap")
	step(imapIdle, "", "* OK ")
	step(imapIdle, "a STARTTLS", "a OK ")
	startTLS(imapIdle)
	step(imapIdle, "b NOOP", "b OK ")
	// POP3: idle before TLS.
	popIdle := dial("pop3")
	step(popIdle, "", "+OK ")

	require.Equal(t, 0, d.stop())
	for i, s := range []*stalled{handshake, data, imapIdle, popIdle} {
		require.NoError(t, s.conn.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, err := io.Copy(io.Discard, s.r)
		var ne net.Error
		assert.False(t, errors.As(err, &ne) && ne.Timeout(), "client %d: want its connection closed by the shutdown, got %v", i, err)
	}
}
