// Package starttls is the protocol-neutral core of tlsup: a bounded line
// reader over a net.Conn ([Conn]), the client upgrade ([Upgrade]) driven
// through a small per-protocol interface ([Upgrader]), its mirror on the
// server side, the pre-TLS loop ([Serve]) driven through a protocol's
// [ServerDialogue], the checked switch on both sides ([ClientUpgrade],
// [ServerUpgrade]) for callers with their own loop, the policy ([Policy],
// [Mode]) and the typed errors.
//
// It knows no protocol: a protocol plugs in from outside by implementing
// [Upgrader] (and, when it has them, the optional [ImplicitPorter],
// [Redactor] and [OfferChecker]), or [ServerDialogue] for a server front;
// see ExampleUpgrader and ExampleServe. The module's packages smtp, imap
// and pop3 do so for SMTP/LMTP (RFC 3207), IMAP (RFC 9051, RFC 3501,
// RFC 2595) and POP3 (RFC 2595, RFC 2449), and the example packages under
// examples/ for ManageSieve, NNTP, FTP, PostgreSQL, LDAP and XMPP, line
// based or not. RFC 8314 implicit TLS goes through the same path with the
// same verification.
//
// # Security
//
// STARTTLS begins in plaintext, so everything before the handshake is
// controlled by whoever sits on the path. The core enforces, for every
// protocol:
//
//   - Stripping: a man in the middle removes STARTTLS from the capability
//     list. Under [Required] (the zero Policy) that is [ErrNotOffered] and
//     nothing else is sent; [Always] sends STARTTLS anyway. Only
//     [Opportunistic], an explicit opt-in, continues in plaintext, and only
//     when STARTTLS was not advertised; Result.Plaintext says so.
//   - Injection: bytes that arrive with the go-ahead ("220 ready\r\n250
//     AUTH PLAIN\r\n" in one segment) were written by the plaintext peer
//     but would be read as if they came over TLS. The client refuses to
//     start TLS when a single byte is buffered beyond the go-ahead
//     ([ErrInjectedData]); the server refuses when a byte is buffered behind
//     the STARTTLS command (CVE-2011-0411 and its many successors). The
//     *tls.Conn is always built on the raw connection, never on a buffered
//     reader.
//   - Stale capabilities: everything learned before TLS (capabilities, the
//     capabilities inside a STARTTLS reply, an APOP timestamp) is dropped and
//     discovered again inside TLS (RFC 3207, Section 4.2). Result.Before is
//     kept for diagnosis only.
//   - PREAUTH: an IMAP server that greets with PREAUTH on plaintext leaves no
//     way to start TLS; that is [ErrPreauth], never "continue anyway".
//   - Unbounded input: lines, responses and literals are bounded
//     ([ErrTooLarge]); the context bounds every step in time, handshake
//     included, whatever the peer trickles.
//   - Untrusted text: peer text that reaches an error or a transcript is
//     escaped ([Escape]), so it cannot drive a terminal or forge log lines.
//
// The certificate name verified comes from the caller's tls.Config, never
// from the server's banner.
package starttls
