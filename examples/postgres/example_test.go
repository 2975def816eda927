package postgres_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/tlsup/tlsup/examples/postgres"
	"github.com/tlsup/tlsup/tlsconf"
)

// A server that answers the SSLRequest with 'S' and starts TLS; the client
// upgrades and would send its startup message on res.Conn, inside TLS.
func Example() {
	ca, _ := tlsconf.NewCA("example CA")
	cert, _ := ca.Issue("db.example.test")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		request := make([]byte, 8)
		if _, err := conn.Read(request); err != nil {
			return
		}
		conn.Write([]byte("S"))
		tc := tls.Server(conn, tlsconf.Server(cert))
		tc.Handshake()
		tc.Read(make([]byte, 1)) // until the client closes
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc, res, err := postgres.Dial(ctx, "tcp", ln.Addr().String(), &postgres.Options{
		TLSConfig: tlsconf.Client("db.example.test", ca.Pool()),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tc.Close()
	fmt.Println("tls:", res.TLS, "plaintext:", res.Plaintext)
	fmt.Println("verified name:", res.State.ServerName)
	// Output:
	// tls: true plaintext: false
	// verified name: db.example.test
}
