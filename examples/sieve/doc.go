// Package sieve upgrades a ManageSieve connection (RFC 5804) to TLS with
// STARTTLS, on top of package starttls. It is written as a third party
// would write it: it uses only the exported API of starttls, and nothing in
// starttls knows ManageSieve.
//
// The threat is an active attacker on the plaintext part of the session.
// The greeting is the capability list, ended by OK (NO or BYE refuse the
// session); STARTTLS is sent only when the policy allows it, and only a
// plain OK answers it as the go-ahead (NO and BYE are refusals; an OK with
// a response code, or capability lines before the answer, are protocol
// errors); TLS does not start when a single byte is buffered behind the
// go-ahead. After the handshake the server sends its capabilities again
// unasked, and the client reads them instead of asking (RFC 5804, Section
// 2.2): the IMPLEMENTATION and SASL lists seen before TLS are never kept.
// A man in the middle who strips STARTTLS from the greeting gets
// starttls.ErrNotOffered under the default policy, and STARTTLS is not
// sent.
//
// Capability entries are a capability's name and its value, joined by a
// space as in "SIEVE fileinto reject" (the name alone when the value is
// absent or empty, as "SASL" before TLS on a server that offers no
// mechanism there); the keyword is the name, compared
// ignoring ASCII case, so "STARTTLSX", "XSTARTTLS" or STARTTLS inside a
// quoted value do not advertise STARTTLS. Quoted strings and literals
// ("{n}" or "{n+}") are read with their escapes and bounds: a literal over
// MaxLiteral bytes matches starttls.ErrTooLarge. AUTHENTICATE lines are
// redacted in transcripts after the mechanism ([Upgrader.Redact]); SASL
// responses sent on lines of their own go through
// starttls.Conn.WriteSecretLine. A transcript records lines, not the bytes
// of a literal.
//
// ManageSieve has no implicit-TLS port. Mode Implicit still works with a
// server that offers it: the greeting is read inside TLS, and CAPABILITY is
// asked once more for the discovery.
package sieve
