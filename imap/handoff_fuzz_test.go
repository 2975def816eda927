package imap_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/imap"
	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
)

// FuzzHandOff drives HandOff's conn with arbitrary capabilities, client
// writes and server bytes, and checks its contract: nothing is answered
// locally (every write reaches the session at once, byte for byte); the
// reads are one synthetic untagged OK, then the session's bytes (those its
// line reader holds first); the greeting is one CRLF-terminated line that
// ParseResponse reads back, with no control character, whose CAPABILITY
// code lists exactly the entries that are atoms, from res.After, or from
// res.Before for a plaintext session with no AUTH= and one LOGINDISABLED;
// nothing from before TLS reaches a TLS session's greeting.
//
// caps holds the capability entries separated by NUL; cuts gives the chunk
// sizes of the writes, one byte each.
func FuzzHandOff(f *testing.F) {
	f.Add("IMAP4rev2\x00IMAP4rev1\x00AUTH=PLAIN\x00AUTH=SCRAM-SHA-256", false, []byte("a1 NOOP\r\n"), []byte{}, []byte("a1 OK NOOP completed\r\n"))
	f.Add("IMAP4rev2\x00X]Y\x00AUTH=PLAIN\x00", false, []byte("a1 CAPABILITY\r\n"), []byte{2, 5}, []byte("* CAPABILITY IMAP4rev2\r\na1 OK\r\n"))
	f.Add("IMAP4rev1\x00AUTH=PLAIN\x00IDLE\x00LOGINDISABLED\x00auth=login\x00AUTH=", true, []byte("a1 LOGIN user pass\r\n"), []byte{}, []byte("a1 NO [PRIVACYREQUIRED] no\r\n"))
	f.Add("X\r\n* OK\x00{5}\x00\"q\"\x00%\x00caf\u00e9", false, []byte("a1 LOGOUT\r\n"), []byte{0}, []byte("* BYE\r\n"))
	f.Add("", true, []byte{}, []byte{}, []byte{})

	f.Fuzz(func(t *testing.T, caps string, plaintext bool, writes, cuts, server []byte) {
		entries := starttls.NewCapabilities()
		if caps != "" {
			entries = starttls.NewCapabilities(strings.Split(caps, "\x00")...)
		}
		fc := scripttest.NewFakeConn(server)
		conn := starttls.NewConn(fc, nil)
		res := &starttls.Result{Conn: conn}
		const mark = "X-SEEN-BEFORE-TLS"
		if plaintext {
			res.Plaintext, res.Before = true, entries
		} else {
			res.TLS, res.Before, res.After = true, starttls.NewCapabilities(mark, "STARTTLS", "LOGINDISABLED"), entries
		}
		wantServer := server
		if len(server) > 0 {
			// The rest now waits in the line reader's buffer.
			b, err := conn.ReadByte()
			require.NoError(t, err)
			require.Equal(t, server[0], b)
			wantServer = server[1:]
		}
		h := imap.HandOff(res)
		require.NotNil(t, h)

		var all []byte
		for len(writes) > 0 {
			n := len(writes)
			if len(cuts) > 0 {
				n, cuts = min(int(cuts[0])%64+1, n), cuts[1:]
			}
			chunk := writes[:n]
			writes = writes[n:]
			w, err := h.Write(chunk)
			require.NoError(t, err)
			require.Equal(t, len(chunk), w)
			all = append(all, chunk...)
			require.Equal(t, string(all), fc.Written(), "every write reaches the session at once, as written")
		}

		var got []byte
		buf := make([]byte, 5)
		for i := 0; ; i++ {
			require.Less(t, i, 1000+(len(caps)+len(server))*2, "reads must end")
			n, err := h.Read(buf)
			got = append(got, buf[:n]...)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
		}
		end := bytes.Index(got, []byte("\r\n"))
		require.GreaterOrEqual(t, end, 0, "a greeting line: %q", got)
		greeting := got[:end]
		require.Equal(t, string(wantServer), string(got[end+2:]), "the session's bytes follow the greeting, as sent")
		require.Equal(t, -1, starttls.IndexControl(string(greeting)), "no control character in %q", greeting)

		r, err := imap.ParseResponse(greeting)
		require.NoError(t, err, "greeting %q", greeting)
		require.Equal(t, "*", r.Tag)
		require.Equal(t, "OK", r.Status)
		want := []string{}
		for _, e := range entries.List() {
			if !isAtomRFC(e) {
				continue
			}
			if plaintext && (starttls.EqualFold(e, "LOGINDISABLED") || len(e) > 5 && starttls.EqualFold(e[:5], "AUTH=")) {
				continue
			}
			want = append(want, e)
		}
		if plaintext {
			want = append(want, "LOGINDISABLED")
		}
		if len(want) == 0 {
			require.Empty(t, r.Code, "no capability code without capabilities")
			return
		}
		require.Equal(t, "CAPABILITY", r.Code)
		require.Equal(t, want, strings.Split(r.CodeArgs, " "), "the code lists the atoms the session may show")
		if len(want) <= 4096 {
			parsed, err := imap.ParseCapabilities(r.CodeArgs)
			require.NoError(t, err)
			require.Equal(t, want, parsed.List())
		}
		if !plaintext && !strings.Contains(caps, mark) {
			require.NotContains(t, string(greeting), mark, "nothing from before TLS")
		}
	})
}

// isAtomRFC is RFC 9051, Section 9, written out: atom = 1*ATOM-CHAR, any
// CHAR (7-bit, not NUL) except atom-specials: "(" ")" "{" SP CTL "%" "*"
// DQUOTE "\" "]".
func isAtomRFC(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c == 0 || c > 0x7e || c < 0x20 || strings.ContainsRune(`(){ %*"\]`, rune(c)) {
			return false
		}
	}
	return true
}
