// Package imap implements IMAP STARTTLS (RFC 9051,
// Section 6.2.1; RFC 3501, Section 6.2.1; RFC 2595) on top of package
// starttls, for IMAP4rev2 and IMAP4rev1 servers, and implicit TLS on port
// 993 (RFC 8314) through the same path.
//
// IMAP is where mail clients have failed STARTTLS most often, so the client
// ([Upgrade], [Dial], [Upgrader]) is strict about what it accepts before TLS:
//
//   - A PREAUTH greeting on a plaintext connection is
//     starttls.ErrPreauth: the session is already authenticated, STARTTLS
//     is no longer allowed in that state (RFC 9051, Section 7.1.4), so it can
//     never be secured. The connection is closed; there is no "try anyway".
//     On implicit TLS, PREAUTH is accepted.
//   - A BYE greeting is starttls.ErrGreetingRejected; any other greeting
//     (garbage, a tagged line, "* NO") is starttls.ErrProtocol.
//   - Every command gets a fresh unpredictable tag, and only a tagged
//     response carrying that tag completes it. A tagged response with any
//     other tag is starttls.ErrProtocol: a server never answers a command
//     that was not sent, so a forged "OK" written before STARTTLS can never
//     count as the go-ahead.
//   - Untagged responses before a completion (EXISTS, LIST, STATUS, FETCH,
//     [ALERT], [REFERRAL ...], even CAPABILITY) are read and dropped, within
//     the line bound of the starttls.Conn; a literal inside them is consumed
//     as a literal ({n}, {n+}, ~{n}), bounded before anything is allocated
//     ([DefaultMaxLiteral]), so the reader stays in step with the server.
//   - A [CAPABILITY ...] code in the STARTTLS OK is pre-TLS data and is
//     ignored; after the handshake the client always sends CAPABILITY again
//     and the result's capabilities come only from that answer.
//   - Anything buffered behind the STARTTLS OK line is
//     starttls.ErrInjectedData (the core checks it).
//
// [Upgrade] upgrades an existing connection, [Dial] connects first. The
// response reader ([ReadResponses], [ParseResponse], [ParseCapabilities])
// is exported for tools that need to read IMAP responses with the same
// bounds, and the command reader ([ReadCommand], [ParseCommand]) for a
// server's loop after TLS; both share one wire codec (atoms, tags, quoted
// strings, literals).
//
// The server half, [Server], is a pre-TLS front for servers that require
// TLS: it greets with a [CAPABILITY ...] code advertising STARTTLS and
// LOGINDISABLED (never AUTH=PLAIN before TLS), answers CAPABILITY, NOOP,
// LOGOUT and STARTTLS, answers LOGIN and AUTHENTICATE with
// "NO [PRIVACYREQUIRED]" and everything else with BAD, refuses commands
// pipelined behind STARTTLS, and returns the upgraded connection in the
// not-authenticated state for the caller's own loop. [Capabilities],
// [RefuseStartTLS] and [ReadCommand] serve servers that run their own loop.
//
// # Deviations from RFC 9051
//
//   - A capability atom must be 7-bit ATOM-CHARs (RFC 9051, Section 9);
//     a CAPABILITY response holding anything else (NUL, 8-bit bytes, a
//     literal) is rejected as a protocol violation rather than partly used.
//   - The answer to CAPABILITY must include the untagged CAPABILITY
//     response the RFC requires (Section 6.1.1); a bare tagged OK, even one
//     with a [CAPABILITY ...] code, is a protocol violation.
//   - An untagged BYE while a command is outstanding is reported as a
//     refusal of that command (starttls.ErrRefused, with Status "BYE"), the
//     IMAP equivalent of an SMTP 421 reply.
//   - Tagged OK/NO/BAD without the space and text that RFC 3501 requires
//     ("a1 OK") are accepted, as RFC 9051 allows.
package imap
