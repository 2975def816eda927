// Package handoff shows, and tests end to end, how a session that tlsup
// secured continues with the libraries Go mail software already uses:
// net/smtp, github.com/emersion/go-smtp and github.com/emersion/go-imap/v2
// on the client side, and a caller's own loop. It is a module of its own
// (examples/handoff/go.mod, with a replace directive onto the repository)
// so that none of those libraries becomes a dependency of tlsup.
//
// # Client side
//
// Every library here starts a session from scratch: it reads a greeting,
// then says EHLO (or asks CAPABILITY). After STARTTLS no greeting comes
// (RFC 3207, Section 4.2; RFC 9051, Section 6.2.1), tlsup has already said
// EHLO inside TLS, and some servers refuse a second one (OpenSMTPD: "503
// 5.5.1 Invalid command: Already identified"). The adapters live in the
// main module, with no new dependency:
//
//   - smtp.HandOff(res) returns a net.Conn that replays a synthetic 220
//     greeting and answers the library's first EHLO locally from res.After,
//     the capabilities discovered inside TLS; give it to net/smtp's
//     NewClient or go-smtp's NewClient.
//   - smtp.TLSAuth(auth, res) tells net/smtp the truth about TLS: net/smtp
//     looks for a *tls.Conn, does not find one behind the adapter, and its
//     PlainAuth would refuse "unencrypted connection" for any host but
//     localhost. go-smtp's Auth needs no wrapper.
//   - imap.HandOff(res) returns a net.Conn that replays a synthetic
//     "* OK [CAPABILITY ...]" greeting from res.After; give it to go-imap's
//     imapclient.New.
//   - With a loop of your own (you read the greeting, sent EHLO and
//     STARTTLS yourself), starttls.ClientUpgrade is the checked switch
//     alone: see Example_ownLoop.
//
// What a user writes, counted on the README's snippets (from the dial to
// the end of the session, error checks included): net/smtp 30 lines, of
// which the hand-off is two expressions, smtp.HandOff(res) and
// smtp.TLSAuth(auth, res); before them the same session took an adapter
// of the user's own that fakes the greeting and answers EHLO (54 lines in
// the report that led here, after three tries) plus an Auth wrapper of
// about 12 lines. go-smtp 16 lines, the hand-off one expression (before:
// the same 54-line adapter). go-imap v2 17 lines, the hand-off one
// expression (before: a greeting adapter of about 25 lines).
//
// # Server side
//
// Continuing with go-smtp's server after tlsup's smtp.Server.Serve does not
// work, and no adapter makes it work honestly. go-smtp's server writes its
// 220 greeting first on every connection it serves, and after STARTTLS the
// client speaks first: the client would read that 220 as the answer to its
// EHLO. An adapter could swallow the greeting, but go-smtp knows TLS only
// by a *tls.Conn, so behind the adapter it takes the session for plaintext
// (AUTH refused, or allowed for every connection with AllowInsecureAuth,
// which lies to the backend; Conn.TLSConnectionState reports no TLS). What
// to do instead:
//
//   - let go-smtp run STARTTLS itself (Server.TLSConfig): its transition
//     handshakes on the raw conn and starts a fresh reader, so commands
//     pipelined behind STARTTLS are dropped, not executed; bound the
//     handshake with Server.ReadTimeout and Server.WriteTimeout;
//   - or serve implicit TLS (RFC 8314) with go-smtp's ListenAndServeTLS;
//   - or keep tlsup's front and continue with a loop of your own on the
//     *starttls.Conn it returns (the session is clean and inside TLS), as
//     examples/demo does.
//
// The same holds for go-imap's server (imapserver greets on every
// connection and knows TLS by a *tls.Conn).
//
// # Tests
//
// go test ./... here runs the examples and the end-to-end tests against
// in-process servers (go-smtp's, go-imap's imapmemserver) on 127.0.0.1.
// With TLSUP_REAL_SERVERS=1 and TLSUP_SUBMISSION_ADDR, TLSUP_IMAP_ADDR,
// TLSUP_CA, TLSUP_USER and TLSUP_PASSWORD set, the same hand-offs run
// against a real Postfix (AUTH and a message) and Dovecot (LOGIN and
// SELECT). .ci/handoff.sh runs both: it starts a Postfix submission
// listener and a Dovecot IMAP of its own on 127.0.0.9 and 127.0.0.10 and
// sets the variables.
package handoff
