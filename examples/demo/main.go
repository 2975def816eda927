// Command demo is the embedded default of tlsup: SMTP, IMAP and POP3
// servers built on the library's pre-TLS fronts (smtp.Server, imap.Server,
// pop3.Server), and the library's clients upgrading to them.
//
// With no flags it runs the tour: it starts the three servers on 127.0.0.1
// ephemeral ports with a throwaway CA made in memory, upgrades a library
// client to each with STARTTLS (STLS), logs in inside TLS, prints each
// dialogue and the TLS result, and exits 0 when all three upgraded.
//
//	demo -serve -certdir DIR [-smtp ADDR] [-imap ADDR] [-pop3 ADDR]
//
// serves real clients until SIGINT or SIGTERM: it writes DIR/ca.pem, the CA
// that signed the server certificate (valid for "localhost" and 127.0.0.1),
// and prints "smtp 127.0.0.1:PORT" (imap, pop3) once each listener accepts.
// With no listener flag all three listen on 127.0.0.1 ephemeral ports.
//
// The servers require TLS before authentication or mail. After TLS the
// user is "demo" with password "demo"; mail is accepted and discarded, and
// the INBOX and the maildrop are empty. That post-TLS logic is a minimal
// example and lives here, not in the library.
//
// # Contract
//
// The behaviour below is a public contract; it changes only compatibly.
//
//   - Plaintext SMTP answers 530 5.7.0 to every command but EHLO, HELO,
//     NOOP, RSET, QUIT and STARTTLS (unknown commands included); plaintext
//     IMAP advertises LOGINDISABLED and answers LOGIN and AUTHENTICATE with
//     NO [PRIVACYREQUIRED]; plaintext POP3 answers -ERR to USER, PASS, APOP
//     and AUTH.
//   - STARTTLS with an argument: 501 (IMAP BAD, POP3 -ERR); STARTTLS once
//     TLS is on: 503 (IMAP BAD, POP3 -ERR).
//   - Bytes pipelined behind STARTTLS/STLS: an error reply and no TLS, or
//     close; never discarded silently, never answered inside TLS.
//   - A client that has not completed the handshake within 10 s of the
//     go-ahead is dropped; a pre-TLS session idle for 60 s is closed, and
//     so is one still without TLS after 5 minutes, however busy.
//   - After TLS, user "demo", password "demo". SMTP: EHLO, AUTH PLAIN,
//     MAIL/RCPT/DATA (accepted and discarded), RSET, NOOP, QUIT; MAIL or
//     AUTH before a fresh EHLO gets 503. IMAP: CAPABILITY, NOOP, LOGIN,
//     AUTHENTICATE PLAIN, LIST (INBOX), SELECT/EXAMINE INBOX (empty),
//     LOGOUT. POP3 advertises USER and SASL PLAIN: CAPA, USER/PASS, STAT,
//     LIST, UIDL, QUIT (empty maildrop).
//   - -serve prints one line per listener once it accepts ("smtp
//     127.0.0.1:PORT", imap, pop3; a listener whose flag is absent is not
//     started unless none is given) and exits 0 within 5 s of SIGTERM or
//     SIGINT.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/tlsup/tlsup/imap"
	"github.com/tlsup/tlsup/pop3"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// The demo account, accepted after TLS only.
const (
	demoUser     = "demo"
	demoPassword = "demo"
	// hostname is the servers' name in greetings and the name on their
	// certificate, with 127.0.0.1.
	hostname = "localhost"
	// sessionIdle bounds the wait for each command after TLS.
	sessionIdle = 60 * time.Second
	// plaintextLimit bounds the whole pre-TLS phase, handshake included:
	// the front's idle timeout (60 s) alone would let a client that sends
	// NOOP every 59 s stay in plaintext for ever.
	plaintextLimit = 5 * time.Minute
	// shutdownGrace bounds the wait for sessions to end after a signal, well
	// inside the contract's 5 s.
	shutdownGrace = 2 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program; ctx ending stands for SIGINT/SIGTERM. It returns
// the exit status: 0 on success, 1 on failure, 2 on a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	serve := fs.Bool("serve", false, "serve real clients until SIGINT/SIGTERM instead of running the tour")
	certdir := fs.String("certdir", "", "with -serve: directory where ca.pem is written (required)")
	smtpAddr := fs.String("smtp", "", "with -serve: SMTP listen address (default: 127.0.0.1 ephemeral port)")
	imapAddr := fs.String("imap", "", "with -serve: IMAP listen address")
	pop3Addr := fs.String("pop3", "", "with -serve: POP3 listen address")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: demo                 run the tour: in-process servers, a client upgrading to each")
		fmt.Fprintln(stderr, "       demo -serve -certdir DIR [-smtp ADDR] [-imap ADDR] [-pop3 ADDR]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "demo: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if !*serve {
		if *certdir != "" || *smtpAddr != "" || *imapAddr != "" || *pop3Addr != "" {
			fmt.Fprintln(stderr, "demo: -certdir, -smtp, -imap and -pop3 need -serve")
			return 2
		}
		return tour(ctx, stdout, stderr)
	}
	if *certdir == "" {
		fmt.Fprintln(stderr, "demo: -serve needs -certdir DIR")
		return 2
	}
	addrs := map[string]string{"smtp": *smtpAddr, "imap": *imapAddr, "pop3": *pop3Addr}
	if *smtpAddr == "" && *imapAddr == "" && *pop3Addr == "" {
		for _, p := range protocols() {
			addrs[p] = "127.0.0.1:0"
		}
	}
	return serveMain(ctx, *certdir, addrs, stdout, stderr)
}

// protocols returns the protocol names in the order they are started and
// printed.
func protocols() []string { return []string{"smtp", "imap", "pop3"} }

// pki is the demo's throwaway CA and the server configuration it signed.
type pki struct {
	ca     *tlsconf.CA
	server *tls.Config
}

func newPKI() (*pki, error) {
	ca, err := tlsconf.NewCA("tlsup demo CA (throwaway)")
	if err != nil {
		return nil, err
	}
	cert, err := ca.Issue(hostname, "127.0.0.1")
	if err != nil {
		return nil, err
	}
	return &pki{ca: ca, server: tlsconf.Server(cert)}, nil
}

// serveMain is -serve: listeners until ctx ends, then exit 0.
func serveMain(ctx context.Context, certdir string, addrs map[string]string, stdout, stderr io.Writer) int {
	p, err := newPKI()
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	if err := os.MkdirAll(certdir, 0o755); err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	if err := os.WriteFile(filepath.Join(certdir, "ca.pem"), p.ca.CertPEM(), 0o644); err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	srv := newServers(p, &logger{w: stderr})
	defer srv.shutdown()
	for _, proto := range protocols() {
		addr, ok := addrs[proto]
		if !ok || addr == "" {
			continue
		}
		bound, err := srv.listen(ctx, proto, addr)
		if err != nil {
			fmt.Fprintf(stderr, "demo: %s: %v\n", proto, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s %s\n", proto, bound)
	}
	<-ctx.Done()
	fmt.Fprintln(stderr, "demo: shutting down")
	return 0
}

// logger writes one line per session event; safe for concurrent use.
type logger struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *logger) printf(format string, args ...any) {
	if l == nil || l.w == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format+"\n", args...)
}

// servers runs listeners and their sessions, and stops them all.
type servers struct {
	pki    *pki
	log    *logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	lns    []net.Listener
}

func newServers(p *pki, log *logger) *servers {
	ctx, cancel := context.WithCancel(context.Background())
	return &servers{pki: p, log: log, ctx: ctx, cancel: cancel}
}

// session is a protocol's front and its post-TLS loop.
type session struct {
	front starttls.ServerUpgrader
	loop  func(ctx context.Context, c *starttls.Conn) error
}

func (s *servers) session(proto string) session {
	// The contract answers every refused plaintext command (530, NO, -ERR):
	// the fronts allow as many refusals as the post-TLS loops do before
	// closing, not the core's default 10.
	opts := starttls.ServerOptions{TLSConfig: s.pki.server, Hostname: hostname, MaxErrors: maxBadCommands}
	switch proto {
	case "smtp":
		return session{&smtp.Server{Options: opts}, smtpSession}
	case "imap":
		return session{&imap.Server{Options: opts}, imapSession}
	default:
		return session{&pop3.Server{Options: opts}, pop3Session}
	}
}

// listen starts proto's listener on addr and returns the bound address.
// Sessions run until they end or until shutdown; ctx ending closes the
// listener.
func (s *servers) listen(ctx context.Context, proto, addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	sess := s.session(proto)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.handle(proto, sess, conn)
			}()
		}
	}()
	context.AfterFunc(ctx, func() { ln.Close() })
	return ln.Addr().String(), nil
}

// handle runs one connection: the library's front, then the example's loop
// over TLS.
func (s *servers) handle(proto string, sess session, conn net.Conn) {
	remote := conn.RemoteAddr().String()
	// Shutdown ends the front through its context and the loop by closing
	// the conn.
	stop := context.AfterFunc(s.ctx, func() { conn.Close() })
	defer stop()
	fctx, cancel := context.WithTimeout(s.ctx, plaintextLimit)
	tc, err := sess.front.Serve(fctx, conn)
	cancel()
	if err != nil {
		s.log.printf("%s %s: front: %v", proto, remote, err)
		return
	}
	defer tc.Close()
	st := tc.TLS().ConnectionState()
	s.log.printf("%s %s: tls %s %s", proto, remote, tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	if err := sess.loop(s.ctx, tc); err != nil {
		s.log.printf("%s %s: session: %v", proto, remote, err)
		return
	}
	s.log.printf("%s %s: session ended", proto, remote)
}

// shutdown closes the listeners, ends every session and waits for them,
// for at most shutdownGrace.
func (s *servers) shutdown() {
	s.mu.Lock()
	for _, ln := range s.lns {
		ln.Close()
	}
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(shutdownGrace):
	}
}

// lineReader is what the post-TLS loops need: a bounded line read with an
// idle deadline.
func readLine(c *starttls.Conn) (string, error) {
	c.SetReadDeadline(time.Now().Add(sessionIdle))
	line, err := c.ReadLine()
	if err != nil {
		return "", err
	}
	return string(line), nil
}

// errHTTPRequest ends a post-TLS session whose client sent an HTTP request
// where a command belongs: a browser made to talk to a mail port (the
// ALPACA cross-protocol attacks), closed without a reply.
var errHTTPRequest = errors.New("http request where a command belongs")

// endOfSession reports whether err only says the client went away.
func endOfSession(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)
}
