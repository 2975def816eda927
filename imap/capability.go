package imap

import (
	"context"

	"github.com/tlsup/tlsup/starttls"
)

// Discover sends CAPABILITY with a fresh tag and returns the atoms of the
// untagged CAPABILITY response that answers it (RFC 9051, Section 6.1.1),
// as sent, in order. Other untagged responses before the completion are
// read and dropped (literals included), and so is a [CAPABILITY ...] code
// in the tagged OK: the list comes from the CAPABILITY response only.
//
// Errors: a NO or BAD completion, or an untagged BYE, is a
// *starttls.ReplyError matching starttls.ErrRefused (before TLS the core
// treats it as "nothing offered"); an OK without a CAPABILITY response, a
// continuation request, a completion with another tag, or a malformed
// response or capability is starttls.ErrProtocol; the bounds give
// starttls.ErrTooLarge; read errors are returned as they are.
func (u *Upgrader) Discover(ctx context.Context, c *starttls.Conn) (*starttls.Capabilities, error) {
	var caps *starttls.Capabilities
	done, err := u.command(c, "CAPABILITY", func(r *Response) error {
		if r.Status != "" || r.Name != "CAPABILITY" {
			return nil
		}
		if r.Literals > 0 {
			return clientMalformed("literal in a CAPABILITY response", r.Args)
		}
		if caps == nil {
			var err error
			caps, err = ParseCapabilities(r.Args)
			return err
		}
		// RFC 9051 wants a single CAPABILITY response; should a server
		// split its list, the parts are joined, within maxCapabilities.
		return addCapabilities(caps, r.Args)
	})
	if err != nil {
		return nil, err
	}
	if err := u.completion("CAPABILITY", done); err != nil {
		return nil, err
	}
	if caps == nil {
		return nil, starttls.NewProtocolError("CAPABILITY completed without a CAPABILITY response")
	}
	return caps, nil
}
