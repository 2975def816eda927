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
	// one string: three allocations for the whole list.
	var textBuf [256]byte
	var endBuf [16]int
	code, texts, ends, err := scanReply(c, textBuf[:0], endBuf[:0])
	if err != nil {
		return nil, err
	}
	switch {
	case code == 250:
		return ehloCapabilities(string(texts), ends), nil
	case code >= 400:
		return nil, replyError(u.Protocol(), verb, replyOf(code, texts, ends), starttls.ErrRefused)
	}
	return nil, unexpected(verb, replyOf(code, texts, ends))
}

// ehloCapabilities makes the set of a 250 reply's keyword lines (all but
// the first), cut from all at ends into an array on the stack that
// NewCapabilities copies. It is kept out of Discover so that the array
// takes stack only once the reply is in, not during the wait for it: a
// goroutine blocked on an EHLO reply keeps a small stack.
//
//go:noinline
func ehloCapabilities(all string, ends []int) *starttls.Capabilities {
	var lineBuf [32]string
	lines := splitTexts(lineBuf[:0], all, ends)
	return starttls.NewCapabilities(lines[1:]...)
}
