// Package tlsup is the root of a library for STARTTLS upgrades done safely,
// for the clients and servers of SMTP, LMTP, IMAP and POP3. This package
// holds no code; it is the map of the module and its threat model.
//
// # Map
//
//   - [github.com/tlsup/tlsup/starttls]: the protocol-neutral core. A
//     bounded line reader over a net.Conn, the client upgrade driven through
//     a small Upgrader interface, the server transition, the policy
//     (Required, Always, Opportunistic) and mode (Auto, StartTLS, Implicit),
//     and the typed errors.
//   - [github.com/tlsup/tlsup/smtp], [github.com/tlsup/tlsup/imap],
//     [github.com/tlsup/tlsup/pop3]: one protocol each (LMTP lives in smtp):
//     greeting, capability discovery (EHLO/LHLO, CAPABILITY, CAPA), the
//     STARTTLS/STLS client, and the pre-TLS server front.
//   - [github.com/tlsup/tlsup/tlsconf]: fresh *tls.Config values for
//     clients and servers (DANE among them), and a throwaway CA for tests
//     and examples.
//   - [github.com/tlsup/tlsup/smtp/dane], [github.com/tlsup/tlsup/smtp/mtasts],
//     [github.com/tlsup/tlsup/smtp/tlsrpt]: MTA policy around the SMTP
//     upgrade: DANE lookups trusting a validating resolver, MTA-STS
//     policies, TLS-RPT result types.
//   - examples/tlsprobe probes a real server from the command line;
//     examples/demo runs in-process servers and upgrades a client to each.
//   - Other protocols plug in from outside the core through the same
//     Upgrader interface, one importable package each: examples/sieve,
//     examples/nntp, examples/ftp, examples/postgres, examples/ldap and
//     examples/xmpp among them. examples/upgraders turns a protocol name
//     into an Upgrader; examples/handoff (a module of its own) hands a
//     secured session on to net/smtp, go-smtp and go-imap.
//
// # Threat model
//
// STARTTLS starts in plaintext, so an active attacker on the path controls
// everything before the handshake, and a passive one reads it. The library
// assumes exactly that and no more: once a verified handshake completes,
// TLS protects the session. Against the attacker before it:
//
//   - Stripping STARTTLS from the capabilities (or answering EHLO with an
//     error, or IMAP PREAUTH) must not turn into a plaintext session unless
//     the caller opted into Opportunistic, and then the result says so.
//   - Bytes injected behind the go-ahead (client side) or pipelined behind
//     the STARTTLS command (server side, CVE-2011-0411 and its successors)
//     are refused, never carried into TLS.
//   - Nothing learned before TLS (capabilities, codes in the STARTTLS reply)
//     survives it; capabilities are discovered again inside TLS.
//   - The certificate is verified for the name the caller configured, never
//     a name the server announced.
//   - Every read is bounded in size and time; peer text is escaped before it
//     reaches an error, a log or a terminal.
//
// Whether a receiving domain requires TLS, and which certificate counts, is
// the domain's to say (DANE, MTA-STS): the smtp subpackages read it, and a
// caller applies it as Policy Required with the config they return. Out of
// scope: SASL and the rest of each protocol after the upgrade.
package tlsup
