package pop3_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/pop3"
	"github.com/tlsup/tlsup/starttls"
)

// Bounds of the fuzzed conn: small, so the fuzzer reaches them.
const (
	capaFuzzMaxLines = 32
	capaFuzzMaxLine  = 512 // RFC 2449, Section 5: a CAPA line is at most 512 octets
)

// capaFuzzSeeds adds the files of testdata matching the patterns.
func capaFuzzSeeds(f *testing.F, patterns ...string) {
	for _, pattern := range patterns {
		paths, err := filepath.Glob(filepath.Join("testdata", pattern))
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
			for _, reply := range capaRepliesInScript(string(data)) {
				f.Add(reply)
			}
		}
	}
}

// capaRepliesInScript extracts the raw CAPA replies from a transcript
// script (the golden_* captures of real servers): the S: lines after each
// "C: CAPA", up to and including "S: .", with CRLF line ends.
func capaRepliesInScript(script string) [][]byte {
	var replies [][]byte
	var cur []byte
	inCapa := false
	for _, line := range strings.Split(script, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "C: CAPA":
			inCapa, cur = true, nil
		case inCapa && strings.HasPrefix(line, "S: "):
			cur = append(append(cur, line[len("S: "):]...), '\r', '\n')
			if line == "S: ." {
				replies = append(replies, cur)
				inCapa = false
			}
		default:
			inCapa = false
		}
	}
	return replies
}

// capaDiscover runs Upgrader.Discover on data as the server's reply.
func capaDiscover(data []byte) (*starttls.Capabilities, error) {
	raw := scripttest.NewFakeConn(data)
	c := starttls.NewConn(raw, &starttls.Options{MaxResponseLines: capaFuzzMaxLines, MaxLineLength: capaFuzzMaxLine})
	return (&pop3.Upgrader{}).Discover(context.Background(), c)
}

// capaStuffed serializes entries as a server does, with WriteMultiline.
func capaStuffed(tb testing.TB, entries []string) []byte {
	raw := scripttest.NewFakeConn(nil)
	if err := pop3.WriteMultiline(starttls.NewConn(raw, nil), "+OK", entries); err != nil {
		tb.Fatalf("WriteMultiline(%q): %v", entries, err)
	}
	return []byte(raw.Written())
}

// capaValidEntry reports whether s can be a CAPA entry as the parser
// returns it.
func capaValidEntry(s string) bool {
	return s != "" && len(s) <= capaFuzzMaxLine && !strings.ContainsAny(s, "\r\n\x00")
}

// capaFits reports whether entry, once stuffed, is within the line bound.
func capaFits(entry string) bool {
	if strings.HasPrefix(entry, ".") {
		return len(entry) < capaFuzzMaxLine
	}
	return len(entry) <= capaFuzzMaxLine
}

// FuzzCapa feeds arbitrary bytes to the CAPA parser as the server's reply
// and checks its invariants: no panic; a typed error or a bounded set of
// single-line entries; and a dot-stuffed round trip both ways.
func FuzzCapa(f *testing.F) {
	capaFuzzSeeds(f, "capa_*.txt", "golden_*")
	f.Add([]byte("+OK\r\n.\r\n"))
	f.Add([]byte("+OK\r\n..\r\n...\r\n.\r\n"))
	f.Add([]byte("+OK\r\n" + strings.Repeat("X\r\n", capaFuzzMaxLines) + ".\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		caps, err := capaDiscover(data)
		if err != nil {
			if !errors.Is(err, starttls.ErrProtocol) && !errors.Is(err, starttls.ErrTooLarge) &&
				!errors.Is(err, starttls.ErrRefused) && !errors.Is(err, io.EOF) &&
				!errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("untyped error %v", err)
			}
			msg := err.Error()
			for i := 0; i < len(msg); i++ {
				if msg[i] < 0x20 || msg[i] == 0x7f {
					t.Fatalf("control character %q in error %q", msg[i], msg)
				}
			}
		} else {
			entries := caps.List()
			if len(entries) >= capaFuzzMaxLines {
				t.Fatalf("%d entries, bound %d (terminator included)", len(entries), capaFuzzMaxLines)
			}
			for _, e := range entries {
				if !capaValidEntry(e) {
					t.Fatalf("invalid entry %q", e)
				}
			}
			// Round trip: what was parsed, stuffed again, parses the same.
			again, err := capaDiscover(capaStuffed(t, entries))
			if err != nil {
				t.Fatalf("re-parsing %q: %v", entries, err)
			}
			if got := again.List(); !equalStrings(got, entries) {
				t.Fatalf("round trip: got %q, want %q", got, entries)
			}
			// Only a whole STLS keyword counts.
			if caps.Has("STLS") {
				found := false
				for _, e := range entries {
					kw, _, _ := strings.Cut(e, " ")
					found = found || strings.EqualFold(kw, "STLS") && len(kw) == 4
				}
				if !found {
					t.Fatalf("Has(STLS) without an STLS entry in %q", entries)
				}
			}
		}
		// Round trip the other way: the input's lines taken as entries,
		// stuffed, parse back to exactly themselves.
		var entries []string
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSuffix(line, "\r")
			if capaValidEntry(line) && capaFits(line) && len(entries) < capaFuzzMaxLines-1 {
				entries = append(entries, line)
			}
		}
		got, err := capaDiscover(capaStuffed(t, entries))
		if err != nil {
			t.Fatalf("parsing stuffed %q: %v", entries, err)
		}
		if !equalStrings(got.List(), entries) {
			t.Fatalf("stuffed round trip: got %q, want %q", got.List(), entries)
		}
	})
}

// FuzzStatusLine checks ReadResponse on one arbitrary line: no panic; a
// protocol error or a response whose text is the end of the line and whose
// code opens the text.
func FuzzStatusLine(f *testing.F) {
	for _, s := range []string{"+OK", "+OK POP3 ready <1896.697170952@dbc.mtview.ca.us>", "-ERR",
		"-ERR [SYS/TEMP] busy", "-ERR [IN-USE] locked", "-ERR [A/B/C]", "+OKAY", "-ERR [", "+ok x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if strings.ContainsAny(line, "\n") {
			return
		}
		c, _ := capaConnOn(line+"\r\n", &starttls.Options{MaxLineLength: capaFuzzMaxLine})
		r, err := pop3.ReadResponse(c)
		if err != nil {
			if !errors.Is(err, starttls.ErrProtocol) && !errors.Is(err, starttls.ErrTooLarge) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if !strings.HasSuffix(line, r.Text) {
			t.Fatalf("text %q is not the end of %q", r.Text, line)
		}
		wantPrefix := "-ERR"
		if r.OK {
			wantPrefix = "+OK"
		}
		if !strings.EqualFold(line[:len(wantPrefix)], wantPrefix) {
			t.Fatalf("OK=%v for %q", r.OK, line)
		}
		if r.Code != "" && !strings.HasPrefix(r.Text, "["+r.Code+"]") {
			t.Fatalf("code %q does not open text %q", r.Code, r.Text)
		}
	})
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
