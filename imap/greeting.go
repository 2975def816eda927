package imap

import (
	"context"

	"github.com/tlsup/tlsup/starttls"
)

// Greet reads the server greeting, one line (RFC 9051, Section 7.1):
//
//   - "* OK" opens the session; a [CAPABILITY ...] response code in it is
//     returned in Greeting.Capabilities (the core then skips the
//     CAPABILITY command before TLS; it never outlives TLS);
//   - "* PREAUTH" on a connection that is not TLS is an error matching
//     starttls.ErrPreauth: STARTTLS is only valid in the not-authenticated
//     state (RFC 9051, Section 6.2.1), so the session can never be secured.
//     On implicit TLS, PREAUTH is accepted like OK;
//   - "* BYE" is a *starttls.ReplyError with Status "BYE" matching
//     starttls.ErrGreetingRejected;
//   - anything else (garbage, "* NO", a tagged line, a continuation, a
//     malformed capability code) is starttls.ErrProtocol.
//
// Greeting.Text is the text after the status, the response code (its atom
// in upper case) included, escaped.
func (u *Upgrader) Greet(ctx context.Context, c *starttls.Conn) (starttls.Greeting, error) {
	line, err := c.ReadLine()
	if err != nil {
		return starttls.Greeting{}, err
	}
	r, err := ParseResponse(line)
	if err != nil {
		return starttls.Greeting{}, err
	}
	g := starttls.Greeting{Text: starttls.Escape(clientRespText(&r))}
	if r.Tag != "*" {
		return g, clientMalformed("greeting", string(line))
	}
	switch r.Status {
	case "OK", "PREAUTH":
		if r.Status == "PREAUTH" && c.TLS() == nil {
			// RFC 9051, Section 7.1.4 and RFC 2595, Section 3.1: a
			// preauthenticated plaintext session can no longer be
			// upgraded; carrying on would be a silent downgrade.
			return g, &starttls.ReplyError{Protocol: u.Protocol(), Status: r.Status, Text: g.Text, Kind: starttls.ErrPreauth}
		}
		if r.Code == "CAPABILITY" {
			caps, err := ParseCapabilities(r.CodeArgs)
			if err != nil {
				return g, err
			}
			g.Capabilities = caps
		}
		return g, nil
	case "BYE":
		return g, &starttls.ReplyError{Protocol: u.Protocol(), Status: r.Status, Text: g.Text, Kind: starttls.ErrGreetingRejected}
	}
	return g, clientMalformed("greeting", string(line))
}

// clientRespText returns the resp-text of a status response: the response
// code in its brackets, then the text.
func clientRespText(r *Response) string {
	if r.Code == "" {
		return r.Text
	}
	code := "[" + r.Code
	if r.CodeArgs != "" {
		code += " " + r.CodeArgs
	}
	code += "]"
	if r.Text == "" {
		return code
	}
	return code + " " + r.Text
}
