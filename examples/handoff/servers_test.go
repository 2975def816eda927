package handoff_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/tlsup/tlsup/tlsconf"
)

// The account of the in-process servers.
const (
	testUser     = "user"
	testPassword = "secret"
)

// newPKI returns a server config for localhost and 127.0.0.1 from a
// throwaway CA, and the pool that trusts it.
func newPKI() (*tls.Config, *x509.CertPool) {
	ca, err := tlsconf.NewCA("handoff test CA")
	if err != nil {
		panic(err)
	}
	cert, err := ca.Issue("localhost", "127.0.0.1")
	if err != nil {
		panic(err)
	}
	return tlsconf.Server(cert), ca.Pool()
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// smtpServer is go-smtp's server with STARTTLS and AUTH PLAIN (offered
// only inside TLS), keeping the messages it accepts.
type smtpServer struct {
	addr  string
	roots *x509.CertPool
	wire  *syncBuffer // both directions, as go-smtp's Debug writes them

	mu       sync.Mutex
	messages []string
}

// startSMTP starts the server on 127.0.0.1; stop closes it.
func startSMTP() (s *smtpServer, stop func()) {
	serverTLS, roots := newPKI()
	s = &smtpServer{roots: roots, wire: &syncBuffer{}}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) {
		return &smtpSession{server: s}, nil
	}))
	srv.Domain = "localhost"
	srv.TLSConfig = serverTLS
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.Debug = s.wire
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	s.addr = ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	return s, func() {
		srv.Close()
		<-done
	}
}

// ehlos counts the EHLO commands the server received, inside TLS or not.
func (s *smtpServer) ehlos() int {
	n := 0
	for _, line := range strings.Split(s.wire.String(), "\n") {
		if strings.HasPrefix(line, "EHLO ") {
			n++
		}
	}
	return n
}

// received returns the messages accepted so far.
func (s *smtpServer) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.messages...)
}

type smtpSession struct {
	server *smtpServer
	authed bool
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != testUser || password != testPassword {
			return errors.New("invalid credentials")
		}
		s.authed = true
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, opts *gosmtp.MailOptions) error {
	if !s.authed {
		return gosmtp.ErrAuthRequired
	}
	return nil
}

func (s *smtpSession) Rcpt(to string, opts *gosmtp.RcptOptions) error { return nil }

func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.server.mu.Lock()
	s.server.messages = append(s.server.messages, string(b))
	s.server.mu.Unlock()
	return nil
}

func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

// startIMAP starts go-imap's server with STARTTLS (LOGINDISABLED before
// it) over an in-memory store holding testUser's INBOX with one message.
func startIMAP() (addr string, roots *x509.CertPool, stop func()) {
	serverTLS, roots := newPKI()
	mem := imapmemserver.New()
	user := imapmemserver.NewUser(testUser, testPassword)
	if err := user.Create("INBOX", nil); err != nil {
		panic(err)
	}
	msg := "Subject: hello\r\n\r\nhand-off\r\n"
	if _, err := user.Append("INBOX", literal(msg), &imap.AppendOptions{}); err != nil {
		panic(err)
	}
	mem.AddUser(user)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:      imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		TLSConfig: serverTLS,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	return ln.Addr().String(), roots, func() {
		srv.Close()
		<-done
	}
}

// literal is an imap.LiteralReader over s.
type literalReader struct {
	*strings.Reader
}

func (l literalReader) Size() int64 { return int64(l.Len()) }

func literal(s string) imap.LiteralReader { return literalReader{strings.NewReader(s)} }

// testing is used by the helpers' callers; keep the import honest.
var _ = testing.Short
