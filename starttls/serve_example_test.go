package starttls_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// knock is the server side of a made-up line protocol: all it writes is
// its dialogue. The core runs the loop, the bounds, the refusal count and
// the checked switch.
//
//	S: HELLO <host>              greeting
//	C: PING          S: PONG
//	C: BYE           S: BYE      the client leaves (ErrQuit)
//	C: TLS           S: GO       the upgrade; then TLS
//	anything else    S: NO tls first
type knock struct{ host string }

func (knock) Protocol() string { return "knock" }

func (k knock) Greeting() []string { return []string{"HELLO " + k.host} }

func (knock) Command(_ context.Context, _ *starttls.Conn, line []byte) (starttls.Reply, error) {
	switch verb, _, _ := strings.Cut(string(line), " "); verb {
	case "PING":
		return starttls.Reply{Lines: []string{"PONG"}}, nil
	case "BYE":
		return starttls.Reply{Lines: []string{"BYE"}, Close: starttls.ErrQuit}, nil
	case "TLS":
		return starttls.Reply{GoAhead: "GO", Refusal: "NO pipelined"}, nil
	}
	return starttls.Reply{Lines: []string{"NO tls first"}, Refused: true}, nil
}

func (knock) Farewell(reason starttls.CloseReason) []string {
	if reason == starttls.CloseIdle {
		return []string{"BYE idle"}
	}
	return []string{"BYE error"}
}

// Redact keeps "SECRET" and hides the rest from transcripts.
func (knock) Redact(line []byte) (int, bool) {
	if strings.HasPrefix(string(line), "SECRET ") {
		return len("SECRET"), true
	}
	return 0, false
}

// A made-up protocol gets a server front that requires TLS by writing only
// its dialogue. The client here runs its own plaintext loop and switches
// with ClientUpgrade.
func ExampleServe() {
	ca, err := tlsconf.NewCA("example CA")
	if err != nil {
		panic(err)
	}
	cert, err := ca.Issue("knock.example.test")
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	clientConn, serverConn := net.Pipe()
	defer clientConn.Close()

	served := make(chan error, 1)
	go func() {
		opts := &starttls.ServerOptions{TLSConfig: tlsconf.Server(cert), IdleTimeout: 5 * time.Second}
		session, err := starttls.Serve(ctx, serverConn, knock{host: "knock.example.test"}, opts)
		if err != nil {
			served <- err
			return
		}
		defer session.Close()
		// The caller's own loop inside TLS: here, one PING.
		if _, err = session.ReadLine(); err == nil {
			err = session.WriteLine("PONG over " + tls.VersionName(session.TLS().ConnectionState().Version))
		}
		served <- err
	}()

	c := starttls.NewConn(clientConn, nil)
	say := func(cmd string) {
		if cmd != "" {
			c.WriteLine(cmd)
			fmt.Println("C:", cmd)
		}
		line, _ := c.ReadLine()
		fmt.Println("S:", string(line))
	}
	say("")
	say("PING")
	say("SECRET hunter2")
	say("TLS")
	if _, err := starttls.ClientUpgrade(ctx, c, &starttls.ClientSwitch{
		Protocol:  "knock",
		TLSConfig: tlsconf.Client("knock.example.test", ca.Pool()),
	}); err != nil {
		fmt.Println(err)
		return
	}
	say("PING")
	fmt.Println("server:", <-served)
	// Output:
	// S: HELLO knock.example.test
	// C: PING
	// S: PONG
	// C: SECRET hunter2
	// S: NO tls first
	// C: TLS
	// S: GO
	// C: PING
	// S: PONG over TLS 1.3
	// server: <nil>
}
