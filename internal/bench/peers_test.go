package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
)

// peerTimeout bounds every server-side connection, so that a broken client
// cannot hang a benchmark.
const peerTimeout = 10 * time.Second

// tlsPair holds the client and server TLS configurations every variant
// shares: TLS 1.3 only, X25519 only, an ECDSA P-256 chain (tlsconf's CA),
// no session tickets, so each connection is a full handshake.
type tlsPair struct {
	client *tls.Config
	server *tls.Config
}

func newTLSPair(tb testing.TB) *tlsPair {
	tb.Helper()
	pki := scripttest.NewPKI(tb)
	client := pki.Client(scripttest.TestName)
	client.MinVersion = tls.VersionTLS13
	client.CurvePreferences = []tls.CurveID{tls.X25519}
	server := pki.Server()
	server.MinVersion = tls.VersionTLS13
	server.CurvePreferences = []tls.CurveID{tls.X25519}
	server.SessionTicketsDisabled = true
	return &tlsPair{client: client, server: server}
}

// peer is an in-process TCP server on 127.0.0.1 that runs handle on every
// accepted connection, each in its own goroutine, and closes it afterwards.
type peer struct {
	ln   net.Listener
	wg   sync.WaitGroup
	addr string
}

func startPeer(tb testing.TB, handle func(net.Conn)) *peer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	p := &peer{ln: ln, addr: ln.Addr().String()}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(peerTimeout))
				handle(conn)
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
	})
	return p
}

// The canned dialogue of the minimal servers. The lists match what the
// library's own fronts advertise.
const (
	smtpGreeting  = "220 mx.example.test ESMTP ready\r\n"
	smtpEHLOPlain = "250-mx.example.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n"
	smtpEHLOTLS   = "250-mx.example.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 AUTH PLAIN\r\n"
	smtpGoAhead   = "220 2.0.0 Ready to start TLS\r\n"

	imapGreeting  = "* OK IMAP4rev1 ready\r\n"
	imapCapsPlain = "* CAPABILITY IMAP4rev1 IMAP4rev2 STARTTLS LOGINDISABLED\r\n"
	imapCapsTLS   = "* CAPABILITY IMAP4rev1 IMAP4rev2 AUTH=PLAIN\r\n"

	pop3Greeting  = "+OK POP3 ready\r\n"
	pop3CapaPlain = "+OK\r\nTOP\r\nUSER\r\nUIDL\r\nSTLS\r\n.\r\n"
	pop3CapaTLS   = "+OK\r\nTOP\r\nUSER\r\nUIDL\r\nSASL PLAIN\r\n.\r\n"
)

// The fixed lines the peers and the minimal clients write, as bytes made
// once: io.WriteString on a net.Conn or a *tls.Conn would copy the string
// on every call, an allocation that is the harness's, not the client's.
var (
	wireSMTPGreeting   = []byte(smtpGreeting)
	wireSMTPEHLOPlain  = []byte(smtpEHLOPlain)
	wireSMTPEHLOTLS    = []byte(smtpEHLOTLS)
	linePING           = []byte("PING\r\n")
	linePONG           = []byte("PONG\r\n")
	cmdEHLO            = []byte("EHLO localhost\r\n")
	cmdSTARTTLS        = []byte("STARTTLS\r\n")
	cmdIMAPCapability1 = []byte("a1 CAPABILITY\r\n")
	cmdIMAPSTARTTLS2   = []byte("a2 STARTTLS\r\n")
	cmdIMAPCapability3 = []byte("a3 CAPABILITY\r\n")
	cmdCAPA            = []byte("CAPA\r\n")
	cmdSTLS            = []byte("STLS\r\n")
)

// lineServer is a minimal hand-written STARTTLS server: it answers each
// command line with answer(line, tls) and switches to TLS when answer says
// so. It checks nothing and, its line reader coming from a pool, allocates
// next to nothing beyond crypto/tls: it is the same cheap peer for every
// client, so that what a benchmark counts above the floor is the client's.
type lineServer struct {
	greetingBytes []byte
	// answer appends the reply to line to out.
	answer func(out, line []byte, tls bool) (reply []byte, startTLS, quit bool)
}

// serverBuffers are a server connection's line reader and reply buffer.
type serverBuffers struct {
	br  *bufio.Reader
	out []byte
}

// buffers recycles the servers' buffers.
var buffers = sync.Pool{New: func() any {
	return &serverBuffers{br: bufio.NewReaderSize(nil, 1024), out: make([]byte, 0, 1024)}
}}

func (s *lineServer) serve(cfg *tls.Config) func(net.Conn) {
	return func(conn net.Conn) {
		bufs := buffers.Get().(*serverBuffers)
		br := bufs.br
		br.Reset(conn)
		defer func() {
			br.Reset(nil)
			buffers.Put(bufs)
		}()
		var w io.Writer = conn
		if _, err := w.Write(s.greetingBytes); err != nil {
			return
		}
		secure := false
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			reply, startTLS, quit := s.answer(bufs.out[:0], bytes.TrimRight(line, "\r\n"), secure)
			if _, err := w.Write(reply); err != nil || quit {
				return
			}
			if startTLS {
				tc := tls.Server(conn, cfg)
				if tc.Handshake() != nil {
					return
				}
				br.Reset(tc)
				w, secure = tc, true
			}
		}
	}
}

// verbIs reports whether the command word of line (after the tag, for
// IMAP) is verb, ignoring ASCII case.
func verbIs(line []byte, verb string) bool {
	v, _, _ := bytes.Cut(line, []byte(" "))
	return bytes.EqualFold(v, []byte(verb))
}

var smtpServer = &lineServer{greetingBytes: []byte(smtpGreeting), answer: func(out, line []byte, secure bool) ([]byte, bool, bool) {
	switch {
	case verbIs(line, "EHLO"):
		if secure {
			return append(out, smtpEHLOTLS...), false, false
		}
		return append(out, smtpEHLOPlain...), false, false
	case verbIs(line, "STARTTLS"):
		return append(out, smtpGoAhead...), true, false
	case verbIs(line, "QUIT"):
		return append(out, "221 2.0.0 bye\r\n"...), false, true
	}
	return append(out, "250 2.0.0 OK\r\n"...), false, false
}}

// imapReply appends the untagged lines and the completion, tagged with
// line's tag, to out.
func imapReply(out, line []byte, untagged, text string) []byte {
	tag, _, _ := bytes.Cut(line, []byte(" "))
	return append(append(append(out, untagged...), tag...), text...)
}

var imapServer = &lineServer{greetingBytes: []byte(imapGreeting), answer: func(out, line []byte, secure bool) ([]byte, bool, bool) {
	_, cmd, _ := bytes.Cut(line, []byte(" "))
	switch {
	case verbIs(cmd, "CAPABILITY"):
		if secure {
			return imapReply(out, line, imapCapsTLS, " OK CAPABILITY completed\r\n"), false, false
		}
		return imapReply(out, line, imapCapsPlain, " OK CAPABILITY completed\r\n"), false, false
	case verbIs(cmd, "STARTTLS"):
		return imapReply(out, line, "", " OK Begin TLS negotiation now\r\n"), true, false
	case verbIs(cmd, "LOGOUT"):
		return imapReply(out, line, "* BYE logging out\r\n", " OK LOGOUT completed\r\n"), false, true
	}
	return imapReply(out, line, "", " BAD unknown\r\n"), false, false
}}

var pop3Server = &lineServer{greetingBytes: []byte(pop3Greeting), answer: func(out, line []byte, secure bool) ([]byte, bool, bool) {
	switch {
	case verbIs(line, "CAPA"):
		if secure {
			return append(out, pop3CapaTLS...), false, false
		}
		return append(out, pop3CapaPlain...), false, false
	case verbIs(line, "STLS"):
		return append(out, "+OK Begin TLS negotiation\r\n"...), true, false
	case verbIs(line, "QUIT"):
		return append(out, "+OK bye\r\n"...), false, true
	}
	return append(out, "-ERR unknown\r\n"...), false, false
}}

// floorServer is the server of the floor: TLS handshake at once, then one
// line answered.
func floorServer(cfg *tls.Config) func(net.Conn) {
	return func(conn net.Conn) {
		tc := tls.Server(conn, cfg)
		if tc.Handshake() != nil {
			return
		}
		var buf [64]byte
		if _, err := readLine(tc, buf[:]); err != nil {
			return
		}
		tc.Write(linePONG)
		io.Copy(io.Discard, tc)
	}
}

// readLine reads up to and including a LF into buf, a byte at a time from
// what Read returns; enough for the floor's one short line.
func readLine(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if bytes.IndexByte(buf[:n], '\n') >= 0 {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	return n, errors.New("bench: line too long")
}

// rawTLS is the floor: TCP connect, TLS handshake, one round trip.
func rawTLS(addr string, cfg *tls.Config) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	tc := tls.Client(conn, cfg)
	if err := tc.Handshake(); err != nil {
		return err
	}
	if _, err := tc.Write(linePING); err != nil {
		return err
	}
	var buf [64]byte
	_, err = readLine(tc, buf[:])
	return err
}

// The minimal clients: greeting, discovery, STARTTLS, handshake,
// rediscovery, and not a single check beyond what keeps them in step.

// readSMTPReply reads lines up to the last line of a reply ("250 ...").
func readSMTPReply(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) < 4 || line[3] != '-' {
			return nil
		}
	}
}

func minimalSMTP(addr string, cfg *tls.Config) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	if err := readSMTPReply(br); err != nil {
		return err
	}
	for _, cmd := range [][]byte{cmdEHLO, cmdSTARTTLS} {
		if _, err := conn.Write(cmd); err != nil {
			return err
		}
		if err := readSMTPReply(br); err != nil {
			return err
		}
	}
	tc := tls.Client(conn, cfg)
	if err := tc.Handshake(); err != nil {
		return err
	}
	if _, err := tc.Write(cmdEHLO); err != nil {
		return err
	}
	return readSMTPReply(bufio.NewReader(tc))
}

// readIMAPTagged reads lines up to the one starting with tag.
func readIMAPTagged(br *bufio.Reader, tag []byte) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if bytes.HasPrefix(line, tag) {
			return nil
		}
	}
}

func minimalIMAP(addr string, cfg *tls.Config) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	if _, err := br.ReadSlice('\n'); err != nil {
		return err
	}
	for _, cmd := range [][]byte{cmdIMAPCapability1, cmdIMAPSTARTTLS2} {
		if _, err := conn.Write(cmd); err != nil {
			return err
		}
		if err := readIMAPTagged(br, cmd[:3]); err != nil {
			return err
		}
	}
	tc := tls.Client(conn, cfg)
	if err := tc.Handshake(); err != nil {
		return err
	}
	if _, err := tc.Write(cmdIMAPCapability3); err != nil {
		return err
	}
	return readIMAPTagged(bufio.NewReader(tc), cmdIMAPCapability3[:3])
}

// readPOP3Multi reads lines up to the terminating ".".
func readPOP3Multi(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if string(line) == ".\r\n" {
			return nil
		}
	}
}

func minimalPOP3(addr string, cfg *tls.Config) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	if _, err := br.ReadSlice('\n'); err != nil {
		return err
	}
	if _, err := conn.Write(cmdCAPA); err != nil {
		return err
	}
	if err := readPOP3Multi(br); err != nil {
		return err
	}
	if _, err := conn.Write(cmdSTLS); err != nil {
		return err
	}
	if _, err := br.ReadSlice('\n'); err != nil {
		return err
	}
	tc := tls.Client(conn, cfg)
	if err := tc.Handshake(); err != nil {
		return err
	}
	if _, err := tc.Write(cmdCAPA); err != nil {
		return err
	}
	return readPOP3Multi(bufio.NewReader(tc))
}

// upgradeFunc is a library Upgrade (smtp.Upgrade, imap.Upgrade,
// pop3.Upgrade) reduced to what the benchmarks vary.
type upgradeFunc func(ctx context.Context, conn net.Conn, cfg *tls.Config) (*starttls.Result, error)

// libraryClient dials like the minimal clients do and runs up on the raw
// conn. Like them it closes the raw conn at the end, without a TLS
// close_notify, so that every variant ends the same way.
func libraryClient(ctx context.Context, up upgradeFunc) func(addr string, cfg *tls.Config) error {
	return func(addr string, cfg *tls.Config) error {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		res, err := up(ctx, conn, cfg)
		if err != nil {
			return err
		}
		if !res.TLS || res.After.Len() == 0 {
			return fmt.Errorf("bench: upgrade without tls or capabilities: %+v", res)
		}
		return nil
	}
}

// serverUpgradeServer is the minimal SMTP server with the transition done
// by starttls.ServerUpgrade and the lines read by starttls.Conn.
func serverUpgradeServer(cfg *tls.Config) func(net.Conn) {
	sw := &starttls.ServerSwitch{Protocol: "smtp", GoAhead: smtp.ReplyGoAhead, Refusal: smtp.ReplyPipelined, TLSConfig: cfg}
	return func(conn net.Conn) {
		c := starttls.NewConn(conn, &starttls.Options{Server: true})
		if _, err := conn.Write(wireSMTPGreeting); err != nil {
			return
		}
		for {
			line, err := c.ReadLine()
			if err != nil {
				return
			}
			verb, _, _ := strings.Cut(string(line), " ")
			switch strings.ToUpper(verb) {
			case "EHLO":
				if _, err := conn.Write(wireSMTPEHLOPlain); err != nil {
					return
				}
			case "STARTTLS":
				tc, err := starttls.ServerUpgrade(context.Background(), c, sw)
				if err != nil {
					return
				}
				postTLSEHLO(tc)
				return
			default:
				return
			}
		}
	}
}

// frontServer runs the library's smtp.Server front, then answers the
// client's EHLO inside TLS.
func frontServer(cfg *tls.Config) func(net.Conn) {
	srv := &smtp.Server{Options: starttls.ServerOptions{TLSConfig: cfg, Hostname: scripttest.TestName}}
	return func(conn net.Conn) {
		tc, err := srv.Serve(context.Background(), conn)
		if err != nil {
			return
		}
		postTLSEHLO(tc)
	}
}

// postTLSEHLO answers one EHLO inside TLS and waits for the client to go.
func postTLSEHLO(tc *starttls.Conn) {
	if _, err := tc.ReadLine(); err != nil {
		return
	}
	if _, err := tc.Write(wireSMTPEHLOTLS); err != nil {
		return
	}
	tc.ReadLine()
}
