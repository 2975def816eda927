package starttls_test

import (
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/tlsup/tlsup/starttls"
)

// Peer text is escaped before it reaches an error, a log or a terminal.
func ExampleEscape() {
	fmt.Println(starttls.Escape("220 \x1b[31mmx\x1b[0m \u202eready\r\n"))
	// Output: 220 \x1b[31mmx\x1b[0m \u202eready\r\n
}

// Keywords match whole and by ASCII case only.
func ExampleCapabilities_Has() {
	caps := starttls.NewCapabilities("PIPELINING", "SIZE 10240000", "XSTARTTLS", "ſTARTTLS")
	fmt.Println(caps.Has("STARTTLS"), caps.Has("pipelining"))
	size, _ := caps.Get("SIZE")
	fmt.Println(size)
	// Output:
	// false true
	// 10240000
}

// ReadLine strips CRLF (or a bare LF) and reports the end of the stream.
func ExampleConn_ReadLine() {
	client, server := net.Pipe()
	go func() {
		io.WriteString(server, "250-mx.example.test\r\n250 STARTTLS\n")
		server.Close()
	}()
	c := starttls.NewConn(client, nil)
	defer c.Close()
	for {
		line, err := c.ReadLine()
		if err != nil {
			fmt.Println(err)
			break
		}
		fmt.Printf("%q\n", line)
	}
	// Output:
	// "250-mx.example.test"
	// "250 STARTTLS"
	// EOF
}

// An argument that would smuggle a second command is refused and nothing is
// sent.
func ExampleConn_WriteCommand() {
	client, server := net.Pipe()
	defer server.Close()
	c := starttls.NewConn(client, nil)
	defer c.Close()
	err := c.WriteCommand("MAIL", "FROM:<a@example.test>\r\nRCPT TO:<victim@example.test>")
	fmt.Println(errors.Is(err, starttls.ErrUnsafeArgument))
	// Output: true
}

// An upgrade's error names the protocol and the step, and matches the kind
// sentinel with errors.Is.
func ExampleError() {
	err := &starttls.Error{Protocol: "smtp", Step: starttls.StepStartTLS, Kind: starttls.ErrInjectedData}
	fmt.Println(errors.Is(err, starttls.ErrInjectedData))
	fmt.Println(err)
	// Output:
	// true
	// smtp: starttls: data injected before tls
}
