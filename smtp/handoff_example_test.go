package smtp_test

import (
	"context"
	"fmt"
	netsmtp "net/smtp"
	"time"

	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/tlsconf"
)

// net/smtp continues a session that Upgrade secured: HandOff replays a
// greeting and answers net/smtp's EHLO from the capabilities discovered
// inside TLS, and TLSAuth tells its PlainAuth that the session is TLS.
func ExampleHandOff() {
	addr, roots, stop := listenExampleServer()
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tc, res, err := smtp.Dial(ctx, "tcp", addr, &smtp.Options{TLSConfig: tlsconf.Client("mx.example.test", roots)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tc.Close()
	c, err := netsmtp.NewClient(smtp.HandOff(res), "mx.example.test")
	if err != nil {
		fmt.Println(err)
		return
	}
	ok, mechanisms := c.Extension("AUTH") // answered locally: no second EHLO
	fmt.Println("AUTH:", ok, mechanisms)
	auth := smtp.TLSAuth(netsmtp.PlainAuth("", "user", "secret", "mx.example.test"), res)
	_, _, err = auth.Start(&netsmtp.ServerInfo{Name: "mx.example.test", Auth: []string{"PLAIN"}})
	fmt.Println("PlainAuth would send the password:", err == nil)
	fmt.Println("QUIT:", c.Quit())
	// Output:
	// AUTH: true PLAIN LOGIN
	// PlainAuth would send the password: true
	// QUIT: <nil>
}
