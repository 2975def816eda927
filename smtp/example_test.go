package smtp_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// ExampleUpgrade upgrades an SMTP connection that is already open: the
// greeting, EHLO, STARTTLS, a verified handshake and a fresh EHLO inside
// TLS, in one call. The session then continues on res.Conn.
func ExampleUpgrade() {
	// conn is a fresh connection to an SMTP server; here an in-process
	// server whose certificate a throwaway CA (roots) signed.
	conn, roots, wait := startExampleServer(true)
	defer wait()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tc, res, err := smtp.Upgrade(ctx, conn, &smtp.Options{
		TLSConfig: tlsconf.Client("mx.example.test", roots),
	})
	if err != nil {
		fmt.Println("no TLS:", err) // conn is already closed
		return
	}
	defer tc.Close()
	fmt.Println(tls.VersionName(res.State.Version))
	fmt.Println(res.After.List())

	res.Conn.WriteLine("QUIT")
	reply, err := smtp.ReadReply(res.Conn)
	if err == nil {
		fmt.Println(reply.Code, reply.Text())
	}
	// Output:
	// TLS 1.3
	// [SIZE 52428800 AUTH PLAIN LOGIN]
	// 221 2.0.0 Bye
}

// A server (or a man in the middle) that does not advertise STARTTLS gets
// starttls.ErrNotOffered under the default policy, and STARTTLS is not sent.
func ExampleUpgrade_notOffered() {
	conn, roots, wait := startExampleServer(false)
	defer wait()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _, err := smtp.Upgrade(ctx, conn, &smtp.Options{
		TLSConfig: tlsconf.Client("mx.example.test", roots),
	})
	fmt.Println(errors.Is(err, starttls.ErrNotOffered))
	fmt.Println(err)
	// Output:
	// true
	// smtp: discover: not offered
}

// The Opportunistic policy is an explicit opt-in: without STARTTLS the
// session continues in plaintext and the result says so.
func ExampleUpgrade_opportunistic() {
	conn, roots, wait := startExampleServer(false)
	defer wait()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tc, res, err := smtp.Upgrade(ctx, conn, &smtp.Options{
		TLSConfig: tlsconf.Client("mx.example.test", roots),
		Policy:    starttls.Opportunistic,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer res.Conn.Close()
	fmt.Println(tc == nil, res.TLS, res.Plaintext)
	// Output:
	// true false true
}

// A refusal carries the server's reply, escaped, for errors.As.
func ExampleUpgrade_refused() {
	conn, roots, wait := startExampleServer(true, "454 4.7.0 TLS not available due to temporary reason")
	defer wait()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _, err := smtp.Upgrade(ctx, conn, &smtp.Options{
		TLSConfig: tlsconf.Client("mx.example.test", roots),
	})
	var reply *starttls.ReplyError
	if errors.Is(err, starttls.ErrRefused) && errors.As(err, &reply) {
		fmt.Println(reply.Command, reply.Code, reply.Text)
	}
	// Output:
	// STARTTLS 454 4.7.0 TLS not available due to temporary reason
}

// ExampleDial connects and upgrades in one call. With the zero Mode (Auto),
// port 465 would get implicit TLS; any other port gets STARTTLS.
func ExampleDial() {
	addr, roots, stop := listenExampleServer()
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tc, res, err := smtp.Dial(ctx, "tcp", addr, &smtp.Options{
		TLSConfig: tlsconf.Client("mx.example.test", roots),
		LocalName: "client.example.test",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tc.Close()
	fmt.Println(res.Mode, res.TLS, res.State.ServerName)
	fmt.Println(res.Before.Has("STARTTLS"), res.After.Has("STARTTLS"))
	// Output:
	// starttls true mx.example.test
	// true false
}

// startExampleServer starts an in-process SMTP server on one end of a
// net.Pipe and returns the other end, the roots that verify the server as
// "mx.example.test", and a function that waits for the server to finish.
// The server advertises STARTTLS when offer is true, and answers it with
// startReply if given (a go-ahead otherwise). Examples have no *testing.T,
// so they cannot use internal/scripttest.
func startExampleServer(offer bool, startReply ...string) (net.Conn, *x509.CertPool, func()) {
	cfg, roots := exampleTLS()
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		serveExample(server, cfg, offer, startReply)
	}()
	return client, roots, func() {
		client.Close()
		<-done
	}
}

// listenExampleServer serves one connection on 127.0.0.1 and returns its
// address, the roots, and a function that stops it.
func listenExampleServer() (string, *x509.CertPool, func()) {
	cfg, roots := exampleTLS()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		serveExample(conn, cfg, true, nil)
	}()
	return ln.Addr().String(), roots, func() {
		ln.Close()
		<-done
	}
}

// exampleTLS makes a throwaway CA and a server config for mx.example.test.
func exampleTLS() (*tls.Config, *x509.CertPool) {
	ca, err := tlsconf.NewCA("example CA")
	if err != nil {
		panic(err)
	}
	cert, err := ca.Issue("mx.example.test")
	if err != nil {
		panic(err)
	}
	cfg := tlsconf.Server(cert)
	// TLS 1.3 session tickets are written after the handshake; over
	// net.Pipe that write would wait for a client that is busy writing.
	cfg.SessionTicketsDisabled = true
	return cfg, ca.Pool()
}

// serveExample is a minimal SMTP server on the library's server side: it
// greets, answers EHLO, STARTTLS and QUIT, and closes on anything else.
func serveExample(conn net.Conn, cfg *tls.Config, offer bool, startReply []string) {
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	release := starttls.WatchContext(ctx, conn)
	defer release()
	c := starttls.NewConn(conn, &starttls.Options{Server: true})
	inTLS := false
	if c.WriteLine("220 mx.example.test ESMTP ready") != nil {
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
			lines := []string{"250-mx.example.test", "250-PIPELINING", "250-SIZE 10240000", "250 STARTTLS"}
			switch {
			case inTLS:
				lines = []string{"250-mx.example.test", "250-SIZE 52428800", "250 AUTH PLAIN LOGIN"}
			case !offer:
				lines = []string{"250-mx.example.test", "250 PIPELINING"}
			}
			for _, l := range lines {
				c.WriteLine(l)
			}
		case "STARTTLS":
			if len(startReply) > 0 {
				c.WriteLine(startReply[0])
				continue
			}
			tc, err := starttls.ServerUpgrade(ctx, c, &starttls.ServerSwitch{
				Protocol:  "smtp",
				GoAhead:   "220 2.0.0 Ready to start TLS",
				TLSConfig: cfg,
			})
			if err != nil {
				return
			}
			// No close_notify at the end: over net.Pipe it would wait for
			// a client that is writing its own; closing conn is enough.
			c, inTLS = tc, true
		case "QUIT":
			c.WriteLine("221 2.0.0 Bye")
			return
		default:
			c.WriteLine("502 5.5.2 command not recognized")
		}
	}
}
