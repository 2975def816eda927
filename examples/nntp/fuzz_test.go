package nntp

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

// FuzzCapabilities reads a status line and, for 101, the capability list,
// as Discover does. Invariants: no panic; on success the code is 100 to 599
// and the list is bounded, its entries non-empty, without CR, LF or NUL,
// and a list written back (dot-stuffed) reads back the same.
func FuzzCapabilities(f *testing.F) {
	for _, seed := range []string{
		// RFC 3977, Section 5.2.3 and RFC 4642, Section 2.1.
		"101 Capability list:\r\nVERSION 2\r\nREADER\r\nIHAVE\r\nSTARTTLS\r\n.\r\n",
		"101 Capability list:\r\nVERSION 2\r\nIMPLEMENTATION INN 2.7.1\r\nAUTHINFO USER SASL\r\nSTARTTLS\r\n.\r\n",
		"101 list\r\n..STARTTLS\r\n\r\nSTARTTLS\x00\r\n.\r\n",
		"500 What?\r\n",
		"101\r\n" + strings.Repeat("X\r\n", 40),
	} {
		f.Add([]byte(seed))
	}
	// The lists INN sent (testdata/golden_*), status line first.
	for _, tt := range goldenINN {
		g := tt.Load(f)
		for i, l := range g.Lines {
			if strings.HasPrefix(l, "101") {
				f.Add([]byte(strings.Join(g.Lines[i:i+len(goldenList(g.Lines[i:]))+2], "\r\n") + "\r\n"))
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := fuzzConn(data)
		code, _, err := readStatus(c)
		if err != nil {
			return
		}
		if code < 100 || code > 599 {
			t.Fatalf("code %d out of range", code)
		}
		if code != 101 {
			return
		}
		lines, err := readList(c)
		if err != nil {
			if !errors.Is(err, starttls.ErrProtocol) && !errors.Is(err, starttls.ErrTooLarge) &&
				!errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if len(lines) >= fuzzMaxLines {
			t.Fatalf("%d lines, bound %d", len(lines), fuzzMaxLines)
		}
		var wire bytes.Buffer
		for _, l := range lines {
			if l == "" || strings.ContainsAny(l, "\r\n\x00") || len(l) > fuzzMaxLine {
				t.Fatalf("bad entry %q", l)
			}
			if strings.HasPrefix(l, ".") {
				wire.WriteByte('.')
			}
			wire.WriteString(l + "\r\n")
		}
		wire.WriteString(".\r\n")
		again, err := readList(fuzzConn(wire.Bytes()))
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if strings.Join(again, "\n") != strings.Join(lines, "\n") {
			t.Fatalf("round trip: got %q, want %q", again, lines)
		}
	})
}
