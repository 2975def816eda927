package imap_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/tlsup/tlsup/imap"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// exampleName is the name on the example server's certificate.
const exampleName = "imap.example.test"

// examplePKI returns a server config for exampleName and a client config
// that trusts only the throwaway CA that signed it.
func examplePKI() (server, client *tls.Config) {
	ca, err := tlsconf.NewCA("example CA")
	if err != nil {
		panic(err)
	}
	cert, err := ca.Issue(exampleName)
	if err != nil {
		panic(err)
	}
	server = tlsconf.Server(cert)
	// No session tickets: over net.Pipe their write after the handshake
	// would wait for a reader.
	server.SessionTicketsDisabled = true
	return server, tlsconf.Client(exampleName, ca.Pool())
}

// exampleServer plays a minimal IMAP server on conn: the greeting, then
// CAPABILITY, STARTTLS and LOGOUT. It returns when the client hangs up or
// logs out.
func exampleServer(conn net.Conn, cfg *tls.Config, greeting string, capsBefore string) {
	defer conn.Close()
	var c net.Conn = conn
	r := bufio.NewReader(c)
	send := func(line string) { io.WriteString(c, line+"\r\n") }
	send(greeting)
	tlsOn := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		tag, command, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		switch strings.ToUpper(command) {
		case "CAPABILITY":
			if tlsOn {
				send("* CAPABILITY IMAP4rev2 AUTH=PLAIN")
			} else {
				send("* CAPABILITY " + capsBefore)
			}
			send(tag + " OK CAPABILITY completed")
		case "STARTTLS":
			send(tag + " OK Begin TLS negotiation now")
			tc := tls.Server(conn, cfg)
			if tc.Handshake() != nil {
				return
			}
			c, r, tlsOn = tc, bufio.NewReader(tc), true
		case "LOGOUT":
			send("* BYE logging out")
			send(tag + " OK LOGOUT completed")
			return
		default:
			send(tag + " BAD unknown command")
		}
	}
}

// Upgrade an existing connection, then go on with the session over TLS.
func ExampleUpgrade() {
	serverConfig, clientConfig := examplePKI()
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		exampleServer(server, serverConfig, "* OK IMAP4rev2 server ready", "IMAP4rev2 STARTTLS LOGINDISABLED")
	}()
	defer func() { <-done }()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc, res, err := imap.Upgrade(ctx, client, &imap.Options{TLSConfig: clientConfig})
	if err != nil {
		fmt.Println("upgrade failed:", err) // client is closed already
		return
	}
	defer tc.Close()
	fmt.Println("tls:", res.TLS, tls.VersionName(res.State.Version), res.State.ServerName)
	fmt.Println("before:", res.Before.List())
	fmt.Println("after:", res.After.List())

	// The session continues on res.Conn, the line reader over TLS.
	res.Conn.WriteLine("a1 LOGOUT")
	imap.ReadResponses(res.Conn, 0, func(r *imap.Response) (bool, error) {
		fmt.Println(r.Tag, r.Status, r.Text)
		return r.Tag != "a1", nil
	})
	// Output:
	// tls: true TLS 1.3 imap.example.test
	// before: [IMAP4rev2 STARTTLS LOGINDISABLED]
	// after: [IMAP4rev2 AUTH=PLAIN]
	// * BYE logging out
	// a1 OK LOGOUT completed
}

// A PREAUTH greeting on a plaintext connection can never be upgraded: the
// client refuses it and closes the connection.
func ExampleUpgrade_preauth() {
	serverConfig, clientConfig := examplePKI()
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		exampleServer(server, serverConfig, "* PREAUTH IMAP4rev2 logged in as smith", "IMAP4rev2 STARTTLS")
	}()
	defer func() { <-done }()

	_, _, err := imap.Upgrade(context.Background(), client, &imap.Options{TLSConfig: clientConfig})
	fmt.Println(errors.Is(err, starttls.ErrPreauth))
	var reply *starttls.ReplyError
	if errors.As(err, &reply) {
		fmt.Printf("%s %q\n", reply.Status, reply.Text)
	}
	// Output:
	// true
	// PREAUTH "IMAP4rev2 logged in as smith"
}

// A man in the middle who strips STARTTLS from the capabilities gets
// ErrNotOffered under the default policy, and STARTTLS is never sent.
func ExampleUpgrade_stripped() {
	serverConfig, clientConfig := examplePKI()
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		exampleServer(server, serverConfig, "* OK ready", "IMAP4rev2 LOGINDISABLED")
	}()
	defer func() { <-done }()

	_, res, err := imap.Upgrade(context.Background(), client, &imap.Options{TLSConfig: clientConfig})
	fmt.Println(errors.Is(err, starttls.ErrNotOffered), res.TLS, res.Before.List())
	// Output:
	// true false [IMAP4rev2 LOGINDISABLED]
}

// Dial connects and upgrades in one call; with Mode Auto, port 993 would
// mean implicit TLS.
func ExampleDial() {
	serverConfig, clientConfig := examplePKI()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		exampleServer(conn, serverConfig, "* OK [CAPABILITY IMAP4rev2 STARTTLS] ready", "")
	}()
	defer func() { <-done }()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc, res, err := imap.Dial(ctx, "tcp", ln.Addr().String(), &imap.Options{TLSConfig: clientConfig})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tc.Close()
	fmt.Println(res.Mode, res.TLS, res.Greeting)
	fmt.Println(res.After.Has("auth=plain"), res.After.Has("STARTTLS"))
	// Output:
	// starttls true [CAPABILITY IMAP4rev2 STARTTLS] ready
	// true false
}

func ExampleParseCapabilities() {
	caps, err := imap.ParseCapabilities("IMAP4rev1 SASL-IR LITERAL+ STARTTLS AUTH=PLAIN")
	fmt.Println(caps.Has("starttls"), caps.Has("AUTH=PLAIN"), caps.Has("AUTH"), err)

	_, err = imap.ParseCapabilities("IMAP4rev1 STARTTLS\x00")
	fmt.Println(errors.Is(err, starttls.ErrProtocol))
	// Output:
	// true true false <nil>
	// true
}
