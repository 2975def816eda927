// Package pop3 implements the client and server halves of POP3 STLS (RFC 2595,
// Section 4) on top of package starttls, with capability discovery by CAPA
// (RFC 2449) and implicit TLS on port 995 (RFC 8314), for POP3 (RFC 1939).
//
// The client reads the one-line "+OK" greeting, asks CAPA, sends STLS only
// when the policy allows it, accepts only "+OK" as the go-ahead, refuses to
// start TLS when a single byte is buffered behind it, and asks CAPA again
// inside TLS: nothing learned before TLS survives it (RFC 2595, Section 4).
// A man in the middle who strips STLS from the CAPA list, or answers CAPA
// with -ERR, gets starttls.ErrNotOffered under the default policy, and STLS
// is not sent.
//
// CAPA entries are whole lines as sent ("SASL PLAIN LOGIN"), with
// dot-stuffing undone: a server line "..STLS" is the capability ".STLS",
// which is not STLS. The keyword STLS matches ignoring ASCII case only.
//
// An APOP timestamp in the greeting (RFC 1939, Section 7) can be read with
// [APOPTimestamp], but in STLS mode it arrived in plaintext: the package
// never uses it, and it is no substitute for TLS.
//
// The server half, [Server], is a pre-TLS front for servers that require
// TLS: it greets, answers CAPA (STLS advertised, USER and SASL PLAIN not),
// NOOP, QUIT and STLS, answers USER, PASS, APOP and AUTH with "-ERR [AUTH]"
// and everything else with -ERR, refuses commands pipelined behind STLS, and
// returns the upgraded connection in the AUTHORIZATION state for the
// caller's own loop. [Capabilities] and [RefuseSTLS] serve servers that run
// their own loop.
package pop3
