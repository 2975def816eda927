package pop3_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/tlsup/tlsup/pop3"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// exampleServer plays a small POP3 server on conn for the examples: the
// greeting, CAPA (before lists the capabilities before TLS), STLS (answered
// stls, "+OK" starting TLS with cfg), CAPA inside TLS, and QUIT.
func exampleServer(conn net.Conn, cfg *tls.Config, before []string, stls string) {
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := starttls.NewConn(conn, &starttls.Options{Server: true})
	caps := before
	if c.WriteLine("+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>") != nil {
		return
	}
	for {
		line, err := c.ReadLine()
		if err != nil {
			return
		}
		switch strings.ToUpper(string(line)) {
		case "CAPA":
			err = pop3.WriteMultiline(c, "+OK Capability list follows", caps)
		case "STLS":
			if !strings.HasPrefix(stls, "+OK") {
				err = c.WriteLine(stls)
				break
			}
			c, err = starttls.ServerUpgrade(ctx, c, &starttls.ServerSwitch{Protocol: "pop3", GoAhead: stls, TLSConfig: cfg})
			caps = []string{"TOP", "UIDL", "USER", "SASL PLAIN"}
		case "QUIT":
			c.WriteLine("+OK bye")
			return
		default:
			err = c.WriteLine("-ERR unknown command")
		}
		if err != nil {
			return
		}
	}
}

// examplePKI returns a server config for pop.example.test and a client
// config that trusts only its throwaway CA.
func examplePKI() (server, client *tls.Config) {
	ca, err := tlsconf.NewCA("example CA")
	if err != nil {
		panic(err)
	}
	cert, err := ca.Issue("pop.example.test")
	if err != nil {
		panic(err)
	}
	server = tlsconf.Server(cert)
	// net.Pipe is synchronous: no session tickets written after the
	// handshake that nobody reads.
	server.SessionTicketsDisabled = true
	return server, tlsconf.Client("pop.example.test", ca.Pool())
}

// Upgrade an existing POP3 connection with STLS, then carry on with the
// session over TLS.
func ExampleUpgrade() {
	serverTLS, clientTLS := examplePKI()
	conn, server := net.Pipe()
	go exampleServer(server, serverTLS, []string{"TOP", "UIDL", "STLS"}, "+OK Begin TLS negotiation")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tc, res, err := pop3.Upgrade(ctx, conn, &pop3.Options{TLSConfig: clientTLS})
	if err != nil {
		fmt.Println(err) // conn is already closed
		return
	}
	defer tc.Close()
	fmt.Println("tls:", res.TLS, "verified:", res.State.VerifiedChains != nil)
	fmt.Println("before:", res.Before.List())
	fmt.Println("after:", res.After.List())

	// The session goes on over res.Conn, the line reader on the TLS conn.
	if err := res.Conn.WriteLine("QUIT"); err != nil {
		fmt.Println(err)
		return
	}
	r, err := pop3.ReadResponse(res.Conn)
	fmt.Println(r.OK, r.Text, err)
	// Output:
	// tls: true verified: true
	// before: [TOP UIDL STLS]
	// after: [TOP UIDL USER SASL PLAIN]
	// true bye <nil>
}

// A man in the middle strips STLS from the CAPA reply: under the default
// policy the upgrade fails with ErrNotOffered, and STLS is never sent.
func ExampleUpgrade_stripped() {
	serverTLS, clientTLS := examplePKI()
	conn, server := net.Pipe()
	go exampleServer(server, serverTLS, []string{"TOP", "UIDL"}, "+OK Begin TLS negotiation")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, res, err := pop3.Upgrade(ctx, conn, &pop3.Options{TLSConfig: clientTLS})
	fmt.Println(errors.Is(err, starttls.ErrNotOffered), res.TLS)
	fmt.Println(err)
	// Output:
	// true false
	// pop3: discover: not offered
}

// The server answers STLS with -ERR: the reply is in the error chain.
func ExampleUpgrade_refused() {
	serverTLS, clientTLS := examplePKI()
	conn, server := net.Pipe()
	go exampleServer(server, serverTLS, []string{"STLS"}, "-ERR [SYS/TEMP] TLS temporarily unavailable")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := pop3.Upgrade(ctx, conn, &pop3.Options{TLSConfig: clientTLS})
	var reply *starttls.ReplyError
	if errors.Is(err, starttls.ErrRefused) && errors.As(err, &reply) {
		fmt.Println(reply.Command, reply.Status, reply.Text)
	}
	// Output:
	// STLS -ERR [SYS/TEMP] TLS temporarily unavailable
}

// Opportunistic is an explicit opt-in: without STLS advertised the session
// continues in plaintext, and the result says so.
func ExampleUpgrade_opportunistic() {
	serverTLS, clientTLS := examplePKI()
	conn, server := net.Pipe()
	go exampleServer(server, serverTLS, []string{"TOP", "USER"}, "+OK Begin TLS negotiation")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tc, res, err := pop3.Upgrade(ctx, conn, &pop3.Options{TLSConfig: clientTLS, Policy: starttls.Opportunistic})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer res.Conn.Close()
	fmt.Println("tls:", res.TLS, "plaintext:", res.Plaintext, "tls conn:", tc != nil)
	// Output:
	// tls: false plaintext: true tls conn: false
}

func ExampleAPOPTimestamp() {
	ts, ok := pop3.APOPTimestamp("POP3 server ready <1896.697170952@dbc.mtview.ca.us>")
	fmt.Println(ts, ok)
	_, ok = pop3.APOPTimestamp("Dovecot ready.")
	fmt.Println(ok)
	// Output:
	// <1896.697170952@dbc.mtview.ca.us> true
	// false
}

// Read a multi-line response, dot-stuffing undone (RFC 1939, Section 3).
func ExampleReadMultiline() {
	client, server := net.Pipe()
	defer client.Close()
	go func() {
		defer server.Close()
		server.Write([]byte("+OK 2 messages\r\n1 120\r\n..2 starts with a dot\r\n.\r\n"))
	}()
	c := starttls.NewConn(client, nil)
	status, err := pop3.ReadResponse(c)
	if err != nil || !status.OK {
		fmt.Println(status, err)
		return
	}
	lines, err := pop3.ReadMultiline(c)
	fmt.Printf("%q %v\n", lines, err)
	// Output:
	// ["1 120" ".2 starts with a dot"] <nil>
}
