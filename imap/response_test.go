package imap_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/imap"
	"github.com/tlsup/tlsup/starttls"
)

// bytesConn is a net.Conn that reads from r and discards writes, for the
// parser tests. Only Read, Write and Close may be called.
type bytesConn struct {
	net.Conn
	r io.Reader
}

func (c *bytesConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *bytesConn) Write(p []byte) (int, error) { return len(p), nil }
func (c *bytesConn) Close() error                { return nil }

func connOn(data []byte) *starttls.Conn {
	return starttls.NewConn(&bytesConn{r: bytes.NewReader(data)}, nil)
}

// readAll reads every response in data.
func readAll(data []byte, maxLiteral int64) ([]*imap.Response, error) {
	c := connOn(data)
	var out []*imap.Response
	err := imap.ReadResponses(c, maxLiteral, func(r *imap.Response) (bool, error) {
		out = append(out, r)
		return true, nil
	})
	return out, err
}

func TestParseResponse(t *testing.T) {
	for _, c := range []struct {
		line string
		want imap.Response
	}{
		{"* OK IMAP4rev2 Service Ready", imap.Response{Tag: "*", Status: "OK", Text: "IMAP4rev2 Service Ready"}},
		{"* ok [capability IMAP4rev1 STARTTLS] hi", imap.Response{Tag: "*", Status: "OK", Code: "CAPABILITY", CodeArgs: "IMAP4rev1 STARTTLS", Text: "hi"}},
		{"* PREAUTH [ALERT] x", imap.Response{Tag: "*", Status: "PREAUTH", Code: "ALERT", Text: "x"}},
		{"* BYE", imap.Response{Tag: "*", Status: "BYE"}},
		{"* NO [REFERRAL IMAP://user;AUTH=*@SERVER2/] Remote Server", imap.Response{Tag: "*", Status: "NO", Code: "REFERRAL", CodeArgs: "IMAP://user;AUTH=*@SERVER2/", Text: "Remote Server"}},
		{"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited", imap.Response{Tag: "*", Status: "OK", Code: "PERMANENTFLAGS", CodeArgs: "(\\Deleted \\Seen \\*)", Text: "Limited"}},
		{"* OK [READ-WRITE]", imap.Response{Tag: "*", Status: "OK", Code: "READ-WRITE"}},
		{"a1 OK", imap.Response{Tag: "a1", Status: "OK"}},
		{"a1 OK ", imap.Response{Tag: "a1", Status: "OK"}},
		{"A142 OK [READ-WRITE] SELECT completed", imap.Response{Tag: "A142", Status: "OK", Code: "READ-WRITE", Text: "SELECT completed"}},
		{"a] bad oops", imap.Response{Tag: "a]", Status: "BAD", Text: "oops"}},
		{"+ Ready for additional command text", imap.Response{Tag: "+", Text: "Ready for additional command text"}},
		{"+", imap.Response{Tag: "+"}},
		{"* 172 EXISTS", imap.Response{Tag: "*", Number: 172, HasNumber: true, Name: "EXISTS"}},
		{"* 4294967295 expunge", imap.Response{Tag: "*", Number: 4294967295, HasNumber: true, Name: "EXPUNGE"}},
		{"* 12 FETCH (BODY[] {5}", imap.Response{Tag: "*", Number: 12, HasNumber: true, Name: "FETCH", Args: "(BODY[] {5}"}},
		{"* CAPABILITY IMAP4rev2 STARTTLS", imap.Response{Tag: "*", Name: "CAPABILITY", Args: "IMAP4rev2 STARTTLS"}},
		{"* LIST (\\Noselect) \"/\" ~/Mail/foo", imap.Response{Tag: "*", Name: "LIST", Args: "(\\Noselect) \"/\" ~/Mail/foo"}},
	} {
		t.Run(c.line, func(t *testing.T) {
			got, err := imap.ParseResponse([]byte(c.line))
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}
}

func TestParseResponseMalformed(t *testing.T) {
	for _, line := range []string{
		"", " ", "*", "* ", "*  OK", "a1", "a1 ", "a1 PREAUTH x", "a1 BYE x", "a1 FOO bar",
		"+OK ready", "a+b OK x", "a(b OK x", "a\x00 OK x", "\xff OK x", "a{1} OK",
		"* OK [ALERT", "* OK [] x", "* OK [AL\"ERT] x", "* 4294967296 EXISTS", "* 99999999999 EXISTS",
		"* 1", "* 1 (FETCH)", "* (x)", "* \x00", "220 ready", "HTTP/1.1 200 OK",
	} {
		t.Run(line, func(t *testing.T) {
			_, err := imap.ParseResponse([]byte(line))
			require.ErrorIs(t, err, starttls.ErrProtocol)
			assert.NotContains(t, err.Error(), "\x00")
		})
	}
}

// TestHugeLiteralIsNotRead checks that a literal of 4 GiB is refused before
// any of it is read or allocated: the bytes behind it stay unread and the
// memory used stays far below the announced size.
func TestHugeLiteralIsNotRead(t *testing.T) {
	data := []byte("* 1 FETCH (BODY[] {4294967296}\r\n" + strings.Repeat("x", 100))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const runs = 50
	for range runs {
		rd := bytes.NewReader(data)
		c := starttls.NewConn(&bytesConn{r: rd}, nil)
		err := imap.ReadResponses(c, 0, func(*imap.Response) (bool, error) { return true, nil })
		require.ErrorIs(t, err, starttls.ErrTooLarge)
	}
	runtime.ReadMemStats(&after)
	perRun := (after.TotalAlloc - before.TotalAlloc) / runs
	assert.Less(t, perRun, uint64(64<<10), "bytes allocated per run")
}

func TestReadResponses(t *testing.T) {
	data := "* 1 FETCH (BODY[] {11}\r\n" +
		"a1 OK x\r\n\r\n" + // the literal: 11 bytes that look like lines
		" FLAGS (\\Seen) BODY[HEADER] {3+}\r\n" +
		"abc)\r\n" +
		"* OK [ALERT] {5}\r\n" + // a status response carries no literal
		"* LIST () \"/\" ~{2}\r\n\r\n\r\n" +
		"a1 OK done\r\n" +
		"* trailing\r\n"
	c := connOn([]byte(data))
	var got []*imap.Response
	err := imap.ReadResponses(c, 0, func(r *imap.Response) (bool, error) {
		got = append(got, r)
		return r.Tag != "a1", nil
	})
	require.NoError(t, err)
	require.Len(t, got, 4)
	assert.Equal(t, &imap.Response{Tag: "*", Number: 1, HasNumber: true, Name: "FETCH", Args: "(BODY[]", Literals: 2, LiteralBytes: 14}, got[0])
	assert.Equal(t, &imap.Response{Tag: "*", Status: "OK", Code: "ALERT", Text: "{5}"}, got[1])
	assert.Equal(t, &imap.Response{Tag: "*", Name: "LIST", Args: "() \"/\"", Literals: 1, LiteralBytes: 2}, got[2])
	assert.Equal(t, "a1", got[3].Tag)
	assert.Equal(t, len("* trailing\r\n"), c.Buffered(), "nothing read beyond the last response")

	t.Run("EOF inside a literal", func(t *testing.T) {
		_, err := readAll([]byte("* 1 FETCH (BODY[] {10}\r\nabc"), 0)
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	})
	t.Run("lines bound counts lines after literals", func(t *testing.T) {
		data := "* 1 FETCH (" + strings.Repeat("{0}\r\n", starttls.DefaultMaxResponseLines) + ")\r\n"
		_, err := readAll([]byte(data), 0)
		require.ErrorIs(t, err, starttls.ErrTooLarge)
	})
}

func TestParseCapabilities(t *testing.T) {
	caps, err := imap.ParseCapabilities("IMAP4rev1  STARTTLS AUTH=PLAIN LOGINDISABLED ")
	require.NoError(t, err)
	assert.Equal(t, []string{"IMAP4rev1", "STARTTLS", "AUTH=PLAIN", "LOGINDISABLED"}, caps.List())
	assert.True(t, caps.Has("starttls"))
	assert.True(t, caps.Has("auth=plain"))
	assert.False(t, caps.Has("AUTH"))
	assert.False(t, caps.Has("LOGIN"))

	empty, err := imap.ParseCapabilities("")
	require.NoError(t, err)
	assert.Zero(t, empty.Len())

	for _, bad := range []string{"STARTTLS\x00", "\u017fTARTTLS", "STARTTLS\xff", "A\tB", "{5}", "\"STARTTLS\"", "X]", "(X)", "A%", "A*", "a\\b", "X\x7f"} {
		_, err := imap.ParseCapabilities("IMAP4rev1 " + bad)
		require.ErrorIs(t, err, starttls.ErrProtocol, "%q", bad)
		assert.NotContains(t, err.Error(), "\x00")
	}
	_, err = imap.ParseCapabilities(strings.Repeat("X ", 5000))
	require.ErrorIs(t, err, starttls.ErrTooLarge)
}

func TestIsAtomAndValidTag(t *testing.T) {
	for s, want := range map[string]bool{"A": true, "AUTH=PLAIN": true, "X-GM-EXT-1": true, "LITERAL+": true, "": false, "A B": false, "A]": false, "A\x00": false, "\u00e9": false} {
		assert.Equal(t, want, imap.IsAtom(s), "IsAtom(%q)", s)
	}
	for s, want := range map[string]bool{"a001": true, "A]": true, "t0123456789ab": true, "": false, "+": false, "a+": false, "*": false, "a b": false, "a{": false} {
		assert.Equal(t, want, imap.ValidTag(s), "ValidTag(%q)", s)
	}
}

// TestRealTranscripts reads the RFC examples and the real server transcripts
// in testdata whole, literals included.
func TestRealTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/responses/*.txt")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			data, err := os.ReadFile(name)
			require.NoError(t, err)
			got, err := readAll(data, 0)
			require.ErrorIs(t, err, io.EOF, "the whole file is read")
			require.NotEmpty(t, got)
			for _, r := range got {
				switch {
				case r.Name == "CAPABILITY":
					caps, err := imap.ParseCapabilities(r.Args)
					require.NoError(t, err)
					assert.True(t, caps.Has("IMAP4rev1") || caps.Has("IMAP4rev2"), "%v", caps.List())
				case r.Code == "CAPABILITY":
					_, err := imap.ParseCapabilities(r.CodeArgs)
					require.NoError(t, err)
				}
			}
		})
	}
}

// FuzzReadResponses feeds arbitrary server bytes to the response reader
// and to the Upgrader's greeting and discovery, and checks the invariants:
// no panic; bounded output; well-formed tags, statuses and names; literal
// bytes never more than were sent; capability atoms without SP, CTL or
// 8-bit bytes.
func FuzzReadResponses(f *testing.F) {
	files, err := filepath.Glob("testdata/responses/*.txt")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		for _, line := range bytes.SplitAfter(data, []byte("\n")) {
			f.Add(line)
		}
	}
	// The server lines of the golden transcripts captured from real
	// servers (golden_*.txt, when present), tags made concrete.
	golden, _ := filepath.Glob("testdata/golden_*.txt")
	for _, name := range golden {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		var server []byte
		for _, line := range strings.Split(string(data), "\n") {
			if text, ok := strings.CutPrefix(line, "S: "); ok {
				text = regexp.MustCompile(`\{[A-Za-z0-9_]+\}`).ReplaceAllString(text, "a1")
				server = append(server, text+"\r\n"...)
			}
		}
		f.Add(server)
	}
	f.Add([]byte("* 1 FETCH (BODY[] {4294967296}\r\n"))
	f.Add([]byte("* 1 FETCH (BODY[] {3+}\r\nabc ~{2}\r\n\r\n)\r\n"))
	f.Add([]byte("* OK [CAPABILITY IMAP4rev1 STARTTLS\x00] x\r\n"))
	f.Add([]byte("* CAPABILITY \xc5\xbfTARTTLS\r\n"))
	f.Add([]byte("+\r\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := readAll(data, 0)
		if err == nil {
			t.Fatal("ReadResponses returned nil before the end of the input")
		}
		if len(got) > starttls.DefaultMaxResponseLines {
			t.Fatalf("%d responses over the %d-line bound", len(got), starttls.DefaultMaxResponseLines)
		}
		var literalBytes int64
		for _, r := range got {
			checkResponse(t, r)
			literalBytes += r.LiteralBytes
		}
		if literalBytes > int64(len(data)) {
			t.Fatalf("%d literal bytes from %d bytes of input", literalBytes, len(data))
		}

		// The Upgrader's own steps on the same bytes.
		var u imap.Upgrader
		ctx := context.Background()
		g, err := u.Greet(ctx, connOn(data))
		if err == nil {
			checkCaps(t, g.Capabilities)
		}
		if strings.ContainsAny(g.Text, "\x00\r\n\x1b") {
			t.Fatalf("greeting text not escaped: %q", g.Text)
		}
		caps, err := u.Discover(ctx, connOn(data))
		if err == nil {
			checkCaps(t, caps)
		} else if strings.ContainsAny(err.Error(), "\x00\r\n\x1b") {
			t.Fatalf("error not escaped: %q", err.Error())
		}
		if err := u.StartTLS(ctx, connOn(data)); err == nil {
			// The tags are random: no input can carry the right one,
			// bar a 2^-48 chance.
			t.Fatal("STARTTLS accepted a completion written before the command")
		}
	})
}

func checkResponse(t *testing.T, r *imap.Response) {
	t.Helper()
	switch r.Tag {
	case "+":
		if r.Status != "" || r.Name != "" {
			t.Fatalf("continuation with status or name: %+v", r)
		}
	case "*":
		if (r.Status == "") == (r.Name == "") {
			t.Fatalf("untagged response needs a status or a name, not both: %+v", r)
		}
	default:
		if !imap.ValidTag(r.Tag) {
			t.Fatalf("invalid tag %q", r.Tag)
		}
		if r.Status != "OK" && r.Status != "NO" && r.Status != "BAD" {
			t.Fatalf("tagged status %q", r.Status)
		}
	}
	switch r.Status {
	case "", "OK", "NO", "BAD", "PREAUTH", "BYE":
	default:
		t.Fatalf("status %q", r.Status)
	}
	if r.Name != "" && (!imap.IsAtom(r.Name) || r.Name != strings.ToUpper(r.Name)) {
		t.Fatalf("name %q", r.Name)
	}
	if r.Code != "" && (!imap.IsAtom(r.Code) || r.Code != strings.ToUpper(r.Code)) {
		t.Fatalf("code %q", r.Code)
	}
	if r.HasNumber != (r.Name != "" && r.HasNumber) || (!r.HasNumber && r.Number != 0) {
		t.Fatalf("number without data: %+v", r)
	}
	if r.Literals < 0 || r.LiteralBytes < 0 || int64(r.Literals)*imap.DefaultMaxLiteral < r.LiteralBytes {
		t.Fatalf("literal counts: %+v", r)
	}
	if r.Name == "CAPABILITY" && r.Literals == 0 {
		if caps, err := imap.ParseCapabilities(r.Args); err == nil {
			checkCaps(t, caps)
		}
	}
	if r.Code == "CAPABILITY" {
		if caps, err := imap.ParseCapabilities(r.CodeArgs); err == nil {
			checkCaps(t, caps)
		}
	}
}

func checkCaps(t *testing.T, caps *starttls.Capabilities) {
	t.Helper()
	for _, atom := range caps.List() {
		if atom == "" {
			t.Fatal("empty capability")
		}
		for i := 0; i < len(atom); i++ {
			if c := atom[i]; c <= ' ' || c >= 0x7f {
				t.Fatalf("capability %q holds byte %#x", atom, c)
			}
		}
		if !caps.Has(atom) {
			t.Fatalf("capability %q not found by Has", atom)
		}
	}
}
