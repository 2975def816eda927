// Package realpeers holds no code: its tests run the library's clients
// against real mail servers, Postfix and Dovecot, that .ci/real-servers.sh
// installs from Debian's packages and starts on loopback addresses.
//
// The tests run only with TLSUP_REAL_SERVERS=1 and the addresses, the CA
// file and the test user that the script passes in the environment; plain
// `go test ./...` skips them and stays hermetic. They check, against each
// server and port, every mode (STARTTLS, implicit TLS, Auto by the
// well-known port), certificate verification against the script's
// throwaway CA, that the capabilities after TLS are discovered again and
// differ as the server's policy says (AUTH only after TLS on submission,
// LOGINDISABLED gone after TLS on Dovecot), a login and a clean logout
// inside TLS, ErrNotOffered under the Required policy where STARTTLS is not
// offered, and that examples/tlsprobe -json reports what the library saw.
//
// The MTA tests (mta_test.go) have a gate of their own, TLSUP_REAL_MTA=1,
// set by .ci/real-mta.sh, which starts Postfix as the MX of mta.test on
// 127.0.0.4; the tests serve the DNS zone (with the AD bit) and the
// MTA-STS policy in-process, and check DANE-EE, DANE-TA, a wrong TLSA
// record, MTA-STS and examples/tlsprobe -mx -json against it.
//
// With TLSUP_CAPTURE=DIR they also write the dialogues they saw as golden
// transcripts, in internal/scripttest syntax, to
// DIR/{smtp,imap,pop3}/testdata/golden_*.txt; the protocol packages replay
// them hermetically in their golden_test.go.
package realpeers
