// Command tlsprobe connects to a mail server (or a ManageSieve, NNTP, FTP,
// PostgreSQL, LDAP or XMPP server), starts TLS the way a careful client
// does (STARTTLS with the tlsup policies, or implicit TLS), and
// reports what it saw: the greeting, the capabilities before and after TLS,
// the TLS version, cipher suite and certificate chain, the first failure
// with its kind and step, and warnings an operator wants first.
//
// Everything the server sends before TLS is untrusted: it is shown escaped,
// and the name verified is the one given (-servername, or the host), never
// one taken from the banner.
//
// # Contract
//
// The flags, exit statuses and JSON below are a public contract; they
// change only compatibly.
//
//	tlsprobe [flags] host[:port]
//	tlsprobe -targets FILE [-j N] [flags]
//	tlsprobe -mx DOMAIN [-resolver HOST:PORT] [-port N] [-sts-port N] [-cafile FILE] [-timeout DUR] [-json]
//
// Flags:
//
//	-protocol smtp|lmtp|imap|pop3|sieve|nntp|ftp|postgres|ldap|xmpp
//	                                default from the port: 25, 465, 587 smtp;
//	                                24 lmtp; 143, 993 imap; 110, 995 pop3;
//	                                4190 sieve; 119, 563 nntp; 21, 990 ftp;
//	                                5432 postgres; 389, 636 ldap; 5222, 5223
//	                                xmpp; otherwise required
//	-mode auto|starttls|implicit    auto (default): implicit on 465, 993,
//	                                995, 563, 990, 636, 5223
//	-policy required|always|opportunistic   default required
//	-cafile FILE       trust only the PEM roots in FILE (default: system roots)
//	-servername NAME   name verified and sent as SNI (default: the host)
//	-insecure          skip verification (warning on stderr; outcome reported)
//	-timeout DUR       bound on the whole exchange, per target (default 30s)
//	-ehlo NAME         name sent with EHLO/LHLO (default localhost); other
//	                   protocols ignore it (XMPP's stream 'to' is the
//	                   -servername, or the host)
//	-json              JSON on stdout
//	-transcript        the dialogue on stderr, C: / S: lines, "-- TLS --"
//	                   before the discovery inside TLS
//	-targets FILE      one [protocol://]host[:port] a line (blank lines and
//	                   # comments skipped); the scheme sets -protocol for
//	                   its line (every protocol name is a scheme), and
//	                   imaps://, smtps://, pop3s:// (and nntps://,
//	                   ftps://, ldaps://) also -mode implicit;
//	                   postgresql:// is postgres
//	-j N               targets probed at once with -targets (default 8)
//
// A host without a port gets the protocol's STARTTLS port (25, 24, 143,
// 110, 4190, 119, 21, 5432, 389, 5222), or its implicit port (465, 993,
// 995, 563, 990, 636, 5223) with -mode implicit; without -protocol either,
// it is a usage error.
//
// Exit status: 0 TLS established (verified unless -insecure), for every
// target; 1 no TLS for some target: refused, not offered, injected data,
// certificate, timeout, any failure; 2 usage; 3 none failed but the
// opportunistic policy continued in plaintext (STARTTLS not advertised).
// The probe exits within -timeout plus one second, whatever the peer does.
//
// With -json, one object (indented) for one target; with -targets, JSON
// Lines, one object per target in input order with "target", the line as
// given. Keys are always present, null where not known:
//
//	protocol, address, mode, policy   strings
//	tls                 true once a verified handshake completed, even if
//	                    the discovery after it failed (exit 1 then)
//	greeting            the first greeting line's text, escaped
//	                    (ManageSieve: the IMPLEMENTATION string; FTP and
//	                    NNTP: the text after the code; XMPP: the stream's
//	                    from; PostgreSQL and LDAP: null)
//	capabilities_before the entries before TLS as sent (SMTP EHLO keyword
//	                    lines, IMAP atoms, POP3 CAPA lines, ManageSieve
//	                    names with their values, NNTP CAPABILITIES lines,
//	                    FTP FEAT lines, XMPP feature names; [] for
//	                    PostgreSQL and LDAP); null in implicit mode
//	capabilities_after  discovered again inside TLS, never carried over
//	tls_version, cipher_suite, server_name, verified
//	peer_certificates   [{subject, issuer, dns_names, not_after}]
//	error               {kind, message}, kind one of not-offered, refused,
//	                    injected-data, preauth, greeting-rejected, protocol,
//	                    too-large, handshake, certificate, timeout, closed,
//	                    dial (and lookup, with -mx only)
//	elapsed_ms
//	starttls_offered    true or false when discovery ran before TLS, null
//	                    otherwise; for PostgreSQL and LDAP, which
//	                    advertise nothing, whether the server agreed to
//	                    the upgrade request (PostgreSQL's N is false)
//	step                where it failed: connect, greeting, discover,
//	                    starttls, handshake, rediscover; null on success
//	warnings            a list, empty when none: plaintext-auth-offered
//	                    (a password mechanism before TLS, in each
//	                    protocol's terms: SMTP AUTH, IMAP AUTH=, POP3
//	                    SASL or USER, ManageSieve SASL with mechanisms,
//	                    NNTP AUTHINFO or SASL, XMPP mechanisms),
//	                    certificate-expires-soon (within 14 days),
//	                    no-forward-secrecy (TLS 1.2 without ECDHE/DHE),
//	                    starttls-after-tls (advertised again inside TLS;
//	                    not for FTP, whose FEAT lists AUTH TLS inside TLS
//	                    by design)
//
// Decisions: bytes injected after the go-ahead fail with injected-data,
// never discarded. Under required an unadvertised STARTTLS is not sent
// (not-offered; an EHLO refused counts as nothing advertised); always sends
// it anyway. Exit 3 has tls false and error null. A hang-up before the
// handshake is closed; any failure during it is handshake (certificate
// where verification failed; a plaintext answer to the ClientHello
// included); any deadline is timeout; a 421 or 554 greeting, IMAP BYE or
// POP3 -ERR greeting is greeting-rejected; a STARTTLS reply that is
// neither go-ahead nor refusal is protocol; a line over 4096 bytes, a
// response over 1000 lines or an IMAP literal over 64 KiB is too-large.
// A PostgreSQL N is not-offered (exit 1 under required, 3 under
// opportunistic).
//
// # MTA policy
//
// With -mx DOMAIN the probe evaluates the MTA policy of DOMAIN's MX hosts
// instead of one target (mx.go): every lookup goes to -resolver (default:
// the first nameserver of /etc/resolv.conf) and asks for AD; DANE (TLSA at
// _25._tcp.MX) applies only when the MX, address and TLSA answers are all
// authenticated; otherwise MTA-STS (policy fetched on -sts-port, default
// 443), otherwise no policy. Each MX is upgraded on port 25 (or -port)
// under the policy, and one verdict per MX is printed; with -json, JSON
// Lines, one object per MX with the keys above (the operator facts
// included) plus mx, policy_type (tlsa, sts, no-policy-found),
// policy_mode (enforce, testing, none, dane), tlsrpt_result (null on
// success, else an RFC 8460 result type) and tlsrpt_reason. A policy that
// cannot be fetched or is invalid means delivery as if there were no
// MTA-STS, the failure reported; so does a policy in testing mode. A
// TLSA set with only unusable records is no DANE policy, but TLS stays
// required (RFC 7672, Section 2.2). tls is true whenever a handshake
// completed; verified means authenticated under the policy applied (a
// DANE match, or PKIX for the MX name under MTA-STS or with no policy).
// -cafile is the root set both for the MX certificate and for the policy
// fetch, whose URL, Host, SNI and name checked stay mta-sts.DOMAIN
// whatever -sts-port says. Exit status: 0 every MX passed its policy; 1
// any failed; 2 usage; 4 a lookup could not be completed (defer, never
// downgrade: one line per MX with error kind and step lookup, mx null
// when the MX lookup itself failed); 4 wins over 1. -timeout bounds the
// MX lookup and then each MX's evaluation and upgrade, so a run takes at
// most (number of MX + 1) times it. -mx and -targets are separate modes:
// both at once is a usage error.
package main
