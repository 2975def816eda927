package ftp_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/tlsup/tlsup/examples/ftp"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// exampleServer plays a small FTP server's control connection on conn:
// the greeting, FEAT (AUTH TLS listed until TLS), AUTH TLS, PBSZ, PROT and
// QUIT.
func exampleServer(conn net.Conn, cfg *tls.Config) {
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := starttls.NewConn(conn, &starttls.Options{Server: true})
	features := []string{" AUTH TLS", " PBSZ", " PROT", " UTF8"}
	if c.WriteLine("220 ftp.example.test ready") != nil {
		return
	}
	for {
		line, err := c.ReadLine()
		if err != nil {
			return
		}
		switch cmd := strings.ToUpper(string(line)); cmd {
		case "FEAT":
			c.WriteLine("211-Features:")
			for _, f := range features {
				c.WriteLine(f)
			}
			err = c.WriteLine("211 End")
		case "AUTH TLS":
			c, err = starttls.ServerUpgrade(ctx, c, &starttls.ServerSwitch{
				Protocol: "ftp", GoAhead: "234 Proceed with negotiation.", TLSConfig: cfg})
			features = []string{" PBSZ", " PROT", " UTF8"}
		case "PBSZ 0":
			err = c.WriteLine("200 PBSZ set to 0.")
		case "PROT P":
			err = c.WriteLine("200 PROT now Private.")
		case "QUIT":
			c.WriteLine("221 Goodbye.")
			return
		default:
			err = c.WriteLine("500 Unknown command.")
		}
		if err != nil {
			return
		}
	}
}

// Secure an FTP control connection with AUTH TLS (RFC 4217), then protect
// the data connections to come with PBSZ 0 and PROT P: the caller's next
// step, since data connections are outside this package.
func ExampleUpgrade() {
	ca, err := tlsconf.NewCA("example CA")
	if err != nil {
		panic(err)
	}
	cert, err := ca.Issue("ftp.example.test")
	if err != nil {
		panic(err)
	}
	serverTLS := tlsconf.Server(cert)
	serverTLS.SessionTicketsDisabled = true // net.Pipe: nobody reads tickets
	conn, server := net.Pipe()
	go exampleServer(server, serverTLS)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tc, res, err := ftp.Upgrade(ctx, conn, &ftp.Options{
		TLSConfig: tlsconf.Client("ftp.example.test", ca.Pool()),
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

	// RFC 4217, Sections 8 and 9: no buffer size, private data channel.
	for _, cmd := range []string{"PBSZ 0", "PROT P", "QUIT"} {
		if err := res.Conn.WriteLine(cmd); err != nil {
			fmt.Println(err)
			return
		}
		reply, err := ftp.ReadReply(res.Conn)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(cmd, "->", reply.Code, reply.Text())
	}
	// Output:
	// greeting: ftp.example.test ready
	// before TLS: [AUTH TLS PBSZ PROT UTF8]
	// TLS: true ftp.example.test
	// after TLS: [PBSZ PROT UTF8]
	// PBSZ 0 -> 200 PBSZ set to 0.
	// PROT P -> 200 PROT now Private.
	// QUIT -> 221 Goodbye.
}
