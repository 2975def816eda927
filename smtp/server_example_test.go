package smtp_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// A submission server that requires TLS: the front answers everything up to
// the handshake, and the server's own loop takes over inside TLS, starting
// from a clean state with a fresh EHLO.
func ExampleServer() {
	ca, err := tlsconf.NewCA("example CA")
	if err != nil {
		fmt.Println(err)
		return
	}
	cert, err := ca.Issue("mx.example.test")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := &smtp.Server{Options: starttls.ServerOptions{TLSConfig: tlsconf.Server(cert), Hostname: "mx.example.test"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	served := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		tc, err := srv.Serve(ctx, conn)
		if err != nil {
			served <- err
			return
		}
		defer tc.Close()
		// The server's own loop, inside TLS: EHLO, then QUIT.
		if _, err := tc.ReadLine(); err != nil {
			served <- err
			return
		}
		caps := smtp.Capabilities(&smtp.CapabilityOptions{TLS: true, Mechanisms: []string{"PLAIN"}})
		smtp.WriteReply(tc, 250, append([]string{"mx.example.test"}, caps.List()...)...)
		if _, err := tc.ReadLine(); err != nil {
			served <- err
			return
		}
		served <- tc.WriteLine("221 2.0.0 bye")
	}()

	tlsConn, res, err := smtp.Dial(ctx, "tcp", ln.Addr().String(), &smtp.Options{
		TLSConfig: tlsconf.Client("mx.example.test", ca.Pool()), Mode: starttls.StartTLS})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tlsConn.Close()
	fmt.Println("before TLS:", res.Before)
	fmt.Println("after TLS: ", res.After)
	res.Conn.WriteLine("QUIT")
	reply, err := smtp.ReadReply(res.Conn)
	fmt.Println(reply.Code, err, <-served)
	// Output:
	// before TLS: PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES, STARTTLS
	// after TLS:  PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES, AUTH PLAIN
	// 221 <nil> <nil>
}
