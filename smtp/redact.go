package smtp

import (
	"bytes"

	"github.com/tlsup/tlsup/starttls"
)

// ImplicitPort returns 465, the submissions port of RFC 8314, Section 3.3;
// 0 for LMTP, which has none.
func (u *Upgrader) ImplicitPort() int {
	if u.LMTP {
		return 0
	}
	return 465
}

// Redact implements [starttls.Redactor] for transcripts: an AUTH command's
// initial response (RFC 4954, Section 4) is hidden, the mechanism shown.
func (u *Upgrader) Redact(line []byte) (keep int, ok bool) { return redact(line) }

// redact is the SMTP transcript rule, for the client and the server.
func redact(line []byte) (keep int, ok bool) {
	verb, rest, found := bytes.Cut(line, []byte(" "))
	if !found || !starttls.EqualFold(string(verb), "AUTH") {
		return 0, false
	}
	mechanism, _, hasResponse := bytes.Cut(rest, []byte(" "))
	if !hasResponse {
		return 0, false // "AUTH PLAIN": nothing secret yet
	}
	return len(verb) + 1 + len(mechanism), true
}
