// Package bench holds the library's performance benchmarks, all in one
// package so that every ratio is read from a single run: the floor (a bare
// TCP connect, TLS 1.3 handshake and one round trip), minimal hand-written
// STARTTLS clients and servers with no checks, the library's SMTP, IMAP and
// POP3 upgrades and server fronts, net/smtp, the line reader, the reply
// parsers, parallel upgrades and the memory held by pending upgrades.
//
// It has no API: everything lives in _test.go files. Plain go test runs
// only quick sanity tests of the harness; the benchmarks need -bench:
//
//	go test -run '^$' -bench . -count 6 ./internal/bench/ | benchstat -
//
// Every peer runs on 127.0.0.1 or over net.Pipe.
package bench
