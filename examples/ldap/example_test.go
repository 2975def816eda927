package ldap_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/tlsup/tlsup/examples/ldap"
	"github.com/tlsup/tlsup/tlsconf"
)

// A directory server that accepts StartTLS; the client upgrades and would
// bind on res.Conn, inside TLS.
func Example() {
	ca, _ := tlsconf.NewCA("example CA")
	cert, _ := ca.Issue("ldap.example.test")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		request := make([]byte, len(ldap.StartTLSRequest()))
		if _, err := io.ReadFull(conn, request); err != nil {
			return
		}
		// LDAPMessage { 1, extendedResp { success, "", "", responseName } }
		success := append([]byte{0x30, 0x24, 0x02, 0x01, 0x01, 0x78, 0x1f,
			0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00, 0x8a, 0x16}, ldap.OIDStartTLS...)
		conn.Write(success)
		tc := tls.Server(conn, tlsconf.Server(cert))
		tc.Handshake()
		tc.Read(make([]byte, 1)) // until the client closes
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc, res, err := ldap.Dial(ctx, "tcp", ln.Addr().String(), &ldap.Options{
		TLSConfig: tlsconf.Client("ldap.example.test", ca.Pool()),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tc.Close()
	fmt.Println(res.Protocol, res.Mode, "tls:", res.TLS)
	fmt.Println("verified name:", res.State.ServerName)
	// Output:
	// ldap starttls tls: true
	// verified name: ldap.example.test
}
