package nntp_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/tlsup/tlsup/examples/nntp"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// exampleServer plays a small news server on conn: the greeting,
// CAPABILITIES (STARTTLS listed until TLS), STARTTLS, and QUIT.
func exampleServer(conn net.Conn, cfg *tls.Config) {
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := starttls.NewConn(conn, &starttls.Options{Server: true})
	caps := []string{"VERSION 2", "READER", "STARTTLS"}
	if c.WriteLine("200 news.example.test ready") != nil {
		return
	}
	for {
		line, err := c.ReadLine()
		if err != nil {
			return
		}
		switch strings.ToUpper(string(line)) {
		case "CAPABILITIES":
			c.WriteLine("101 Capability list:")
			for _, l := range caps {
				c.WriteLine(l)
			}
			err = c.WriteLine(".")
		case "STARTTLS":
			c, err = starttls.ServerUpgrade(ctx, c, &starttls.ServerSwitch{
				Protocol: "nntp", GoAhead: "382 Continue with TLS negotiation", TLSConfig: cfg})
			caps = []string{"VERSION 2", "READER", "AUTHINFO USER"}
		case "QUIT":
			c.WriteLine("205 bye")
			return
		default:
			err = c.WriteLine("500 unknown command")
		}
		if err != nil {
			return
		}
	}
}

// Upgrade an NNTP connection with STARTTLS (RFC 4642), then carry on with
// the session over TLS.
func ExampleUpgrade() {
	ca, err := tlsconf.NewCA("example CA")
	if err != nil {
		panic(err)
	}
	cert, err := ca.Issue("news.example.test")
	if err != nil {
		panic(err)
	}
	serverTLS := tlsconf.Server(cert)
	serverTLS.SessionTicketsDisabled = true // net.Pipe: nobody reads tickets
	conn, server := net.Pipe()
	go exampleServer(server, serverTLS)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tc, res, err := nntp.Upgrade(ctx, conn, &nntp.Options{
		TLSConfig: tlsconf.Client("news.example.test", ca.Pool()),
	})
	if err != nil {
		fmt.Println("upgrade failed:", err)
		return
	}
	defer tc.Close()
	fmt.Println("greeting:", res.Greeting)
	fmt.Println("before TLS:", res.Before.List())
	fmt.Println("TLS:", res.TLS, res.State.ServerName)
	fmt.Println("after TLS:", res.After.List())

	// The session goes on over res.Conn, the line reader on TLS.
	res.Conn.WriteLine("QUIT")
	reply, _ := res.Conn.ReadLine()
	fmt.Println(string(reply))
	// Output:
	// greeting: news.example.test ready
	// before TLS: [VERSION 2 READER STARTTLS]
	// TLS: true news.example.test
	// after TLS: [VERSION 2 READER AUTHINFO USER]
	// 205 bye
}

// A man in the middle strips STARTTLS: under the default policy the
// upgrade fails with ErrNotOffered, and nothing more is sent.
func ExampleUpgrade_stripped() {
	conn, server := net.Pipe()
	go func() {
		defer server.Close()
		c := starttls.NewConn(server, &starttls.Options{Server: true})
		c.WriteLine("200 news.example.test ready")
		c.ReadLine() // CAPABILITIES
		c.WriteLine("101 Capability list:")
		c.WriteLine("VERSION 2")
		c.WriteLine("XSTARTTLS")
		c.WriteLine(".")
		c.ReadLine()
	}()
	_, _, err := nntp.Upgrade(context.Background(), conn, &nntp.Options{
		TLSConfig: tlsconf.Client("news.example.test", nil),
	})
	fmt.Println(err)
	// Output:
	// nntp: discover: not offered
}
