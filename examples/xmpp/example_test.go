package xmpp_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/tlsup/tlsup/examples/xmpp"
	"github.com/tlsup/tlsup/tlsconf"
)

// An XMPP server that offers STARTTLS; the client upgrades, restarts the
// stream inside TLS and reports the features before and after.
func Example() {
	ca, _ := tlsconf.NewCA("example CA")
	cert, _ := ca.Issue("chat.example.test")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	header := "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='chat.example.test' id='1' version='1.0'>"
	// readUntil reads the client's bytes up to and including s.
	readUntil := func(r io.Reader, s string) {
		var got []byte
		b := make([]byte, 1)
		for !strings.HasSuffix(string(got), s) {
			if _, err := r.Read(b); err != nil {
				return
			}
			got = append(got, b[0])
		}
	}
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		readUntil(conn, "streams'>")
		io.WriteString(conn, header+"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>")
		readUntil(conn, "/>")
		io.WriteString(conn, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
		tc := tls.Server(conn, tlsconf.Server(cert))
		readUntil(tc, "streams'>")
		io.WriteString(tc, header+"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>")
		tc.Read(make([]byte, 1)) // until the client closes
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc, res, err := xmpp.Dial(ctx, "tcp", ln.Addr().String(), &xmpp.Options{
		Domain:    "chat.example.test",
		TLSConfig: tlsconf.Client("chat.example.test", ca.Pool()),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tc.Close()
	fmt.Println("stream from:", res.Greeting)
	fmt.Println("before:", res.Before.List())
	fmt.Println("after:", res.After.List())
	// Output:
	// stream from: chat.example.test
	// before: [starttls required]
	// after: [mechanisms PLAIN SCRAM-SHA-1]
}
