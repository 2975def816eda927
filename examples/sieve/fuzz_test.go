package sieve

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
)

// Bounds of the fuzzed conn: small, so the fuzzer reaches them.
const (
	fuzzMaxLines = 32
	fuzzMaxLine  = 512
)

// fuzzConn reads data, with the fuzz bounds, from a conn with no peer
// and no timing.
func fuzzConn(data []byte) *starttls.Conn {
	return starttls.NewConn(scripttest.NewFakeConn(data), &starttls.Options{MaxLineLength: fuzzMaxLine, MaxResponseLines: fuzzMaxLines})
}

// quote writes s as a quoted string (RFC 5804, Section 4).
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// FuzzResponse reads a capability response as Greet and Discover do.
// Invariants: no panic; on success the status is OK, NO or BYE, the list
// is bounded, every entry's name is non-empty without space or control
// character, no entry holds a control character, and the list written back
// as quoted strings reads back the same.
func FuzzResponse(f *testing.F) {
	for _, seed := range []string{
		// RFC 5804, Section 1.8 (the example greeting) and Dovecot 2.3.
		"\"IMPLEMENTATION\" \"Example1 ManageSieved v001\"\r\n\"SASL\" \"DIGEST-MD5 GSSAPI\"\r\n" +
			"\"SIEVE\" \"fileinto vacation\"\r\n\"STARTTLS\"\r\n\"VERSION\" \"1.0\"\r\nOK\r\n",
		"\"IMPLEMENTATION\" \"Dovecot (Debian) Pigeonhole\"\r\n\"SASL\" \"\"\r\n\"STARTTLS\"\r\nOK \"Dovecot (Debian) ready.\"\r\n",
		"\"IMPLEMENTATION\" {12}\r\nExample \"x\" \r\n\"X\\\\Y\" {3+}\r\nabc\r\nOK\r\n",
		"NO (TRYLATER) \"busy\"\r\n",
		"BYE (REFERRAL \"sieve://x\") {5}\r\nmoved\r\n",
		"OK (TAG {2}\r\nab) \"x\"\r\n",
		"\"X\" {100000}\r\n",
		strings.Repeat("\"X\" \"y\"\r\n", 40),
	} {
		f.Add([]byte(seed))
	}
	// What Dovecot sent (testdata/golden_*), before and after TLS.
	for _, tt := range goldenDovecot {
		g := tt.Load(f)
		for _, part := range [][]string{g.Before, g.After} {
			if len(part) > 0 {
				f.Add([]byte(strings.Join(part, "\r\n") + "\r\n"))
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := readResponse(fuzzConn(data), true)
		if err != nil {
			if !errors.Is(err, starttls.ErrProtocol) && !errors.Is(err, starttls.ErrTooLarge) &&
				!errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		switch r.status {
		case "OK", "NO", "BYE":
		default:
			t.Fatalf("status %q", r.status)
		}
		if len(r.caps) >= fuzzMaxLines {
			t.Fatalf("%d capabilities, bound %d", len(r.caps), fuzzMaxLines)
		}
		var wire bytes.Buffer
		for _, e := range r.caps {
			if starttls.IndexControl(e) >= 0 {
				t.Fatalf("control character in %q", e)
			}
			name, value, hasValue := strings.Cut(e, " ")
			if name == "" {
				t.Fatalf("empty name in %q", e)
			}
			wire.WriteString(quote(name))
			if hasValue {
				wire.WriteString(" " + quote(value))
			}
			wire.WriteString("\r\n")
		}
		wire.WriteString("OK\r\n")
		// Written back, a long value may exceed the fuzzed line bound:
		// read it with the defaults.
		again, err := readResponse(starttls.NewConn(scripttest.NewFakeConn(wire.Bytes()), nil), true)
		if err != nil {
			t.Fatalf("round trip of %q: %v", wire.String(), err)
		}
		if strings.Join(again.caps, "\n") != strings.Join(r.caps, "\n") {
			t.Fatalf("round trip: got %q, want %q", again.caps, r.caps)
		}
	})
}
