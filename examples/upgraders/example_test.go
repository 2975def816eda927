package upgraders_test

import (
	"fmt"

	"github.com/tlsup/tlsup/examples/upgraders"
)

// A fleet tool takes the protocol from its target list.
func ExampleNew() {
	for _, name := range []string{"smtp", "imap", "pop3", "sieve", "nntp", "ftp", "postgres", "ldap", "xmpp", "finger"} {
		u, err := upgraders.New(name, nil)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s %q\n", u.Protocol(), u.Keyword())
	}
	// Output:
	// smtp "STARTTLS"
	// imap "STARTTLS"
	// pop3 "STLS"
	// sieve "STARTTLS"
	// nntp "STARTTLS"
	// ftp "AUTH"
	// postgres ""
	// ldap ""
	// xmpp "starttls"
	// upgraders: unknown protocol "finger" (want one of ftp, imap, ldap, lmtp, nntp, pop3, postgres, sieve, smtp, xmpp)
}
