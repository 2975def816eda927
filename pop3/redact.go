package pop3

import (
	"bytes"

	"github.com/tlsup/tlsup/starttls"
)

// ImplicitPort returns 995, the pop3s port of RFC 8314, Section 3.3.
func (u *Upgrader) ImplicitPort() int { return 995 }

// Redact implements [starttls.Redactor] for transcripts: the arguments of
// PASS and APOP (RFC 1939, Section 7) are hidden, and the initial response
// of AUTH (RFC 5034), whose mechanism is shown.
func (u *Upgrader) Redact(line []byte) (keep int, ok bool) { return redact(line) }

// redact is the POP3 transcript rule, for the client and the server.
func redact(line []byte) (keep int, ok bool) {
	verb, rest, found := bytes.Cut(line, []byte(" "))
	if !found {
		return 0, false
	}
	switch {
	case starttls.EqualFold(string(verb), "PASS"), starttls.EqualFold(string(verb), "APOP"):
		return len(verb), true
	case starttls.EqualFold(string(verb), "AUTH"):
		mechanism, _, hasResponse := bytes.Cut(rest, []byte(" "))
		if !hasResponse {
			return 0, false
		}
		return len(verb) + 1 + len(mechanism), true
	}
	return 0, false
}
