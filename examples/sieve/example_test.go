package sieve_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/tlsup/tlsup/examples/sieve"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// exampleServer plays a small ManageSieve server on conn: the greeting
// (its capabilities, STARTTLS among them), STARTTLS followed by the
// capabilities sent again unasked inside TLS, and LOGOUT.
func exampleServer(conn net.Conn, cfg *tls.Config) {
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := starttls.NewConn(conn, &starttls.Options{Server: true})
	capabilities := func(lines ...string) error {
		for _, l := range lines {
			c.WriteLine(l)
		}
		return c.WriteLine(`OK "ready"`)
	}
	if capabilities(`"IMPLEMENTATION" "Example ManageSieve"`, `"SASL" ""`, `"STARTTLS"`) != nil {
		return
	}
	for {
		line, err := c.ReadLine()
		if err != nil {
			return
		}
		switch strings.ToUpper(string(line)) {
		case "STARTTLS":
			c, err = starttls.ServerUpgrade(ctx, c, &starttls.ServerSwitch{
				Protocol: "sieve", GoAhead: `OK "Begin TLS negotiation now."`, TLSConfig: cfg})
			if err == nil {
				// RFC 5804, Section 2.2: the capabilities again, unasked.
				err = capabilities(`"IMPLEMENTATION" "Example ManageSieve"`, `"SASL" "PLAIN"`, `"SIEVE" "fileinto"`)
			}
		case "LOGOUT":
			c.WriteLine(`OK "bye"`)
			return
		default:
			err = c.WriteLine(`NO "unknown command"`)
		}
		if err != nil {
			return
		}
	}
}

// Upgrade a ManageSieve connection with STARTTLS (RFC 5804): the
// capabilities after TLS are the ones the server sends again inside it.
func ExampleUpgrade() {
	ca, err := tlsconf.NewCA("example CA")
	if err != nil {
		panic(err)
	}
	cert, err := ca.Issue("sieve.example.test")
	if err != nil {
		panic(err)
	}
	serverTLS := tlsconf.Server(cert)
	serverTLS.SessionTicketsDisabled = true // net.Pipe: nobody reads tickets
	conn, server := net.Pipe()
	go exampleServer(server, serverTLS)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tc, res, err := sieve.Upgrade(ctx, conn, &sieve.Options{
		TLSConfig: tlsconf.Client("sieve.example.test", ca.Pool()),
	})
	if err != nil {
		fmt.Println("upgrade failed:", err)
		return
	}
	defer tc.Close()
	fmt.Println("implementation:", res.Greeting)
	fmt.Printf("before TLS: %q\n", res.Before.List())
	fmt.Println("TLS:", res.TLS, res.State.ServerName)
	fmt.Printf("after TLS: %q\n", res.After.List())
	sasl, _ := res.After.Get("SASL")
	fmt.Println("SASL mechanisms:", sasl)

	res.Conn.WriteLine("LOGOUT")
	reply, _ := res.Conn.ReadLine()
	fmt.Println(string(reply))
	// Output:
	// implementation: Example ManageSieve
	// before TLS: ["IMPLEMENTATION Example ManageSieve" "SASL" "STARTTLS"]
	// TLS: true sieve.example.test
	// after TLS: ["IMPLEMENTATION Example ManageSieve" "SASL PLAIN" "SIEVE fileinto"]
	// SASL mechanisms: PLAIN
	// OK "bye"
}
