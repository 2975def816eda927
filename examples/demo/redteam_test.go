package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
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
	"github.com/tlsup/tlsup/pop3"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// This file is a red-team pass over "demo -serve": adversarial clients
// built from the published STARTTLS attack classes (CVE-2011-0411 and its
// siblings: commands pipelined behind STARTTLS in the same write or a
// moment later; the ALPACA cross-protocol requests; commands that must
// wait for TLS; over-long lines), each a table row named after its attack,
// checked against contracts/demo.md.

// rtClient is an adversarial client: raw writes, bounded reads.
type rtClient struct {
	t     *testing.T
	conn  net.Conn
	r     *bufio.Reader
	roots *x509.CertPool
}

func dialRedteam(t *testing.T, addr string, roots *x509.CertPool) *rtClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return &rtClient{t: t, conn: conn, r: bufio.NewReader(conn), roots: roots}
}

// send writes raw in one write.
func (c *rtClient) send(raw string) {
	c.t.Helper()
	require.NoError(c.t, c.conn.SetWriteDeadline(time.Now().Add(5*time.Second)))
	_, err := io.WriteString(c.conn, raw)
	require.NoError(c.t, err)
}

// sendMaybe writes raw in one write; the server may already have closed
// (a bound it enforces while the write is under way).
func (c *rtClient) sendMaybe(raw string) {
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c.conn, raw)
}

// line reads one line, without its CRLF, within 5 seconds.
func (c *rtClient) line() string {
	c.t.Helper()
	require.NoError(c.t, c.conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	l, err := c.r.ReadString('\n')
	require.NoError(c.t, err, "got %q", l)
	return strings.TrimSuffix(l, "\r\n")
}

// expect reads lines until one starts with prefix; the lines before it
// must start with skip (untagged or continued lines).
func (c *rtClient) expect(prefix string, skip ...string) string {
	c.t.Helper()
	for range 100 {
		l := c.line()
		if strings.HasPrefix(l, prefix) {
			return l
		}
		ok := false
		for _, s := range skip {
			ok = ok || strings.HasPrefix(l, s)
		}
		require.True(c.t, ok, "got %q, want %q...", l, prefix)
	}
	c.t.Fatalf("no %q within 100 lines", prefix)
	return ""
}

// rest reads until the server closes (within 5 seconds) and returns what
// came; it fails the test if the server keeps the connection open.
func (c *rtClient) rest() string {
	c.t.Helper()
	require.NoError(c.t, c.conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	b, err := io.ReadAll(c.r)
	var ne net.Error
	require.False(c.t, errors.As(err, &ne) && ne.Timeout(), "want the connection closed; got %q so far", b)
	return string(b)
}

// startTLS runs the client handshake; bytes already buffered fail it.
func (c *rtClient) startTLS() {
	c.t.Helper()
	require.Zero(c.t, c.r.Buffered(), "bytes behind the go-ahead")
	tc := tls.Client(c.conn, tlsconf.Client(hostname, c.roots))
	require.NoError(c.t, tc.SetDeadline(time.Now().Add(5*time.Second)))
	require.NoError(c.t, tc.Handshake())
	require.NoError(c.t, tc.SetDeadline(time.Time{}))
	c.conn, c.r = tc, bufio.NewReader(tc)
}

// noTLS checks that the server does not start TLS: either it has closed,
// or a handshake fails.
func (c *rtClient) noTLS() {
	c.t.Helper()
	tc := tls.Client(c.conn, tlsconf.Client(hostname, c.roots))
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	assert.Error(c.t, tc.Handshake(), "the server must not start TLS")
}

// refusedPipelined checks the contract's answer to bytes pipelined behind
// STARTTLS: an error reply and no TLS, or close; never the go-ahead, and
// never an answer to the pipelined command.
func (c *rtClient) refusedPipelined(errPrefix, goAhead string) {
	c.t.Helper()
	got := c.rest()
	assert.NotContains(c.t, got, goAhead, "no go-ahead with bytes behind STARTTLS")
	if got != "" {
		lines := strings.Split(strings.TrimSuffix(got, "\r\n"), "\r\n")
		assert.Len(c.t, lines, 1, "one error reply, nothing answering the pipelined bytes: %q", got)
		assert.True(c.t, strings.HasPrefix(lines[0], errPrefix), "got %q, want %q...", lines[0], errPrefix)
	}
	c.noTLS()
}

// silentClose checks that the server closes without writing a byte (the
// ALPACA rule: no answer a browser could use).
func (c *rtClient) silentClose() {
	c.t.Helper()
	assert.Empty(c.t, c.rest(), "closed without a reply")
}

// afterGoAhead checks what the server does with bytes that arrive after
// the go-ahead, where the ClientHello belongs: no plaintext answer, at
// most a TLS alert, then close.
func (c *rtClient) afterGoAhead() {
	c.t.Helper()
	got := c.rest()
	if got != "" {
		assert.Equal(c.t, byte(0x15), got[0], "only a TLS alert may follow, got %q", got)
	}
}

// rtSetup are the pieces a row needs for one protocol.
type rtProto struct {
	name     string
	greeting string // prefix of the greeting's last line
	// tag makes a command line: the IMAP tag is added.
	tag      func(tag, cmd string) string
	starttls string
	goAhead  string // prefix
	errReply string // prefix of a refusal, for a given tag "x"
	// discover sends the capability command and returns the list.
	discover func(c *rtClient) []string
}

func rtProtos() map[string]rtProto {
	return map[string]rtProto{
		"smtp": {
			name: "smtp", greeting: "220 ",
			tag:      func(_, cmd string) string { return cmd },
			starttls: "STARTTLS", goAhead: "220 ", errReply: "5",
			discover: func(c *rtClient) []string {
				c.send("EHLO client\r\n")
				var caps []string
				for range 100 {
					l := c.line()
					require.True(c.t, strings.HasPrefix(l, "250"), l)
					caps = append(caps, l[4:])
					if l[3] == ' ' {
						return caps[1:]
					}
				}
				return nil
			},
		},
		"imap": {
			name: "imap", greeting: "* OK ",
			tag:      func(tag, cmd string) string { return tag + " " + cmd },
			starttls: "x STARTTLS", goAhead: "x OK ", errReply: "x BAD",
			discover: func(c *rtClient) []string {
				c.send("d CAPABILITY\r\n")
				l := c.expect("* CAPABILITY ")
				c.expect("d OK ")
				return strings.Fields(strings.TrimPrefix(l, "* CAPABILITY "))
			},
		},
		"pop3": {
			name: "pop3", greeting: "+OK ",
			tag:      func(_, cmd string) string { return cmd },
			starttls: "STLS", goAhead: "+OK ", errReply: "-ERR",
			discover: func(c *rtClient) []string {
				c.send("CAPA\r\n")
				c.expect("+OK")
				var caps []string
				for range 100 {
					l := c.line()
					if l == "." {
						return caps
					}
					caps = append(caps, l)
				}
				return nil
			},
		},
	}
}

// TestRedteamServe drives "demo -serve" with adversarial clients.
func TestRedteamServe(t *testing.T) {
	d := startServe(t)
	roots, err := tlsconf.LoadRoots(filepath.Join(d.certs, "ca.pem"))
	require.NoError(t, err)
	protos := rtProtos()
	all := []string{"smtp", "imap", "pop3"}
	type row struct {
		name   string
		protos []string
		run    func(c *rtClient, p rtProto)
	}
	// switchTLS sends STARTTLS, reads the go-ahead and handshakes;
	// upgrade reads the greeting first.
	switchTLS := func(c *rtClient, p rtProto) {
		c.t.Helper()
		c.send(p.starttls + "\r\n")
		c.expect(p.goAhead)
		c.startTLS()
	}
	upgrade := func(c *rtClient, p rtProto) {
		c.t.Helper()
		c.expect(p.greeting, "220-")
		switchTLS(c, p)
	}
	pipelined := func(behind string) func(c *rtClient, p rtProto) {
		return func(c *rtClient, p rtProto) {
			c.expect(p.greeting, "220-")
			c.send(p.starttls + "\r\n" + behind)
			c.refusedPipelined(p.errReply, p.goAhead)
		}
	}
	noopOK := map[string]string{"smtp": "250 ", "imap": "n OK ", "pop3": "+OK"}
	rows := []row{
		// CVE-2011-0411 class: bytes in the same write as STARTTLS.
		{"pipelined-command", all, func(c *rtClient, p rtProto) {
			pipelined(p.tag("y", "NOOP")+"\r\n")(c, p)
		}},
		{"pipelined-mail-transaction", []string{"smtp"}, pipelined("MAIL FROM:<a@localhost>\r\nRCPT TO:<b@localhost>\r\nDATA\r\n")},
		{"pipelined-login", []string{"imap"}, pipelined("y LOGIN demo demo\r\n")},
		{"pipelined-user-pass", []string{"pop3"}, pipelined("USER demo\r\nPASS demo\r\n")},
		{"pipelined-partial-line", all, pipelined("NOO")},
		{"pipelined-crlf-only", all, pipelined("\r\n")},
		{"pipelined-nul", all, pipelined("\x00")},
		{"pipelined-clienthello-bytes", all, pipelined("\x16\x03\x01\x00\x05hello")},
		{"pipelined-bare-lf", all, func(c *rtClient, p rtProto) {
			c.expect(p.greeting, "220-")
			c.send(p.starttls + "\n" + p.tag("y", "NOOP") + "\n")
			c.refusedPipelined(p.errReply, p.goAhead)
		}},
		{"pipelined-lowercase", all, func(c *rtClient, p rtProto) {
			c.expect(p.greeting, "220-")
			c.send(strings.ToLower(p.starttls) + "\r\n" + p.tag("y", "noop") + "\r\n")
			c.refusedPipelined(p.errReply, p.goAhead)
		}},
		{"pipelined-after-discovery", all, func(c *rtClient, p rtProto) {
			c.expect(p.greeting, "220-")
			p.discover(c)
			c.send(p.starttls + "\r\n" + p.tag("y", "NOOP") + "\r\n")
			c.refusedPipelined(p.errReply, p.goAhead)
		}},
		// Commands pipelined before STARTTLS are fine; only bytes behind
		// it are refused.
		{"pipelined-before-starttls", all, func(c *rtClient, p rtProto) {
			c.expect(p.greeting, "220-")
			c.send(p.tag("n", "NOOP") + "\r\n" + p.starttls + "\r\n")
			c.expect(noopOK[p.name])
			c.expect(p.goAhead)
			c.startTLS()
			assert.NotEmpty(c.t, p.discover(c))
		}},
		{"starttls-split-across-writes", all, func(c *rtClient, p rtProto) {
			c.expect(p.greeting, "220-")
			c.send(p.starttls[:4])
			time.Sleep(20 * time.Millisecond)
			c.send(p.starttls[4:] + "\r\n")
			c.expect(p.goAhead)
			c.startTLS()
			assert.NotEmpty(c.t, p.discover(c))
		}},
		// Bytes a moment later, before the ClientHello: read as a TLS
		// record, never answered in plaintext or inside TLS.
		{"later-write-command", all, func(c *rtClient, p rtProto) {
			c.expect(p.greeting, "220-")
			c.send(p.starttls + "\r\n")
			c.expect(p.goAhead)
			c.send(p.tag("y", "NOOP") + "\r\n")
			c.afterGoAhead()
		}},
		{"later-write-http", all, func(c *rtClient, p rtProto) {
			c.expect(p.greeting, "220-")
			c.send(p.starttls + "\r\n")
			c.expect(p.goAhead)
			c.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
			c.afterGoAhead()
		}},
		// A slow client is not dropped early (the bound is 10 s).
		{"handshake-after-pause", all, func(c *rtClient, p rtProto) {
			c.expect(p.greeting, "220-")
			c.send(p.starttls + "\r\n")
			c.expect(p.goAhead)
			time.Sleep(300 * time.Millisecond)
			c.startTLS()
			assert.NotEmpty(c.t, p.discover(c))
		}},
		{"idle-before-first-command", all, func(c *rtClient, p rtProto) {
			c.expect(p.greeting, "220-")
			time.Sleep(300 * time.Millisecond)
			c.send(p.tag("n", "NOOP") + "\r\n")
			c.expect(noopOK[p.name])
		}},
		// STARTTLS with an argument: 501, BAD, -ERR; then a clean one works.
		{"starttls-with-argument", all, func(c *rtClient, p rtProto) {
			c.expect(p.greeting, "220-")
			c.send(p.starttls + " x\r\n")
			l := c.line()
			want := map[string]string{"smtp": "501 ", "imap": "x BAD ", "pop3": "-ERR "}[p.name]
			assert.True(c.t, strings.HasPrefix(l, want), "got %q, want %q...", l, want)
			c.send(p.starttls + "\r\n")
			c.expect(p.goAhead)
			c.startTLS()
			assert.NotEmpty(c.t, p.discover(c))
		}},
		// STARTTLS once TLS is on: 503, BAD, -ERR; the session goes on.
		{"starttls-after-tls", all, func(c *rtClient, p rtProto) {
			upgrade(c, p)
			c.send(p.starttls + "\r\n")
			l := c.line()
			want := map[string]string{"smtp": "503 ", "imap": "x BAD ", "pop3": "-ERR "}[p.name]
			assert.True(c.t, strings.HasPrefix(l, want), "got %q, want %q...", l, want)
			caps := p.discover(c)
			assert.NotContains(c.t, caps, map[string]string{"smtp": "STARTTLS", "imap": "STARTTLS", "pop3": "STLS"}[p.name])
		}},
		{"starttls-after-tls-pipelined", all, func(c *rtClient, p rtProto) {
			upgrade(c, p)
			// POP3 has no NOOP before login: CAPA answers +OK too.
			next := map[string]string{"smtp": "NOOP", "imap": "n NOOP", "pop3": "CAPA"}[p.name]
			c.send(p.starttls + "\r\n" + next + "\r\n")
			want := map[string]string{"smtp": "503 ", "imap": "x BAD ", "pop3": "-ERR "}[p.name]
			l := c.line()
			assert.True(c.t, strings.HasPrefix(l, want), "got %q, want %q...", l, want)
			l = c.line()
			assert.True(c.t, strings.HasPrefix(l, noopOK[p.name]), "got %q", l)
		}},
		// Capabilities: STARTTLS before TLS, never after; no plaintext
		// password before TLS.
		{"capabilities-before-and-after", all, func(c *rtClient, p rtProto) {
			c.expect(p.greeting, "220-")
			before := p.discover(c)
			switch p.name {
			case "smtp":
				assert.Contains(c.t, before, "STARTTLS")
				for _, cap := range before {
					assert.False(c.t, strings.HasPrefix(strings.ToUpper(cap), "AUTH"), "AUTH before TLS: %q", cap)
				}
			case "imap":
				assert.Contains(c.t, before, "STARTTLS")
				assert.Contains(c.t, before, "LOGINDISABLED")
				for _, cap := range before {
					assert.False(c.t, strings.HasPrefix(strings.ToUpper(cap), "AUTH="), "AUTH= before TLS: %q", cap)
				}
			case "pop3":
				assert.Contains(c.t, before, "STLS")
				assert.NotContains(c.t, before, "USER")
				for _, cap := range before {
					assert.False(c.t, strings.HasPrefix(strings.ToUpper(cap), "SASL") && strings.Contains(strings.ToUpper(cap), "PLAIN"), "SASL PLAIN before TLS: %q", cap)
				}
			}
			c.send(p.starttls + "\r\n")
			c.expect(p.goAhead)
			c.startTLS()
			after := p.discover(c)
			switch p.name {
			case "smtp":
				assert.NotContains(c.t, after, "STARTTLS")
				assert.Contains(c.t, after, "AUTH PLAIN")
			case "imap":
				assert.NotContains(c.t, after, "STARTTLS")
				assert.NotContains(c.t, after, "LOGINDISABLED")
				assert.Contains(c.t, after, "AUTH=PLAIN")
			case "pop3":
				assert.NotContains(c.t, after, "STLS")
				assert.Contains(c.t, after, "USER")
				assert.Contains(c.t, after, "SASL PLAIN")
			}
		}},
		// Commands before STARTTLS get the protocol's "TLS first".
		{"smtp-commands-before-tls", []string{"smtp"}, func(c *rtClient, p rtProto) {
			c.expect(p.greeting)
			for _, cmd := range []string{"MAIL FROM:<a@localhost>", "mail from:<a@localhost>", "RCPT TO:<b@localhost>", "DATA",
				"AUTH PLAIN AGRlbW8AZGVtbw==", "AUTH LOGIN", "auth plain", "VRFY demo", "EXPN list", "HELP", "BDAT 10 LAST",
				"XFOO", "ETRN x", "TURN", "ATRN", "SEND FROM:<a@localhost>", "", " "} {
				c.send(cmd + "\r\n")
				assert.Equal(c.t, "530 5.7.0 Must issue a STARTTLS command first", c.line(), "before TLS: %q", cmd)
			}
			for cmd, want := range map[string]string{"NOOP": "250 ", "RSET": "250 ", "HELO client": "250 "} {
				c.send(cmd + "\r\n")
				assert.True(c.t, strings.HasPrefix(c.line(), want), cmd)
			}
			c.send("QUIT\r\n")
			assert.True(c.t, strings.HasPrefix(c.line(), "221 "))
			c.rest()
		}},
		{"imap-commands-before-tls", []string{"imap"}, func(c *rtClient, p rtProto) {
			c.expect(p.greeting)
			for _, cmd := range []string{"a LOGIN demo demo", "b AUTHENTICATE PLAIN", "c authenticate plain AGRlbW8AZGVtbw==",
				"d login \"demo\" \"demo\"", "e LOGIN demo {4}"} {
				c.send(cmd + "\r\n")
				tag := strings.Fields(cmd)[0]
				assert.Equal(c.t, tag+" NO [PRIVACYREQUIRED] TLS required, use STARTTLS first", c.line(),
					"before TLS: %q (no continuation inviting the password)", cmd)
			}
			for _, cmd := range []string{"f SELECT INBOX", "g LIST \"\" *", "h ENABLE UTF8=ACCEPT", "i ID NIL", "j EXAMINE INBOX",
				"k STATUS INBOX (MESSAGES)", "l APPEND INBOX {1}", "m XFOO"} {
				c.send(cmd + "\r\n")
				l := c.line()
				tag := strings.Fields(cmd)[0]
				assert.True(c.t, strings.HasPrefix(l, tag+" BAD ") || strings.HasPrefix(l, tag+" NO "), "before TLS: %q got %q", cmd, l)
			}
		}},
		{"pop3-commands-before-tls", []string{"pop3"}, func(c *rtClient, p rtProto) {
			c.expect(p.greeting)
			for _, cmd := range []string{"USER demo", "user demo", "PASS demo", "APOP demo c4c9334bac560ecc979e58001b3e22fb",
				"AUTH PLAIN AGRlbW8AZGVtbw==", "AUTH PLAIN", "AUTH", "STAT", "LIST", "RETR 1", "UIDL", "TOP 1 1", "DELE 1", "RSET", "XFOO"} {
				c.send(cmd + "\r\n")
				l := c.line()
				assert.True(c.t, strings.HasPrefix(l, "-ERR"), "before TLS: %q got %q", cmd, l)
			}
		}},
		// Literals the front will not wait for: a synchronizing one is
		// refused without the continuation that would invite it, a
		// non-synchronizing one over the bound ends the session.
		{"imap-huge-literal-before-tls", []string{"imap"}, func(c *rtClient, p rtProto) {
			c.expect(p.greeting)
			c.send("a LOGIN demo {4294967296}\r\n")
			l := c.line()
			assert.True(c.t, strings.HasPrefix(l, "a NO ") || strings.HasPrefix(l, "a BAD "), "no continuation: %q", l)
			c.send("b APPEND INBOX {99999999+}\r\n")
			got := c.rest()
			assert.NotContains(c.t, got, "b OK")
		}},
		{"imap-huge-literal-inside-tls", []string{"imap"}, func(c *rtClient, p rtProto) {
			upgrade(c, p)
			c.send("a LOGIN demo {4294967296}\r\n")
			l := c.line()
			assert.True(c.t, strings.HasPrefix(l, "a NO ") || strings.HasPrefix(l, "a BAD "), "no continuation: %q", l)
			c.send("b NOOP\r\n")
			c.expect("b OK ")
			c.send("c LOGIN demo {99999999+}\r\n")
			got := c.rest()
			assert.NotContains(c.t, got, "c OK")
		}},
		// More refused commands than the bound close the session.
		{"too-many-errors-before-tls", all, func(c *rtClient, p rtProto) {
			c.expect(p.greeting, "220-")
			var sent int
			for sent = 0; sent < 120; sent++ {
				if _, err := io.WriteString(c.conn, p.tag("z", "XFOO")+"\r\n"); err != nil {
					break
				}
			}
			got := c.rest()
			assert.Less(c.t, strings.Count(got, "\r\n"), 120, "closed before answering them all")
		}},
		// ALPACA: an HTTP request where a command belongs gets no byte.
		{"http-first-line", all, func(c *rtClient, p rtProto) {
			c.expect(p.greeting, "220-")
			c.send("POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n\r\nNOOP")
			c.silentClose()
		}},
		{"http-after-commands", all, func(c *rtClient, p rtProto) {
			c.expect(p.greeting, "220-")
			c.send(p.tag("n", "NOOP") + "\r\n")
			c.line()
			c.send("GET /?x=" + strings.Repeat("A", 100) + " HTTP/1.0\r\n\r\n")
			c.silentClose()
		}},
		{"http-options-asterisk", all, func(c *rtClient, p rtProto) {
			c.expect(p.greeting, "220-")
			c.send("OPTIONS * HTTP/1.1\r\n")
			c.silentClose()
		}},
		{"http-inside-tls-first", all, func(c *rtClient, p rtProto) {
			upgrade(c, p)
			c.send("PUT /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
			c.silentClose()
		}},
		{"http-inside-tls-later", all, func(c *rtClient, p rtProto) {
			upgrade(c, p)
			p.discover(c)
			c.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
			c.silentClose()
		}},
		// Over-long lines: an error and close, before and inside TLS.
		{"long-line-before-tls", all, func(c *rtClient, p rtProto) {
			c.expect(p.greeting, "220-")
			c.sendMaybe(strings.Repeat("A", 5000) + "\r\n")
			got := c.rest()
			assert.NotContains(c.t, got, "\r\n\r\n")
			assert.LessOrEqual(c.t, strings.Count(got, "\r\n"), 1, "at most one farewell: %q", got)
		}},
		{"long-line-unterminated-before-tls", all, func(c *rtClient, p rtProto) {
			c.expect(p.greeting, "220-")
			c.sendMaybe(strings.Repeat("A", 70000))
			got := c.rest()
			assert.LessOrEqual(c.t, strings.Count(got, "\r\n"), 1, "at most one farewell: %q", got)
		}},
		{"long-starttls-line", all, func(c *rtClient, p rtProto) {
			c.expect(p.greeting, "220-")
			c.sendMaybe(p.starttls + strings.Repeat(" ", 5000) + "\r\n")
			got := c.rest()
			assert.NotContains(c.t, got, p.goAhead)
			c.noTLS()
		}},
		{"long-line-inside-tls", all, func(c *rtClient, p rtProto) {
			upgrade(c, p)
			c.sendMaybe(p.tag("n", "NOOP ") + strings.Repeat("A", 70000) + "\r\n")
			got := c.rest()
			assert.LessOrEqual(c.t, strings.Count(got, "\r\n"), 1, "at most one farewell: %q", got)
		}},
		// NUL and bare CR in a command: refused, never a go-ahead.
		{"nul-in-starttls", all, func(c *rtClient, p rtProto) {
			c.expect(p.greeting, "220-")
			c.send(p.starttls + "\x00\r\n")
			l := c.line()
			assert.False(c.t, strings.HasPrefix(l, p.goAhead), "got %q", l)
			c.noTLS()
		}},
		{"bare-cr-in-starttls", all, func(c *rtClient, p rtProto) {
			c.expect(p.greeting, "220-")
			c.send(p.starttls + "\r" + p.tag("y", "NOOP") + "\r\n")
			l := c.line()
			assert.False(c.t, strings.HasPrefix(l, p.goAhead), "got %q", l)
		}},
		{"nul-in-commands", all, func(c *rtClient, p rtProto) {
			c.expect(p.greeting, "220-")
			c.send(p.tag("n", "NO\x00OP") + "\r\n")
			l := c.line()
			assert.True(c.t, strings.HasPrefix(l, p.errReply) || strings.HasPrefix(l, "* BAD") || strings.HasPrefix(l, "n BAD"),
				"got %q, want a refusal", l)
			c.send(p.tag("m", "NOOP") + "\r\n")
			c.expect(strings.Replace(noopOK[p.name], "n ", "m ", 1))
		}},
		// RFC 3207, Section 4.2: a fresh EHLO after TLS before MAIL/AUTH.
		{"smtp-mail-auth-after-tls-before-ehlo", []string{"smtp"}, func(c *rtClient, p rtProto) {
			c.expect(p.greeting)
			p.discover(c)
			c.send("STARTTLS\r\n")
			c.expect("220 ")
			c.startTLS()
			for _, cmd := range []string{"MAIL FROM:<demo@localhost>", "AUTH PLAIN AGRlbW8AZGVtbw==", "AUTH PLAIN", "mail from:<demo@localhost>"} {
				c.send(cmd + "\r\n")
				assert.True(c.t, strings.HasPrefix(c.line(), "503 "), "after TLS before EHLO: %q", cmd)
			}
			c.send("RCPT TO:<demo@localhost>\r\n")
			assert.True(c.t, strings.HasPrefix(c.line(), "503 "))
			c.send("DATA\r\n")
			assert.True(c.t, strings.HasPrefix(c.line(), "503 "))
			p.discover(c)
			c.send("MAIL FROM:<demo@localhost>\r\n")
			assert.True(c.t, strings.HasPrefix(c.line(), "250 "))
		}},
		{"smtp-pipelined-mail-before-tls-ehlo", []string{"smtp"}, func(c *rtClient, p rtProto) {
			c.expect(p.greeting)
			c.send("EHLO client\r\nMAIL FROM:<a@localhost>\r\n")
			c.expect("250 ", "250-")
			assert.Equal(c.t, "530 5.7.0 Must issue a STARTTLS command first", c.line())
		}},
		// Authentication state never crosses the switch.
		{"imap-no-state-across-tls", []string{"imap"}, func(c *rtClient, p rtProto) {
			c.expect(p.greeting)
			c.send("a LOGIN demo demo\r\n")
			c.expect("a NO ")
			switchTLS(c, p)
			c.send("b SELECT INBOX\r\n")
			l := c.line()
			assert.True(c.t, strings.HasPrefix(l, "b BAD ") || strings.HasPrefix(l, "b NO "), "not logged in after TLS: %q", l)
		}},
		{"pop3-no-user-across-tls", []string{"pop3"}, func(c *rtClient, p rtProto) {
			c.expect(p.greeting)
			c.send("USER demo\r\n")
			c.expect("-ERR")
			switchTLS(c, p)
			c.send("PASS demo\r\n")
			l := c.line()
			assert.True(c.t, strings.HasPrefix(l, "-ERR"), "PASS without USER inside TLS: %q", l)
		}},
	}
	for _, r := range rows {
		for _, name := range r.protos {
			t.Run(name+"/"+r.name, func(t *testing.T) {
				c := dialRedteam(t, d.addrs[name], roots)
				r.run(c, protos[name])
			})
		}
	}
}

// TestRedteamServeTimeouts: the demo's pre-TLS bounds are the contract's
// (60 s idle, 10 s from the go-ahead to the end of the handshake), checked
// without waiting for them: each front leaves them at the core's defaults.
func TestRedteamServeTimeouts(t *testing.T) {
	assert.Equal(t, 60*time.Second, starttls.DefaultIdleTimeout)
	assert.Equal(t, 10*time.Second, starttls.DefaultHandshakeTimeout)
	srv := newServers(&pki{}, nil)
	defer srv.shutdown()
	for _, proto := range protocols() {
		var opts starttls.ServerOptions
		switch front := srv.session(proto).front.(type) {
		case *smtp.Server:
			opts = front.Options
		case *imap.Server:
			opts = front.Options
		case *pop3.Server:
			opts = front.Options
		default:
			t.Fatalf("%s: unexpected front %T", proto, front)
		}
		assert.Zero(t, opts.IdleTimeout, "%s: zero is the default", proto)
		assert.Zero(t, opts.HandshakeTimeout, "%s: zero is the default", proto)
	}
}
