package imap

import (
	"bytes"

	"github.com/tlsup/tlsup/starttls"
)

// ImplicitPort returns 993, the imaps port of RFC 8314, Section 3.3.
func (u *Upgrader) ImplicitPort() int { return 993 }

// Redact implements [starttls.Redactor] for transcripts: the arguments of
// LOGIN (RFC 9051, Section 6.2.3) are hidden, and the initial response of
// AUTHENTICATE (Section 6.2.2), whose mechanism is shown.
func (u *Upgrader) Redact(line []byte) (keep int, ok bool) { return redact(line) }

// redact is the IMAP transcript rule, for the client and the server.
func redact(line []byte) (keep int, ok bool) {
	tag, rest, found := bytes.Cut(line, []byte(" "))
	if !found {
		return 0, false
	}
	verb, args, found := bytes.Cut(rest, []byte(" "))
	if !found {
		return 0, false
	}
	prefix := len(tag) + 1 + len(verb)
	switch {
	case starttls.EqualFold(string(verb), "LOGIN"):
		return prefix, true
	case starttls.EqualFold(string(verb), "AUTHENTICATE"):
		mechanism, _, hasResponse := bytes.Cut(args, []byte(" "))
		if !hasResponse {
			return 0, false
		}
		return prefix + 1 + len(mechanism), true
	}
	return 0, false
}
