// Package scripttest is the transcript-driven fake peer shared by the
// module's tests. A script is an ordered dialogue, one directive per line:
//
//	S: 220 mx.example.test ESMTP     line sent by the server (CRLF added)
//	C: EHLO localhost                line the client must send next
//	S+ 250 AUTH PLAIN                appended to the previous line's write:
//	                                 several lines in ONE write (injection)
//	S: "\x16\x03\x01\x00"            a Go-quoted string is sent raw, no CRLF
//	!tls                             TLS handshake (server or client side)
//	!close                           close the connection
//	!sleep 50ms                      stall
//	!trickle / !notrickle            send one byte per write from here on
//	!trickle 50ms                    the same, pausing 50ms after each byte
//	!eof                             the other side must close; a line
//	                                 received instead is a failure
//	!hold                            read and ignore everything until the
//	                                 other side closes (silence)
//
// At the end of the script the peer closes the connection.
//
// The peer plays the server by default: it sends S: lines and expects C:
// lines. With Role Client it sends C: lines and expects S: lines. In an
// expected line, {name} matches one token without spaces and remembers it;
// in a sent line, {name} is replaced by the token remembered (IMAP tags:
// "C: {t} STARTTLS" then "S: {t} OK begin"). {_} matches a token and
// remembers nothing. Blank lines and lines starting with # are ignored;
// leading white space is trimmed.
//
// Failures name the script line. The peer runs in its own goroutine and
// never calls t.Fatal; the test reads its verdict with [Peer.Wait], and
// t.Cleanup closes the connection, cuts a !sleep or a trickle pause short
// and waits for the goroutine.
package scripttest

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Role is the side the fake peer plays.
type Role int

const (
	// Server: the peer sends S: lines and expects C: lines.
	Server Role = iota
	// Client: the peer sends C: lines and expects S: lines.
	Client
)

// Options configures a peer. A nil *Options means a server without TLS.
type Options struct {
	// Role is the side the peer plays. Zero is Server.
	Role Role
	// TLSConfig is used by !tls: a server config for Role Server, a client
	// config for Role Client. Zero: !tls fails.
	TLSConfig *tls.Config
	// Timeout bounds each wait of the peer (a read, a write, a handshake).
	// Zero means 5 seconds.
	Timeout time.Duration
}

type directive struct {
	line  int           // 1-based script line
	src   string        // the script line as written, for failures
	text  string        // send: the template; expect: the pattern text
	op    string        // "send", "expect", "tls", "close", "sleep", "trickle", "notrickle", "eof", "hold"
	join  bool          // send: same write as the previous send
	raw   []byte        // send: raw bytes, no template
	dur   time.Duration // sleep: the stall; trickle: the pause per byte
	match *regexp.Regexp
	names []string
}

var placeholder = regexp.MustCompile(`\{[A-Za-z_][A-Za-z0-9_]*\}`)

// parse checks a script and returns its directives.
func parse(script string, role Role) ([]directive, error) {
	var out []directive
	for i, line := range strings.Split(script, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		d := directive{line: i + 1, src: line, text: line}
		switch {
		case strings.HasPrefix(line, "!"):
			word, arg, _ := strings.Cut(line[1:], " ")
			d.op = word
			switch word {
			case "tls", "close", "notrickle", "eof", "hold":
			case "trickle":
				if arg = strings.TrimSpace(arg); arg != "" {
					dur, err := time.ParseDuration(arg)
					if err != nil {
						return nil, fmt.Errorf("script line %d: %v", d.line, err)
					}
					d.dur = dur
				}
			case "sleep":
				dur, err := time.ParseDuration(strings.TrimSpace(arg))
				if err != nil {
					return nil, fmt.Errorf("script line %d: %v", d.line, err)
				}
				d.dur = dur
			default:
				return nil, fmt.Errorf("script line %d: unknown directive %q", d.line, line)
			}
		case len(line) >= 2 && (line[0] == 'S' || line[0] == 'C') && (line[1] == ':' || line[1] == '+'):
			body := strings.TrimPrefix(line[2:], " ")
			sender := Server
			if line[0] == 'C' {
				sender = Client
			}
			if sender == role {
				d.op = "send"
				d.join = line[1] == '+'
				if strings.HasPrefix(body, `"`) {
					raw, err := strconv.Unquote(body)
					if err != nil {
						return nil, fmt.Errorf("script line %d: bad quoted string: %v", d.line, err)
					}
					d.raw = []byte(raw)
				}
				d.text = body
			} else {
				if line[1] == '+' {
					return nil, fmt.Errorf("script line %d: %c+ only joins lines this peer sends", d.line, line[0])
				}
				d.op = "expect"
				d.text = body
				var pattern strings.Builder
				pattern.WriteString("^")
				last := 0
				for _, loc := range placeholder.FindAllStringIndex(body, -1) {
					pattern.WriteString(regexp.QuoteMeta(body[last:loc[0]]))
					pattern.WriteString(`(\S+)`)
					d.names = append(d.names, body[loc[0]+1:loc[1]-1])
					last = loc[1]
				}
				pattern.WriteString(regexp.QuoteMeta(body[last:]))
				pattern.WriteString("$")
				d.match = regexp.MustCompile(pattern.String())
			}
		default:
			return nil, fmt.Errorf("script line %d: want S:, C:, S+, C+ or !directive, got %q", d.line, line)
		}
		out = append(out, d)
	}
	return out, nil
}

// Peer is a running fake peer.
type Peer struct {
	opts    Options
	script  []directive
	done    chan struct{}
	err     error
	checked atomic.Bool

	mu     sync.Mutex
	conn   net.Conn // nil until accepted, for Listen
	closed bool
	stop   chan struct{} // closed with closed: ends a !sleep early
}

func newPeer(t testing.TB, script string, opts *Options) *Peer {
	t.Helper()
	p := &Peer{done: make(chan struct{}), stop: make(chan struct{})}
	if opts != nil {
		p.opts = *opts
	}
	if p.opts.Timeout == 0 {
		p.opts.Timeout = 5 * time.Second
	}
	dirs, err := parse(script, p.opts.Role)
	if err != nil {
		t.Fatalf("scripttest: %v", err)
	}
	p.script = dirs
	t.Cleanup(func() {
		p.closeConn()
		<-p.done
		if !p.checked.Load() && p.err != nil {
			t.Errorf("scripttest: peer failed (never checked with Wait): %v", p.err)
		}
	})
	return p
}

// Start runs script on conn in a new goroutine. A malformed script fails the
// test at once. t.Cleanup closes conn and waits for the goroutine; a failed
// script that the test never read with Wait is reported then.
func Start(t testing.TB, conn net.Conn, script string, opts *Options) *Peer {
	t.Helper()
	p := newPeer(t, script, opts)
	p.conn = conn
	go func() {
		defer close(p.done)
		p.err = p.run(conn)
	}()
	return p
}

// Wait blocks until the script has finished (or failed, or timed out on a
// wait) and returns its verdict: nil when every directive held.
func (p *Peer) Wait() error {
	p.checked.Store(true)
	<-p.done
	return p.err
}

func (p *Peer) closeConn() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		close(p.stop)
	}
	p.closed = true
	if p.conn != nil {
		p.conn.Close()
	}
}

// Pipe starts a peer on one end of a net.Pipe and returns the other end for
// the code under test. t.Cleanup closes both.
func Pipe(t testing.TB, script string, opts *Options) (net.Conn, *Peer) {
	t.Helper()
	mine, theirs := net.Pipe()
	t.Cleanup(func() { theirs.Close() })
	return theirs, Start(t, mine, script, opts)
}

// TCP starts a peer on a loopback TCP connection and returns the other end
// for the code under test. t.Cleanup closes everything.
func TCP(t testing.TB, script string, opts *Options) (net.Conn, *Peer) {
	t.Helper()
	addr, p := Listen(t, script, opts)
	client, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("scripttest: dial %s: %v", addr, err)
	}
	t.Cleanup(func() { client.Close() })
	return client, p
}

// Listen starts a peer behind a fresh listener on 127.0.0.1 that accepts one
// connection, and returns the address to dial, for code under test that
// dials by itself. The script starts when the connection arrives; Wait
// fails if none arrives within the peer's timeout. t.Cleanup closes the
// listener and the connection.
func Listen(t testing.TB, script string, opts *Options) (string, *Peer) {
	t.Helper()
	p := newPeer(t, script, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("scripttest: listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		defer close(p.done)
		timer := time.AfterFunc(p.opts.Timeout, func() { ln.Close() })
		conn, err := ln.Accept()
		timer.Stop()
		ln.Close()
		if err != nil {
			p.err = fmt.Errorf("scripttest: no connection within %v: %v", p.opts.Timeout, err)
			return
		}
		p.mu.Lock()
		p.conn = conn
		if p.closed {
			conn.Close()
		}
		p.mu.Unlock()
		p.err = p.run(conn)
	}()
	return ln.Addr().String(), p
}

// pause waits for d, or less when cleanup closes the connection, and
// reports whether it waited the whole time.
func (p *Peer) pause(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-p.stop:
		return false
	}
}

// run plays the script on conn.
func (p *Peer) run(conn net.Conn) error {
	raw := conn
	r := bufio.NewReader(conn)
	vars := map[string]string{}
	trickle := false
	var tricklePause time.Duration
	var pending []byte // sends joined into one write
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		data := pending
		pending = nil
		conn.SetWriteDeadline(time.Now().Add(p.opts.Timeout))
		if trickle {
			for i := range data {
				if _, err := conn.Write(data[i : i+1]); err != nil {
					return err
				}
				if tricklePause > 0 && !p.pause(tricklePause) {
					return errors.New("stopped by cleanup")
				}
			}
			return nil
		}
		_, err := conn.Write(data)
		return err
	}
	fail := func(d directive, format string, args ...any) error {
		return fmt.Errorf("script line %d (%s): %s", d.line, d.src, fmt.Sprintf(format, args...))
	}
	for i, d := range p.script {
		if d.op != "send" || !d.join {
			if err := flush(); err != nil {
				return fail(p.script[i-1], "write: %v", err)
			}
		}
		switch d.op {
		case "send":
			if d.raw != nil {
				pending = append(pending, d.raw...)
				break
			}
			text := placeholder.ReplaceAllStringFunc(d.text, func(m string) string {
				if v, ok := vars[m[1:len(m)-1]]; ok {
					return v
				}
				return m
			})
			pending = append(append(pending, text...), '\r', '\n')
		case "expect":
			conn.SetReadDeadline(time.Now().Add(p.opts.Timeout))
			line, err := r.ReadString('\n')
			if err != nil {
				return fail(d, "want a line, got %v after %q", err, line)
			}
			if !strings.HasSuffix(line, "\r\n") {
				return fail(d, "line not ended by CRLF: %q", line)
			}
			line = strings.TrimSuffix(line, "\r\n")
			m := d.match.FindStringSubmatch(line)
			if m == nil {
				return fail(d, "got %q", line)
			}
			for j, name := range d.names {
				if name != "_" {
					vars[name] = m[j+1]
				}
			}
		case "tls":
			if p.opts.TLSConfig == nil {
				return fail(d, "no TLSConfig in Options")
			}
			if n := r.Buffered(); n > 0 {
				return fail(d, "%d bytes received before the handshake", n)
			}
			var tc *tls.Conn
			if p.opts.Role == Client {
				tc = tls.Client(conn, p.opts.TLSConfig)
			} else {
				// No session tickets: TLS 1.3 sends them after the
				// handshake, and over net.Pipe that write would block
				// until the client reads, while the client is writing.
				cfg := p.opts.TLSConfig.Clone()
				cfg.SessionTicketsDisabled = true
				tc = tls.Server(conn, cfg)
			}
			tc.SetDeadline(time.Now().Add(p.opts.Timeout))
			if err := tc.Handshake(); err != nil {
				return fail(d, "handshake: %v", err)
			}
			tc.SetDeadline(time.Time{})
			conn = tc
			r = bufio.NewReader(conn)
		case "close":
			raw.Close()
		case "sleep":
			if !p.pause(d.dur) {
				// The test is over and cleanup closed the connection:
				// the rest of the script is moot.
				return nil
			}
		case "trickle":
			trickle = true
			tricklePause = d.dur
		case "notrickle":
			trickle = false
		case "eof", "hold":
			conn.SetReadDeadline(time.Now().Add(p.opts.Timeout))
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					if errors.Is(err, os.ErrDeadlineExceeded) {
						return fail(d, "the other side did not close within %v", p.opts.Timeout)
					}
					if d.op == "eof" && line != "" {
						return fail(d, "want the other side to close, got %q", line)
					}
					break
				}
				if d.op == "eof" {
					return fail(d, "want the other side to close, got %q", line)
				}
			}
		}
	}
	if err := flush(); err != nil {
		return fail(p.script[len(p.script)-1], "write: %v", err)
	}
	// The script is over: hang up, so that nothing waits on a peer that
	// will never read again (net.Pipe writes block until read). The raw
	// conn: a TLS close_notify would block the same way.
	raw.Close()
	return nil
}
