package smtp

import (
	"context"

	"github.com/tlsup/tlsup/starttls"
)

// Discover sends EHLO (LHLO for LMTP) and returns the extension keyword
// lines of the 250 reply, as sent, without the first (domain) line. A 4xx or
// 5xx reply is a *starttls.ReplyError matching starttls.ErrRefused: the
// server offers no extension, and there is no HELO fallback (RFC 3207
// needs EHLO). Any other code is starttls.ErrProtocol.
func (u *Upgrader) Discover(ctx context.Context, c *starttls.Conn) (*starttls.Capabilities, error) {
	verb := "EHLO"
	if u.LMTP {
		verb = "LHLO"
	}
	name, err := u.localName()
	if err != nil {
		return nil, err
	}
	if err := c.WriteCommand(verb, name); err != nil {
		return nil, err
	}
	r, err := ReadReply(c)
	if err != nil {
		return nil, err
	}
	switch {
	case r.Code == 250:
		// The first line names the server; the keywords follow it.
		return starttls.NewCapabilities(r.Lines[1:]...), nil
	case r.Code >= 400:
		return nil, replyError(u.Protocol(), verb, r, starttls.ErrRefused)
	}
	return nil, unexpected(verb, r)
}
