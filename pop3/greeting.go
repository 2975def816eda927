package pop3

import (
	"context"
	"strings"

	"github.com/tlsup/tlsup/starttls"
)

// Greet reads the server greeting (RFC 1939, Section 4): "+OK" opens the
// session; "-ERR" refuses it (starttls.ErrGreetingRejected, with a
// *starttls.ReplyError whose Status is "-ERR"); anything else matches
// starttls.ErrProtocol.
//
// The greeting is one line. Bytes that arrived with it, such as a forged
// CAPA list sent ahead of the question, would be read as the answer to
// CAPA, so they are a protocol violation too.
func (u *Upgrader) Greet(ctx context.Context, c *starttls.Conn) (starttls.Greeting, error) {
	r, err := ReadResponse(c)
	if err != nil {
		return starttls.Greeting{}, err
	}
	g := starttls.Greeting{Text: starttls.Escape(r.Text)}
	if !r.OK {
		return g, refusal("", r, starttls.ErrGreetingRejected)
	}
	if n := c.Buffered(); n > 0 {
		return g, starttls.NewProtocolError("%d bytes sent with the greeting before any command", n)
	}
	return g, nil
}

// APOPTimestamp returns the APOP timestamp of a greeting text, the first
// "<...>" holding an "@" (RFC 1939, Section 7), and whether there was one.
// It is harmless to read and useless for security: in STLS mode the
// greeting arrived in plaintext, so the timestamp is whatever a man in the
// middle chose. The package never sends APOP.
func APOPTimestamp(greeting string) (string, bool) {
	for rest := greeting; ; {
		start := strings.IndexByte(rest, '<')
		if start < 0 {
			return "", false
		}
		rest = rest[start:]
		end := strings.IndexByte(rest, '>')
		if end < 0 {
			return "", false
		}
		ts := rest[:end+1]
		if strings.Contains(ts, "@") && !strings.ContainsAny(ts[1:], "< ") {
			return ts, true
		}
		rest = rest[1:]
	}
}
