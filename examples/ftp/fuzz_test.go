package ftp

import (
	"bytes"
	"errors"
	"io"
	"strconv"
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

// FuzzReply reads one reply and its FEAT features. Invariants: no panic;
// on success the code is 100 to 599, the reply is bounded, written back it
// reads back the same, and every feature is a middle line without its
// leading spaces, offered only if an AUTH entry names TLS.
func FuzzReply(f *testing.F) {
	for _, seed := range []string{
		// RFC 2389, Section 3.2 and RFC 4217, Section 6; vsftpd 3.0.3.
		"211-Extensions supported:\r\n AUTH TLS\r\n PBSZ\r\n PROT\r\n211 END\r\n",
		"211-Features:\r\n AUTH SSL\r\n AUTH TLS\r\n EPRT\r\n REST STREAM\r\n211 End\r\n",
		"220-Welcome\r\nsome text\r\n220-still\r\n220 ready\r\n",
		"234 Proceed with negotiation.\r\n",
		"211 no features\r\n",
		"500 Unknown command.\r\n",
		"211-x\r\n" + strings.Repeat(" X\r\n", 40),
	} {
		f.Add([]byte(seed))
	}
	// Every reply vsftpd sent (testdata/golden_*), from each line on.
	for _, tt := range goldenVsftpd {
		g := tt.Load(f)
		for i := range g.Lines {
			f.Add([]byte(strings.Join(g.Lines[i:], "\r\n") + "\r\n"))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ReadReply(fuzzConn(data))
		if err != nil {
			if !errors.Is(err, starttls.ErrProtocol) && !errors.Is(err, starttls.ErrTooLarge) &&
				!errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if r.Code < 100 || r.Code > 599 {
			t.Fatalf("code %d out of range", r.Code)
		}
		if len(r.Lines) == 0 || len(r.Lines) > fuzzMaxLines {
			t.Fatalf("%d lines, bound %d", len(r.Lines), fuzzMaxLines)
		}
		// Written back: the code on the first line (with "-" when there
		// are more) and on the last; the middle lines as they are.
		code := strconv.Itoa(r.Code)
		var wire bytes.Buffer
		for i, l := range r.Lines {
			switch {
			case len(r.Lines) == 1:
				wire.WriteString(code + " " + l)
			case i == 0:
				wire.WriteString(code + "-" + l)
			case i == len(r.Lines)-1:
				wire.WriteString(code + " " + l)
			default:
				wire.WriteString(l)
			}
			wire.WriteString("\r\n")
		}
		again, err := ReadReply(fuzzConn(wire.Bytes()))
		if err != nil {
			t.Fatalf("round trip of %q: %v", wire.String(), err)
		}
		if again.Code != r.Code || strings.Join(again.Lines, "\n") != strings.Join(r.Lines, "\n") {
			t.Fatalf("round trip: got %+v, want %+v", again, r)
		}
		caps, err := features(r)
		if err != nil {
			if !errors.Is(err, starttls.ErrProtocol) {
				t.Fatalf("features: %v", err)
			}
			return
		}
		for _, e := range caps.List() {
			if e == "" || e[0] == ' ' || strings.ContainsAny(e, "\r\n\x00") {
				t.Fatalf("bad feature %q", e)
			}
		}
		if (&Upgrader{}).Offered(caps) {
			found := false
			for _, e := range caps.List() {
				kw, rest, _ := strings.Cut(e, " ")
				found = found || (starttls.EqualFold(kw, "AUTH") && strings.Contains(strings.ToUpper(rest), "TLS"))
			}
			if !found {
				t.Fatalf("offered without an AUTH TLS entry: %q", caps.List())
			}
		}
	})
}
