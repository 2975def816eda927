// Package lineproto holds no code: its tests run the example Upgraders of
// examples/sieve, examples/nntp and examples/ftp against real servers,
// Dovecot's ManageSieve (Pigeonhole), INN's nnrpd and vsftpd, that
// .ci/real-lineproto.sh installs from Debian's packages and starts on
// 127.0.0.5 (with TLS) and 127.0.0.6 (without).
//
// The tests run only with TLSUP_REAL_LINEPROTO=1 and the addresses, the
// CA file and the test user that the script passes in the environment;
// plain `go test ./...` skips them and stays hermetic. They check every
// mode (STARTTLS, implicit TLS where the protocol has it, Auto by port),
// verified against the script's throwaway CA; the capabilities before and
// after TLS against what the server sent (read from the transcript, not
// through the library's parser); a wrong CA failing with a certificate
// error; the listeners without TLS under each policy; a login inside TLS
// (ManageSieve AUTHENTICATE "PLAIN", NNTP AUTHINFO USER/PASS, FTP
// USER/PASS, then PBSZ 0 and PROT P); and examples/tlsprobe -json
// reporting what the library saw.
//
// With TLSUP_CAPTURE=DIR they also write the dialogues they saw as golden
// transcripts, in internal/scripttest syntax, to
// DIR/examples/{sieve,nntp,ftp}/testdata/golden_*.txt; the example
// packages replay them hermetically in their golden_test.go.
package lineproto
