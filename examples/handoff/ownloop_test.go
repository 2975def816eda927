package handoff_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"strings"
	"time"

	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// readReply reads one SMTP reply and returns its lines, code included.
func readReply(c *starttls.Conn) ([]string, error) {
	var lines []string
	err := c.ReadResponse(func(line []byte) (bool, error) {
		lines = append(lines, string(line))
		return len(line) > 3 && line[3] == '-', nil
	})
	return lines, err
}

// hasAUTH reports whether an EHLO reply offers AUTH.
func hasAUTH(reply []string) bool {
	for _, l := range reply[1:] {
		if strings.HasPrefix(l[4:], "AUTH") {
			return true
		}
	}
	return false
}

// A loop of your own: it read the greeting, said EHLO and STARTTLS, and
// uses starttls.ClientUpgrade for the switch alone (no byte buffered
// behind the go-ahead, handshake on the raw conn under ctx, fail closed),
// then forgets what it learned and says EHLO again (RFC 3207, Section 4.2).
func Example_ownLoop() {
	s, stop := startSMTP()
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		log.Fatal(err)
	}
	raw.SetDeadline(time.Now().Add(30 * time.Second)) // your loop bounds its own reads
	c := starttls.NewConn(raw, nil)
	defer c.Close()
	if _, err := readReply(c); err != nil { // 220 greeting
		log.Fatal(err)
	}
	c.WriteLine("EHLO client.example.test")
	before, err := readReply(c)
	if err != nil {
		log.Fatal(err)
	}
	c.WriteLine("STARTTLS")
	if reply, err := readReply(c); err != nil || !strings.HasPrefix(reply[0], "220") {
		log.Fatal(reply, err)
	}
	if _, err := starttls.ClientUpgrade(ctx, c, &starttls.ClientSwitch{
		Protocol: "smtp", TLSConfig: tlsconf.Client("localhost", s.roots),
	}); err != nil {
		log.Fatal(err) // the conn is closed
	}
	c.WriteLine("EHLO client.example.test") // c now reads and writes through TLS
	after, err := readReply(c)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("TLS:", c.TLS() != nil, "AUTH before TLS:", hasAUTH(before), "after:", hasAUTH(after))
	c.WriteLine("QUIT")
	readReply(c)
	// Output:
	// TLS: true AUTH before TLS: false after: true
}
