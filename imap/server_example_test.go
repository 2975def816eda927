package imap_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/tlsup/tlsup/imap"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// The capability lists of a server that offers AUTH=PLAIN, before and after
// TLS.
func ExampleCapabilities() {
	mechs := []string{"PLAIN"}
	fmt.Println(imap.CapabilityLine(imap.Capabilities(&imap.CapabilityOptions{Mechanisms: mechs})))
	fmt.Println(imap.CapabilityLine(imap.Capabilities(&imap.CapabilityOptions{TLS: true, Mechanisms: mechs})))
	// Output:
	// * CAPABILITY IMAP4rev1 LITERAL- STARTTLS LOGINDISABLED
	// * CAPABILITY IMAP4rev1 LITERAL- AUTH=PLAIN
}

// A server that requires TLS: the front runs the plaintext dialogue, the
// caller's own loop takes over inside TLS. The library's client dials it.
func ExampleServer() {
	ca, err := tlsconf.NewCA("example CA")
	if err != nil {
		fmt.Println(err)
		return
	}
	cert, err := ca.Issue("localhost", "127.0.0.1")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := &imap.Server{Options: starttls.ServerOptions{TLSConfig: tlsconf.Server(cert), Hostname: "localhost"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	served := make(chan struct{})
	go func() {
		defer close(served)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		c, err := srv.Serve(ctx, conn)
		if err != nil {
			return // conn is closed
		}
		defer c.Close()
		// The caller's loop, in the not authenticated state: the client
		// asks for the capabilities again inside TLS.
		cmd, err := imap.ReadCommand(c, nil)
		if err == nil && cmd.Name == "CAPABILITY" {
			caps := imap.Capabilities(&imap.CapabilityOptions{TLS: true, Mechanisms: []string{"PLAIN"}})
			c.WriteLine(imap.CapabilityLine(caps))
			c.WriteLine(cmd.Tag + " OK CAPABILITY completed")
		}
	}()

	tc, res, err := imap.Dial(ctx, "tcp", ln.Addr().String(), &imap.Options{TLSConfig: tlsconf.Client("localhost", ca.Pool())})
	if err != nil {
		fmt.Println(err)
		return
	}
	tc.Close()
	<-served
	fmt.Println("before TLS:", res.Before.List())
	fmt.Println("after TLS:", res.After.List())
	// Output:
	// before TLS: [IMAP4rev1 LITERAL- STARTTLS LOGINDISABLED]
	// after TLS: [IMAP4rev1 LITERAL- AUTH=PLAIN]
}
