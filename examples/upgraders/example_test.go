package upgraders_test

import (
	"fmt"

	"github.com/tlsup/tlsup/examples/upgraders"
)

// A fleet tool takes the protocol from its target list.
func ExampleNew() {
	for _, name := range []string{"smtp", "imap", "pop3", "finger"} {
		u, err := upgraders.New(name, nil)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(u.Protocol(), u.Keyword())
	}
	// Output:
	// smtp STARTTLS
	// imap STARTTLS
	// pop3 STLS
	// upgraders: unknown protocol "finger" (want one of imap, lmtp, pop3, smtp)
}
