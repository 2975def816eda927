package smtp

import (
	"context"

	"github.com/tlsup/tlsup/starttls"
)

// Greet reads the server greeting (RFC 5321, Section 4.3.2): 220 opens the
// session; 554 and 421 refuse it (starttls.ErrGreetingRejected, with a
// *starttls.ReplyError); any other reply is starttls.ErrProtocol.
func (u *Upgrader) Greet(ctx context.Context, c *starttls.Conn) (starttls.Greeting, error) {
	r, err := ReadReply(c)
	if err != nil {
		return starttls.Greeting{}, err
	}
	g := starttls.Greeting{Text: r.Text()}
	switch r.Code {
	case 220:
		return g, nil
	case 421, 554:
		return g, replyError(u.Protocol(), "", r, starttls.ErrGreetingRejected)
	}
	return g, starttls.NewProtocolError("greeting with code %d: %s", r.Code, r.Text())
}
