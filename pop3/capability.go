package pop3

import (
	"context"
	"strings"

	"github.com/tlsup/tlsup/starttls"
)

// Discover sends CAPA (RFC 2449, Section 5) and returns the capability
// lines of the "+OK" reply, each whole as sent ("SASL PLAIN LOGIN"), with
// dot-stuffing undone and empty lines skipped. A "-ERR" reply is a
// *starttls.ReplyError matching starttls.ErrRefused: the server knows no
// CAPA, so it offers no STLS (RFC 2595, Section 4 advertises STLS only
// through CAPA). Any other status line, an unstuffed line starting with
// ".", or a line holding CR or NUL matches starttls.ErrProtocol; a reply
// over the line or line-count bounds of c matches starttls.ErrTooLarge.
func (u *Upgrader) Discover(ctx context.Context, c *starttls.Conn) (*starttls.Capabilities, error) {
	if err := c.WriteLine("CAPA"); err != nil {
		return nil, err
	}
	r, err := ReadResponse(c)
	if err != nil {
		return nil, err
	}
	if !r.OK {
		return nil, refusal("CAPA", r, starttls.ErrRefused)
	}
	lines, err := ReadMultiline(c)
	if err != nil {
		return nil, err
	}
	caps := &starttls.Capabilities{}
	for _, line := range lines {
		if line == "" {
			continue
		}
		// RFC 2449, Section 5: a capability line is printable ASCII. A CR
		// or NUL inside it could split or truncate the entry downstream.
		if i := strings.IndexAny(line, "\r\x00"); i >= 0 {
			return nil, starttls.NewProtocolError("CAPA line \"%s\" holds a control character at offset %d",
				starttls.Escape(line), i)
		}
		caps.Add(line)
	}
	return caps, nil
}
