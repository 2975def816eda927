// Package nntp upgrades an NNTP connection (RFC 3977) to TLS with STARTTLS
// (RFC 4642, updated by RFC 8143), or starts it in TLS on port 563, on top
// of package starttls. It is written as a third party would write it: it
// uses only the exported API of starttls, and nothing in starttls knows
// NNTP.
//
// The threat is an active attacker on the plaintext part of the session.
// The client reads the 200 or 201 greeting (400 and 502 refuse the
// session), asks CAPABILITIES, sends STARTTLS only when the policy allows
// it, accepts only 382 as the go-ahead (580 and 502 are refusals, anything
// else a protocol error), refuses to start TLS when a single byte is
// buffered behind the go-ahead, and asks CAPABILITIES again inside TLS:
// nothing learned before TLS survives it (RFC 4642, Section 2.2.2). A man
// in the middle who strips STARTTLS from the capability list gets
// starttls.ErrNotOffered under the default policy, and STARTTLS is not sent.
//
// Capability entries are the lines of the CAPABILITIES list as sent
// ("VERSION 2", "AUTHINFO USER SASL"), with dot-stuffing undone; an entry's
// keyword is its first word, so "STARTTLSX", "XSTARTTLS" and
// "XFEATURE STARTTLS" do not advertise STARTTLS. Lines sent with
// AUTHINFO PASS or AUTHINFO SASL are redacted in transcripts
// ([Upgrader.Redact]).
//
// A transit server (innd) may advertise MODE-READER and offer STARTTLS
// only in reader mode; sending MODE READER first is the caller's business.
package nntp
