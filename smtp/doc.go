// Package smtp implements the client and server halves of SMTP STARTTLS
// (RFC 3207) on top of package starttls, for SMTP (RFC 5321), submission
// (RFC 6409), implicit TLS submission on port 465 (RFC 8314) and LMTP
// (RFC 2033, LHLO instead of EHLO).
//
// The client never falls back to HELO on the way to TLS, never trusts a
// capability learned before TLS (RFC 3207, Section 4.2: a fresh EHLO follows
// the handshake), treats only a 220 reply as the go-ahead, and refuses to
// start TLS when anything is buffered behind that reply. A man in the middle
// who strips STARTTLS from the EHLO reply gets starttls.ErrNotOffered under
// the default policy.
//
// For a sending MTA, whether TLS is required and which certificate counts
// is the receiving domain's decision: the subpackages dane (RFC 7672
// lookups), mtasts (RFC 8461) and tlsrpt (RFC 8460 result types) supply it,
// with tlsconf.DANE for the verification and [RequireTLSExtension] for RFC
// 8689.
package smtp
