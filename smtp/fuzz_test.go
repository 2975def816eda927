package smtp_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/errkind"
	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
)

// newByteConn returns the shared fake conn reading data, for fuzzing the
// parsers without a peer.
func newByteConn(data []byte) *scripttest.FakeConn { return scripttest.NewFakeConn(data) }

// seeds returns the replies in testdata/replies, each with CRLF line ends
// and with bare LF, plus a few hand-made edge cases.
func seeds(tb testing.TB) [][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "replies", "*.txt"))
	require.NoError(tb, err)
	require.NotEmpty(tb, files)
	var out [][]byte
	for _, name := range files {
		data, err := os.ReadFile(name)
		require.NoError(tb, err)
		lf := bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
		out = append(out, bytes.ReplaceAll(lf, []byte("\n"), []byte("\r\n")), lf)
	}
	// The replies real Postfix sent (golden captures): each run of S: lines
	// between C: lines is one reply.
	goldens, err := filepath.Glob(filepath.Join("testdata", "golden_*.txt"))
	require.NoError(tb, err)
	for _, name := range goldens {
		data, err := os.ReadFile(name)
		require.NoError(tb, err)
		var reply []byte
		for _, line := range strings.Split(string(data), "\n") {
			if text, ok := strings.CutPrefix(line, "S: "); ok {
				reply = append(append(reply, text...), '\r', '\n')
				continue
			}
			if len(reply) > 0 {
				out = append(out, reply)
				reply = nil
			}
		}
		if len(reply) > 0 {
			out = append(out, reply)
		}
	}
	for _, s := range []string{
		"", "2", "250", "250\r\n", "250-\r\n250 \r\n", "250-a\r\n251 b\r\n", "250 a\rb\r\n",
		"199 low\r\n", "600 high\r\n", "250+x\r\n", "250-STARTTLS\x00\r\n250 \xff\r\n",
		"250-" + strings.Repeat("x", 200) + "\r\n250 y\r\n", strings.Repeat("250-x\r\n", 40),
		"220 go\r\n\x16\x03\x01", "\r\n\r\n", "\n",
	} {
		out = append(out, []byte(s))
	}
	return out
}

// Small bounds, so that the fuzzer reaches them quickly.
var fuzzBounds = &starttls.Options{MaxLineLength: 128, MaxResponseLines: 16}

// checkReply asserts the invariants of a reply ReadReply accepted.
func checkReply(t *testing.T, r smtp.Reply, c *starttls.Conn) {
	t.Helper()
	require.GreaterOrEqual(t, r.Code, 200)
	require.LessOrEqual(t, r.Code, 599)
	require.NotEmpty(t, r.Lines)
	require.LessOrEqual(t, len(r.Lines), c.MaxResponseLines())
	for _, l := range r.Lines {
		require.LessOrEqual(t, len(l)+4, c.MaxLineLength())
		require.NotContains(t, l, "\n")
	}
	requireEscaped(t, r.Text())
	// Round trip: written back with CRLF, the reply reads the same.
	again, err := smtp.ReadReply(starttls.NewConn(newByteConn(encodeReply(r)), nil))
	require.NoError(t, err)
	require.Equal(t, r, again)
}

// encodeReply writes r as RFC 5321, Section 4.2.1 says.
func encodeReply(r smtp.Reply) []byte {
	var b bytes.Buffer
	for i, l := range r.Lines {
		sep := "-"
		if i == len(r.Lines)-1 {
			sep = " "
		}
		fmt.Fprintf(&b, "%03d%s%s\r\n", r.Code, sep, l)
	}
	return b.Bytes()
}

// requireKnownReadError asserts that a failed read failed for a documented
// reason.
func requireKnownReadError(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, starttls.ErrProtocol) || errors.Is(err, starttls.ErrTooLarge) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		requireEscaped(t, err.Error())
		return
	}
	t.Fatalf("unexpected error %T %v", err, err)
}

// FuzzReadReply reads replies from arbitrary bytes until an error.
func FuzzReadReply(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, opts := range []*starttls.Options{nil, fuzzBounds} {
			c := starttls.NewConn(newByteConn(data), opts)
			for range 64 {
				r, err := smtp.ReadReply(c)
				if err != nil {
					requireKnownReadError(t, err)
					break
				}
				checkReply(t, r, c)
			}
		}
	})
}

// FuzzDiscover parses arbitrary bytes as the reply to EHLO.
func FuzzDiscover(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, lmtp bool) {
		conn := newByteConn(data)
		c := starttls.NewConn(conn, fuzzBounds)
		u := &smtp.Upgrader{LMTP: lmtp}
		caps, err := u.Discover(context.Background(), c)
		verb := "EHLO"
		if lmtp {
			verb = "LHLO"
		}
		require.Equal(t, verb+" localhost\r\n", conn.Written(), "exactly one command is sent")
		if err != nil {
			require.Nil(t, caps)
			if errors.Is(err, starttls.ErrRefused) {
				var re *starttls.ReplyError
				require.ErrorAs(t, err, &re)
				require.GreaterOrEqual(t, re.Code, 400)
				require.Equal(t, verb, re.Command)
				requireEscaped(t, err.Error())
				return
			}
			requireKnownReadError(t, err)
			return
		}
		entries := caps.List()
		require.Less(t, len(entries), fuzzBounds.MaxResponseLines, "the domain line is not an entry")
		// Has agrees with a plain ASCII reading of each keyword.
		want := false
		for _, e := range entries {
			require.NotContains(t, e, "\n")
			kw, _, _ := strings.Cut(e, " ")
			if starttls.UpperASCII(kw) == "STARTTLS" {
				want = true
			}
		}
		require.Equal(t, want, caps.Has("STARTTLS"), "Has(STARTTLS) for %q", entries)
		// Round trip: the entries behind a domain line parse to themselves.
		var b bytes.Buffer
		b.WriteString("250-domain.example\r\n")
		for i, e := range entries {
			sep := "-"
			if i == len(entries)-1 {
				sep = " "
			}
			fmt.Fprintf(&b, "250%s%s\r\n", sep, e)
		}
		if len(entries) == 0 {
			b.Reset()
			b.WriteString("250 domain.example\r\n")
		}
		again, err := u.Discover(context.Background(), starttls.NewConn(newByteConn(b.Bytes()), nil))
		require.NoError(t, err)
		require.Equal(t, entries, again.List())
	})
}

// FuzzUpgrade runs a whole upgrade against arbitrary server bytes (no TLS
// can complete): it always fails or, under Opportunistic, continues in
// plaintext; STARTTLS is sent only when advertised (Required) and only
// after a complete EHLO reply; nothing but STARTTLS and a ClientHello
// follows the EHLO.
func FuzzUpgrade(f *testing.F) {
	session := func(parts ...string) []byte {
		var b bytes.Buffer
		for _, p := range parts {
			data, err := os.ReadFile(filepath.Join("testdata", "replies", p))
			require.NoError(f, err)
			b.Write(bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n")))
		}
		return b.Bytes()
	}
	f.Add(session("rfc5321-appendix-d-greeting.txt", "rfc3207-ehlo.txt", "rfc3207-go-ahead.txt"), uint8(0))
	f.Add(session("postfix-greeting-multiline.txt", "postfix-ehlo.txt", "rfc3207-refused.txt"), uint8(0))
	f.Add(session("exim-greeting.txt", "exim-ehlo.txt", "rfc3207-go-ahead.txt", "rfc3207-go-ahead.txt"), uint8(1))
	f.Add(session("exim-greeting.txt", "rfc5321-appendix-d-ehlo.txt"), uint8(2))
	f.Add(session("exim-greeting.txt", "ehlo-refused.txt", "rfc3207-go-ahead.txt"), uint8(1))
	f.Add(session("greeting-rejected.txt"), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, policy uint8) {
		p := starttls.Policy(policy % 3)
		conn := newByteConn(data)
		cfg := &tls.Config{ServerName: "mx.example.test", MinVersion: tls.VersionTLS12}
		tc, res, err := smtp.Upgrade(context.Background(), conn, &smtp.Options{TLSConfig: cfg, Policy: p, Conn: fuzzBounds})
		require.Nil(t, tc, "no TLS can complete against a byte string")
		require.NotNil(t, res)
		require.False(t, res.TLS)
		requireEscaped(t, res.Greeting)
		written := conn.Written()
		if err == nil {
			require.Equal(t, starttls.Opportunistic, p)
			require.True(t, res.Plaintext)
			require.False(t, res.Before.Has("STARTTLS"))
			require.Equal(t, "EHLO localhost\r\n", written)
			return
		}
		require.True(t, conn.Closed(), "the conn is closed on error")
		requireEscaped(t, err.Error())
		require.NotEqual(t, "", errkind.Of(err))
		var e *starttls.Error
		require.ErrorAs(t, err, &e)
		// What was written: nothing, EHLO, EHLO STARTTLS, or those and a
		// ClientHello.
		rest, ok := strings.CutPrefix(written, "EHLO localhost\r\n")
		if !ok {
			require.Empty(t, written)
			return
		}
		rest, sent := strings.CutPrefix(rest, "STARTTLS\r\n")
		if !sent {
			require.Empty(t, rest)
			return
		}
		if p == starttls.Required {
			require.True(t, res.Before.Has("STARTTLS"), "STARTTLS sent but not advertised")
		}
		if rest != "" {
			require.Equal(t, byte(0x16), rest[0], "only a TLS handshake record follows STARTTLS")
			require.Equal(t, starttls.StepHandshake, e.Step)
		}
	})
}
