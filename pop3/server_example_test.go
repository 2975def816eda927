package pop3_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/tlsup/tlsup/pop3"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// The CAPA lists of a server that accepts USER/PASS and SASL PLAIN, before
// and after TLS.
func ExampleCapabilities() {
	opts := pop3.CapabilityOptions{UserPass: true, Mechanisms: []string{"PLAIN"}}
	fmt.Println(pop3.Capabilities(&opts).List())
	opts.TLS = true
	fmt.Println(pop3.Capabilities(&opts).List())
	// Output:
	// [UIDL RESP-CODES AUTH-RESP-CODE STLS]
	// [UIDL RESP-CODES AUTH-RESP-CODE USER SASL PLAIN]
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
	srv := &pop3.Server{Options: starttls.ServerOptions{TLSConfig: tlsconf.Server(cert), Hostname: "localhost"}}
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
		// The caller's loop, in the AUTHORIZATION state: the client asks
		// for the capabilities again inside TLS.
		line, err := c.ReadLine()
		if err != nil {
			return
		}
		if cmd, err := pop3.ParseCommand(string(line)); err == nil && cmd.Name == "CAPA" {
			caps := pop3.Capabilities(&pop3.CapabilityOptions{TLS: true, UserPass: true, Mechanisms: []string{"PLAIN"}})
			pop3.WriteMultiline(c, "+OK Capability list follows", caps.List())
		}
	}()

	tc, res, err := pop3.Dial(ctx, "tcp", ln.Addr().String(), &pop3.Options{TLSConfig: tlsconf.Client("localhost", ca.Pool())})
	if err != nil {
		fmt.Println(err)
		return
	}
	tc.Close()
	<-served
	fmt.Println("before TLS:", res.Before.List())
	fmt.Println("after TLS:", res.After.List())
	// Output:
	// before TLS: [UIDL RESP-CODES AUTH-RESP-CODE STLS]
	// after TLS: [UIDL RESP-CODES AUTH-RESP-CODE USER SASL PLAIN]
}
