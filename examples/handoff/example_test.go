package handoff_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"log"
	netsmtp "net/smtp"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/tlsup/tlsup/imap"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/tlsconf"
)

// sendNetSMTP is the README's net/smtp hand-off, verbatim between the
// markers: tlsup secures the session, net/smtp sends a message on it.
func sendNetSMTP(addr string, roots *x509.CertPool, user, password string) error {
	// README:netsmtp:begin
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tlsConn, res, err := smtp.Dial(ctx, "tcp", addr, &smtp.Options{TLSConfig: tlsconf.Client("localhost", roots)})
	if err != nil {
		return err
	}
	defer tlsConn.Close()
	c, err := netsmtp.NewClient(smtp.HandOff(res), "localhost")
	if err != nil {
		return err
	}
	auth := smtp.TLSAuth(netsmtp.PlainAuth("", user, password, "localhost"), res)
	if err := c.Auth(auth); err != nil {
		return err
	}
	if err := c.Mail("a@example.test"); err != nil {
		return err
	}
	if err := c.Rcpt("b@example.test"); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	fmt.Fprint(w, "Subject: hand-off\r\n\r\nsent by net/smtp over tlsup\r\n")
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
	// README:netsmtp:end
}

// sendGoSMTP is the README's go-smtp hand-off, verbatim between the
// markers.
func sendGoSMTP(addr string, roots *x509.CertPool, user, password string) error {
	// README:gosmtp:begin
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tlsConn, res, err := smtp.Dial(ctx, "tcp", addr, &smtp.Options{TLSConfig: tlsconf.Client("localhost", roots)})
	if err != nil {
		return err
	}
	defer tlsConn.Close()
	c := gosmtp.NewClient(smtp.HandOff(res))
	if err := c.Auth(sasl.NewPlainClient("", user, password)); err != nil {
		return err
	}
	msg := strings.NewReader("Subject: hand-off\r\n\r\nsent by go-smtp over tlsup\r\n")
	if err := c.SendMail("a@example.test", []string{"b@example.test"}, msg); err != nil {
		return err
	}
	return c.Quit()
	// README:gosmtp:end
}

// selectGoIMAP is the README's go-imap v2 hand-off, verbatim between the
// markers; it returns the number of messages in INBOX.
func selectGoIMAP(addr string, roots *x509.CertPool, user, password string) (uint32, error) {
	// README:goimap:begin
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tlsConn, res, err := imap.Dial(ctx, "tcp", addr, &imap.Options{TLSConfig: tlsconf.Client("localhost", roots)})
	if err != nil {
		return 0, err
	}
	defer tlsConn.Close()
	c := imapclient.New(imap.HandOff(res), nil)
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		return 0, err
	}
	inbox, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		return 0, err
	}
	return inbox.NumMessages, c.Logout().Wait()
	// README:goimap:end
}

// net/smtp continues a session tlsup secured against go-smtp's server:
// AUTH PLAIN inside TLS and one message.
func Example_netSMTP() {
	s, stop := startSMTP()
	defer stop()
	if err := sendNetSMTP(s.addr, s.roots, testUser, testPassword); err != nil {
		log.Fatal(err)
	}
	fmt.Println("messages:", len(s.received()), "EHLO seen by the server:", s.ehlos())
	// Output:
	// messages: 1 EHLO seen by the server: 2
}

// go-smtp's client continues a session tlsup secured.
func Example_goSMTP() {
	s, stop := startSMTP()
	defer stop()
	if err := sendGoSMTP(s.addr, s.roots, testUser, testPassword); err != nil {
		log.Fatal(err)
	}
	fmt.Println("messages:", len(s.received()), "EHLO seen by the server:", s.ehlos())
	// Output:
	// messages: 1 EHLO seen by the server: 2
}

// go-imap v2's client continues a session tlsup secured: LOGIN inside TLS
// and SELECT.
func Example_goIMAP() {
	addr, roots, stop := startIMAP()
	defer stop()
	n, err := selectGoIMAP(addr, roots, testUser, testPassword)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("INBOX messages:", n)
	// Output:
	// INBOX messages: 1
}
