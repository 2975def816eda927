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
	// The reply is read as ReadReply does, but the entries are cut from
	// one string into an array on the stack that NewCapabilities copies:
	// three allocations for the whole list.
	var textBuf [1024]byte
	var endBuf [32]int
	code, texts, ends, err := scanReply(c, textBuf[:0], endBuf[:0])
	if err != nil {
		return nil, err
	}
	var lineBuf [32]string
	lines := splitTexts(lineBuf[:0], string(texts), ends)
	switch {
	case code == 250:
	case code >= 400:
		return nil, replyError(u.Protocol(), verb, Reply{Code: code, Lines: lines}, starttls.ErrRefused)
	default:
		return nil, unexpected(verb, Reply{Code: code, Lines: lines})
	}
	return starttls.NewCapabilities(lines[1:]...), nil
}
