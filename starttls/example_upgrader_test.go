package starttls_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// chat is a made-up line protocol, plugged into the core by implementing
// starttls.Upgrader:
//
//	S: OK text                 greeting
//	C: CAPS                    capabilities, one "* " line each, then OK
//	C: GO                      upgrade: OK is the go-ahead, NO a refusal
type chat struct{}

func (chat) Protocol() string { return "chat" }
func (chat) Keyword() string  { return "STARTTLS" }

// ImplicitPort implements starttls.ImplicitPorter: Mode Auto starts TLS
// at once on this port.
func (chat) ImplicitPort() int { return 7443 }

// Redact implements starttls.Redactor: "PASSWORD secret" is recorded as
// "PASSWORD <redacted>".
func (chat) Redact(line []byte) (keep int, ok bool) {
	if strings.HasPrefix(string(line), "PASSWORD ") {
		return len("PASSWORD"), true
	}
	return 0, false
}

func (chat) Greet(ctx context.Context, c *starttls.Conn) (starttls.Greeting, error) {
	line, err := c.ReadLine()
	if err != nil {
		return starttls.Greeting{}, err
	}
	text, ok := strings.CutPrefix(string(line), "OK ")
	if !ok {
		return starttls.Greeting{}, starttls.NewProtocolError("greeting \"%s\"", starttls.Escape(string(line)))
	}
	return starttls.Greeting{Text: starttls.Escape(text)}, nil
}

func (chat) Discover(ctx context.Context, c *starttls.Conn) (*starttls.Capabilities, error) {
	if err := c.WriteLine("CAPS"); err != nil {
		return nil, err
	}
	caps := &starttls.Capabilities{}
	err := c.ReadResponse(func(line []byte) (bool, error) {
		if entry, ok := strings.CutPrefix(string(line), "* "); ok {
			caps.Add(entry)
			return true, nil
		}
		if string(line) == "OK" {
			return false, nil
		}
		return false, starttls.NewProtocolError("CAPS line \"%s\"", starttls.Escape(string(line)))
	})
	return caps, err
}

func (chat) StartTLS(ctx context.Context, c *starttls.Conn) error {
	if err := c.WriteLine("GO"); err != nil {
		return err
	}
	line, err := c.ReadLine()
	if err != nil {
		return err
	}
	switch s := string(line); {
	case s == "OK":
		return nil
	case strings.HasPrefix(s, "NO"):
		return &starttls.ReplyError{Protocol: "chat", Command: "GO", Status: "NO",
			Text: starttls.Escape(strings.TrimPrefix(s, "NO ")), Kind: starttls.ErrRefused}
	}
	return starttls.NewProtocolError("GO answered \"%s\"", starttls.Escape(string(line)))
}

// examplePKI returns a server config and a client config that trusts it,
// for the name chat.example.test, from a throwaway CA.
func examplePKI() (server, client *tls.Config) {
	ca, err := tlsconf.NewCA("example CA")
	if err != nil {
		panic(err)
	}
	cert, err := ca.Issue("chat.example.test")
	if err != nil {
		panic(err)
	}
	return tlsconf.Server(cert), tlsconf.Client("chat.example.test", ca.Pool())
}

// chatServer plays a chat server on conn: lines before TLS, the go-ahead,
// the handshake, then lines inside TLS.
func chatServer(conn net.Conn, cfg *tls.Config, before, inside []string) {
	defer conn.Close()
	c := starttls.NewConn(conn, &starttls.Options{Server: true})
	for _, l := range before {
		if strings.HasPrefix(l, "? ") { // wait for the client's line
			if _, err := c.ReadLine(); err != nil {
				return
			}
			continue
		}
		if c.WriteLine(l) != nil {
			return
		}
	}
	tc := tls.Server(conn, cfg)
	if tc.Handshake() != nil {
		return
	}
	// Read to the client's close: a close_notify written to a net.Pipe
	// nobody reads would wait.
	defer io.Copy(io.Discard, tc)
	s := starttls.NewConn(tc, &starttls.Options{Server: true})
	for _, l := range inside {
		if strings.HasPrefix(l, "? ") {
			if _, err := s.ReadLine(); err != nil {
				return
			}
			continue
		}
		if s.WriteLine(l) != nil {
			return
		}
	}
}

// A protocol the core has never heard of gets the whole upgrade (policy,
// injection check, verified handshake, fresh capabilities, redacted
// transcript) by implementing Upgrader.
func ExampleUpgrader() {
	serverTLS, clientTLS := examplePKI()
	client, server := net.Pipe()
	go chatServer(server, serverTLS,
		[]string{"OK chat server ready", "? CAPS", "* STARTTLS", "* SIZE 100", "OK", "? GO", "OK"},
		[]string{"? CAPS", "* SIZE 1000", "* LOGIN", "OK", "? PASSWORD hunter2", "OK welcome"})

	var transcript strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc, res, err := starttls.Upgrade(ctx, client, chat{}, &starttls.Config{
		TLSConfig: clientTLS,
		Conn:      &starttls.Options{Transcript: &transcript},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tc.Close()
	fmt.Println("greeting:", res.Greeting)
	fmt.Println("before TLS:", res.Before)
	fmt.Println("inside TLS:", res.After)

	// The session continues on res.Conn.
	res.Conn.WriteLine("PASSWORD hunter2")
	line, _ := res.Conn.ReadLine()
	fmt.Println(string(line))
	fmt.Print(transcript.String())
	// Output:
	// greeting: chat server ready
	// before TLS: STARTTLS, SIZE 100
	// inside TLS: SIZE 1000, LOGIN
	// OK welcome
	// S: OK chat server ready
	// C: CAPS
	// S: * STARTTLS
	// S: * SIZE 100
	// S: OK
	// C: GO
	// S: OK
	// -- TLS --
	// C: CAPS
	// S: * SIZE 1000
	// S: * LOGIN
	// S: OK
	// C: PASSWORD <redacted>
	// S: OK welcome
}

// A caller whose own loop read the greeting and sent its hello and
// STARTTLS hands over to ClientUpgrade right after the go-ahead: it checks
// that nothing is buffered behind it, verifies the server, and moves the
// Conn onto TLS, where the caller asks again for what it learned before.
func ExampleClientUpgrade() {
	serverTLS, clientTLS := examplePKI()
	client, server := net.Pipe()
	go chatServer(server, serverTLS,
		[]string{"220 ready", "? HELLO", "250 STARTTLS", "? STARTTLS", "220 go ahead"},
		[]string{"? HELLO", "250 AUTH PLAIN"})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := starttls.NewConn(client, nil)
	c.SetDeadline(time.Now().Add(10 * time.Second)) // the caller's own loop bounds itself
	for _, command := range []string{"", "HELLO client.example.test", "STARTTLS"} {
		if command != "" {
			c.WriteLine(command)
		}
		line, err := c.ReadLine()
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("plaintext:", string(line))
	}
	c.SetDeadline(time.Time{})

	tc, err := starttls.ClientUpgrade(ctx, c, &starttls.ClientSwitch{Protocol: "chat", TLSConfig: clientTLS})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tc.Close()
	c.WriteLine("HELLO client.example.test")
	line, _ := c.ReadLine()
	fmt.Println("inside TLS:", string(line), tc.ConnectionState().ServerName)
	// Output:
	// plaintext: 220 ready
	// plaintext: 250 STARTTLS
	// plaintext: 220 go ahead
	// inside TLS: 250 AUTH PLAIN chat.example.test
}
