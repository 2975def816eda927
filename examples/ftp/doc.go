// Package ftp secures the control connection of an FTP session (RFC 959)
// with AUTH TLS (RFC 4217), or starts it in TLS on port 990, on top of
// package starttls. It is written as a third party would write it: it uses
// only the exported API of starttls, and nothing in starttls knows FTP.
//
// The threat is an active attacker on the plaintext part of the session.
// The client reads the 220 greeting (single or multi-line; 421 and other
// 4xx or 5xx refuse the session), asks FEAT (RFC 2389), sends AUTH TLS only
// when the policy allows it, accepts only 234 as the go-ahead (431, 504,
// 534 and any other 4xx or 5xx are refusals; 200, 230 or 334 are protocol
// errors), refuses to start TLS when a single byte is buffered behind the
// go-ahead, and asks FEAT again inside TLS: nothing learned before TLS
// survives it. A man in the middle who strips "AUTH TLS" from the FEAT
// list gets starttls.ErrNotOffered under the default policy. A server
// without FEAT (500 or 502) offers nothing: only the Always policy then
// sends AUTH TLS.
//
// Capability entries are the FEAT feature lines as sent, without their
// leading space ("AUTH TLS", "PBSZ", "REST STREAM"). The upgrade is offered
// when an AUTH entry lists the mechanism TLS ([Upgrader.Offered]): "AUTH
// SSL" alone, "AUTH TLSX" or "XAUTH TLS" is not an offer. USER, PASS and
// ACCT lines are redacted in transcripts ([Upgrader.Redact]).
//
// Only the control connection is secured. Data connections are out of
// scope: after the upgrade the caller sends "PBSZ 0" and "PROT P" (RFC
// 4217, Sections 8 and 9) before any transfer, and handles the data
// connections itself ([ReadReply] reads the replies).
package ftp
