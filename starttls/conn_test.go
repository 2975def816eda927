package starttls_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"

	"github.com/tlsup/tlsup/starttls"
)

// readAll reads lines until an error and returns them with that error.
func readAll(c *starttls.Conn) ([]string, error) {
	var lines []string
	for {
		line, err := c.ReadLine()
		if err != nil {
			return lines, err
		}
		lines = append(lines, string(line))
	}
}

func TestReadLine(t *testing.T) {
	max := starttls.DefaultMaxLineLength
	long := strings.Repeat("x", max)
	tests := []struct {
		name    string
		in      string
		bound   int // 0: default
		want    []string
		wantErr error
	}{
		{"crlf stripped", "220 ready\r\n", 0, []string{"220 ready"}, io.EOF},
		{"bare lf ends a line", "220 ready\n250 ok\n", 0, []string{"220 ready", "250 ok"}, io.EOF},
		{"mixed terminators", "a\r\nb\nc\r\n", 0, []string{"a", "b", "c"}, io.EOF},
		{"bare cr is data", "a\rb\r\n", 0, []string{"a\rb"}, io.EOF},
		{"cr cr lf keeps one cr", "a\r\r\n", 0, []string{"a\r"}, io.EOF},
		{"lone cr then eof", "a\r", 0, nil, io.ErrUnexpectedEOF},
		{"empty line", "\r\n\n", 0, []string{"", ""}, io.EOF},
		{"eof at line start", "", 0, nil, io.EOF},
		{"eof mid-line", "220 rea", 0, nil, io.ErrUnexpectedEOF},
		{"eof mid-line after a line", "a\r\nb", 0, []string{"a"}, io.ErrUnexpectedEOF},
		{"exact bound with crlf", long + "\r\n", 0, []string{long}, io.EOF},
		{"exact bound with lf", long + "\n", 0, []string{long}, io.EOF},
		{"bound plus one with crlf", long + "x\r\n", 0, nil, starttls.ErrTooLarge},
		{"bound plus one with lf", long + "x\n", 0, nil, starttls.ErrTooLarge},
		{"bound plus one, cr inside", long + "\r\r\n", 0, nil, starttls.ErrTooLarge},
		{"1 MiB line", strings.Repeat("y", 1<<20) + "\r\n", 0, nil, starttls.ErrTooLarge},
		{"1 MiB without end", strings.Repeat("y", 1<<20), 0, nil, starttls.ErrTooLarge},
		{"custom bound ok", strings.Repeat("z", 20) + "\r\n", 20, []string{strings.Repeat("z", 20)}, io.EOF},
		{"custom bound over", strings.Repeat("z", 21) + "\r\n", 20, nil, starttls.ErrTooLarge},
		{"nul and 8-bit kept", "a\x00\xff\r\n", 0, []string{"a\x00\xff"}, io.EOF},
	}
	for _, tt := range tests {
		for _, chunk := range []int{0, 1, 7} {
			t.Run(tt.name, func(t *testing.T) {
				c := starttls.NewConn(newFakeConn(tt.in, chunk), &starttls.Options{MaxLineLength: tt.bound})
				lines, err := readAll(c)
				assert.Equal(t, tt.want, lines, "chunk %d", chunk)
				require.ErrorIs(t, err, tt.wantErr, "chunk %d", chunk)
				if tt.wantErr == io.EOF {
					assert.NotErrorIs(t, err, io.ErrUnexpectedEOF)
				}
				if errors.Is(err, starttls.ErrTooLarge) {
					assert.True(t, strings.HasPrefix(err.Error(), "starttls: too large"), "got %q", err)
				}
			})
		}
	}
}

func TestReadLineBufferBound(t *testing.T) {
	const bound = 100
	// One read delivers a short line and far more than the bound behind it:
	// the reader must not hold more than bound+2 bytes.
	in := "ok\r\n" + strings.Repeat("x", 10*bound) + "\r\n"
	c := starttls.NewConn(newFakeConn(in, 0), &starttls.Options{MaxLineLength: bound})
	line, err := c.ReadLine()
	require.NoError(t, err)
	assert.Equal(t, "ok", string(line))
	assert.LessOrEqual(t, c.Buffered(), bound+2)
	_, err = c.ReadLine()
	require.ErrorIs(t, err, starttls.ErrTooLarge)
	assert.LessOrEqual(t, c.Buffered(), bound+2)
	assert.Equal(t, bound, c.MaxLineLength())
}

func TestReadResponseBound(t *testing.T) {
	lines := func(n int) string { return strings.Repeat("250-X\r\n", n) }
	tests := []struct {
		name    string
		in      string
		max     int
		stopAt  int // more returns false at this line (1-based); 0 never
		wantN   int
		wantErr error
	}{
		{"within bound", lines(3), 3, 3, 3, nil},
		{"over bound", lines(4), 3, 0, 3, starttls.ErrTooLarge},
		{"default bound exact", lines(starttls.DefaultMaxResponseLines), 0, starttls.DefaultMaxResponseLines, starttls.DefaultMaxResponseLines, nil},
		{"default bound over", lines(starttls.DefaultMaxResponseLines + 1), 0, 0, starttls.DefaultMaxResponseLines, starttls.ErrTooLarge},
		{"hang-up inside", lines(2), 5, 0, 2, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := starttls.NewConn(newFakeConn(tt.in, 0), &starttls.Options{MaxResponseLines: tt.max})
			n := 0
			err := c.ReadResponse(func(line []byte) (bool, error) {
				n++
				return n != tt.stopAt, nil
			})
			assert.Equal(t, tt.wantN, n)
			if tt.wantErr == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tt.wantErr)
			}
		})
	}
	t.Run("callback error", func(t *testing.T) {
		c := starttls.NewConn(newFakeConn(lines(3), 0), nil)
		boom := errors.New("boom")
		err := c.ReadResponse(func([]byte) (bool, error) { return true, boom })
		require.ErrorIs(t, err, boom)
		assert.Equal(t, starttls.DefaultMaxResponseLines, c.MaxResponseLines())
	})
}

func TestDiscard(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		n        int64
		wantErr  error
		wantNext string
	}{
		{"exact", "0123456789next\r\n", 10, nil, "next"},
		{"zero", "next\r\n", 0, nil, "next"},
		{"negative is nothing", "next\r\n", -5, nil, "next"},
		{"larger than the buffer", strings.Repeat("d", 20000) + "next\r\n", 20000, nil, "next"},
		{"stream too short", "short", 1 << 40, io.ErrUnexpectedEOF, ""},
	}
	for _, tt := range tests {
		for _, chunk := range []int{0, 3} {
			t.Run(tt.name, func(t *testing.T) {
				c := starttls.NewConn(newFakeConn(tt.in, chunk), nil)
				err := c.Discard(tt.n)
				if tt.wantErr != nil {
					require.ErrorIs(t, err, tt.wantErr)
					return
				}
				require.NoError(t, err)
				line, err := c.ReadLine()
				require.NoError(t, err)
				assert.Equal(t, tt.wantNext, string(line))
			})
		}
	}
}

func TestDiscardAllocations(t *testing.T) {
	fc := newFakeConn(strings.Repeat("x", 300), 64)
	c := starttls.NewConn(fc, nil)
	allocs := testing.AllocsPerRun(100, func() {
		fc.Rewind()
		if err := c.Discard(1 << 50); !errors.Is(err, io.ErrUnexpectedEOF) {
			panic("want io.ErrUnexpectedEOF, got " + err.Error())
		}
	})
	assert.Zero(t, allocs, "Discard of a huge count on a short stream allocated")
}

func TestReadLineAllocations(t *testing.T) {
	fc := newFakeConn("250-PIPELINING\r\n250-SIZE 10240000\n", 0)
	fc.Loop = true
	c := starttls.NewConn(fc, nil)
	for range 10 { // warm up
		_, err := c.ReadLine()
		require.NoError(t, err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := c.ReadLine(); err != nil {
			panic(err)
		}
	})
	assert.Zero(t, allocs, "allocations per ReadLine in steady state")
}

func TestWriteRefusesUnsafe(t *testing.T) {
	tests := []struct {
		name  string
		write func(c *starttls.Conn) error
	}{
		{"line with CR", func(c *starttls.Conn) error { return c.WriteLine("NOOP\rQUIT") }},
		{"line with LF", func(c *starttls.Conn) error { return c.WriteLine("NOOP\nQUIT") }},
		{"line with CRLF", func(c *starttls.Conn) error { return c.WriteLine("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>") }},
		{"line with NUL", func(c *starttls.Conn) error { return c.WriteLine("NOOP\x00") }},
		{"line ending in CRLF", func(c *starttls.Conn) error { return c.WriteLine("NOOP\r\n") }},
		{"secret with LF", func(c *starttls.Conn) error { return c.WriteSecretLine("PASS a\nDELE 1") }},
		{"command arg with CR", func(c *starttls.Conn) error { return c.WriteCommand("EHLO", "host\r") }},
		{"command arg with LF", func(c *starttls.Conn) error { return c.WriteCommand("MAIL", "FROM:<a@b>", "x\nRSET") }},
		{"command arg with NUL", func(c *starttls.Conn) error { return c.WriteCommand("LOGIN", "user", "pa\x00ss") }},
		{"command verb with LF", func(c *starttls.Conn) error { return c.WriteCommand("NOOP\nQUIT") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := newFakeConn("", 0)
			var transcript bytes.Buffer
			c := starttls.NewConn(fc, &starttls.Options{Transcript: &transcript})
			err := tt.write(c)
			require.ErrorIs(t, err, starttls.ErrUnsafeArgument)
			assert.True(t, strings.HasPrefix(err.Error(), "starttls: CR, LF or NUL in text to send: "), "got %q", err)
			assert.Contains(t, err.Error(), "would end the line there")
			assert.False(t, hasControl(err.Error()), "raw control character in %q", err)
			out, writes := fc.Written(), fc.Writes()
			assert.Empty(t, out, "bytes written")
			assert.Zero(t, writes)
			assert.Empty(t, transcript.String())
		})
	}
}

func TestWriteLine(t *testing.T) {
	fc := newFakeConn("", 0)
	c := starttls.NewConn(fc, nil)
	require.NoError(t, c.WriteLine("EHLO localhost"))
	require.NoError(t, c.WriteCommand("MAIL", "FROM:<a@example.test>", "SIZE=10"))
	require.NoError(t, c.WriteCommand("NOOP"))
	require.NoError(t, c.WriteSecretLine("AUTH PLAIN AGFsaWNlAHNlY3JldA=="))
	require.NoError(t, c.WriteLine(strings.Repeat("a", 2000))) // larger than the kept buffer
	require.NoError(t, c.WriteLine("QUIT"))
	out, writes := fc.Written(), fc.Writes()
	assert.Equal(t, "EHLO localhost\r\nMAIL FROM:<a@example.test> SIZE=10\r\nNOOP\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"+
		strings.Repeat("a", 2000)+"\r\nQUIT\r\n", out)
	assert.Equal(t, 6, writes, "one Write per line")
	assert.NoError(t, starttls.CheckLine("a b\tc"))
}

func TestTranscript(t *testing.T) {
	tests := []struct {
		name   string
		server bool
		run    func(c *starttls.Conn) error
		want   string
	}{
		{"client write", false, func(c *starttls.Conn) error { return c.WriteLine("EHLO localhost") }, "C: EHLO localhost\n"},
		{"client read", false, func(c *starttls.Conn) error { _, err := c.ReadLine(); return err }, "S: 220 mx ready\n"},
		{"server write", true, func(c *starttls.Conn) error { return c.WriteLine("220 mx ready") }, "S: 220 mx ready\n"},
		{"server read", true, func(c *starttls.Conn) error { _, err := c.ReadLine(); return err }, "C: 220 mx ready\n"},
		{"command", false, func(c *starttls.Conn) error { return c.WriteCommand("MAIL", "FROM:<>") }, "C: MAIL FROM:<>\n"},
		{"secret smtp", false, func(c *starttls.Conn) error { return c.WriteSecretLine("AUTH PLAIN AGFsaWNl") }, "C: AUTH <redacted>\n"},
		{"secret pop3", false, func(c *starttls.Conn) error { return c.WriteSecretLine("PASS hunter2") }, "C: PASS <redacted>\n"},
		{"secret imap", false, func(c *starttls.Conn) error { return c.WriteSecretLine("a1 LOGIN alice hunter2") }, "C: a1 LOGIN <redacted>\n"},
		{"secret bare sasl", false, func(c *starttls.Conn) error { return c.WriteSecretLine("aHVudGVyMg==") }, "C: <redacted>\n"},
		{"secret bare letters", false, func(c *starttls.Conn) error { return c.WriteSecretLine("hunter") }, "C: <redacted>\n"},
		{"mark", false, func(c *starttls.Conn) error { c.Mark("-- TLS --"); return nil }, "-- TLS --\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr bytes.Buffer
			c := starttls.NewConn(newFakeConn("220 mx ready\r\n", 0), &starttls.Options{Transcript: &tr, Server: tt.server})
			require.NoError(t, tt.run(c))
			assert.Equal(t, tt.want, tr.String())
			assert.NotContains(t, tr.String(), "hunter2")
			assert.NotContains(t, tr.String(), "AGFsaWNl")
		})
	}
	// A server's transcript records what the client sends: credentials
	// are redacted there too, and so are plain WriteLine calls that carry
	// them.
	for _, tt := range []struct{ in, want string }{
		{"AUTH PLAIN AGFsaWNlAGh1bnRlcjI=\r\n", "C: AUTH <redacted>\n"},
		{"pass hunter2\r\n", "C: pass <redacted>\n"},
		{"APOP alice c4c9334bac560ecc979e58001b3e22fb\r\n", "C: APOP <redacted>\n"},
		{"a1 login alice hunter2\r\n", "C: a1 login <redacted>\n"},
		{"A AUTHENTICATE PLAIN AGFsaWNlAGh1bnRlcjI=\r\n", "C: A AUTHENTICATE <redacted>\n"},
		// The core knows no protocol: without a protocol's Redactor it
		// hides whatever follows an authentication-looking word.
		{"LOGIN hunter2\r\n", "C: LOGIN <redacted>\n"},
		{"AUTHINFO PASS hunter2\r\n", "C: AUTHINFO PASS <redacted>\n"},
		{"AUTHENTICATE \"PLAIN\" \"AGFsaWNlAGh1bnRlcjI=\"\r\n", "C: AUTHENTICATE <redacted>\n"},
		{"PASSWORD hunter2\r\n", "C: PASSWORD <redacted>\n"},
		{"x1 xauth hunter2\r\n", "C: x1 xauth <redacted>\n"},
		// Words separated by tabs (NNTP allows them) are words too.
		{"AUTHINFO\tPASS\thunter2\r\n", "C: AUTHINFO\\tPASS <redacted>\n"},
		{"LOGIN\thunter2\r\n", "C: LOGIN <redacted>\n"},
		{"AUTH\r\n", "C: AUTH\n"},                       // nothing to hide
		{"GROUP alt.test\r\n", "C: GROUP alt.test\n"},   // nothing secret
		{"a b PASS hunter\r\n", "C: a b PASS hunter\n"}, // only the first two words start a secret
	} {
		t.Run("server read "+tt.in, func(t *testing.T) {
			var tr bytes.Buffer
			c := starttls.NewConn(newFakeConn(tt.in, 0), &starttls.Options{Transcript: &tr, Server: true})
			_, err := c.ReadLine()
			require.NoError(t, err)
			assert.Equal(t, tt.want, tr.String())
		})
	}
	t.Run("plain write of a credential", func(t *testing.T) {
		var tr bytes.Buffer
		c := starttls.NewConn(newFakeConn("", 0), &starttls.Options{Transcript: &tr})
		require.NoError(t, c.WriteLine("PASS hunter2"))
		assert.Equal(t, "C: PASS <redacted>\n", tr.String())
	})
	t.Run("backslashes kept single", func(t *testing.T) {
		var tr bytes.Buffer
		in := "* FLAGS (\\Answered \\Seen)\x1b\r\n"
		c := starttls.NewConn(newFakeConn(in, 0), &starttls.Options{Transcript: &tr})
		_, err := c.ReadLine()
		require.NoError(t, err)
		assert.Equal(t, `S: * FLAGS (\Answered \Seen)\x1b`+"\n", tr.String(), "IMAP flags as sent; controls still escaped")
	})
	t.Run("control characters escaped", func(t *testing.T) {
		var tr bytes.Buffer
		in := "220 \x1b[2J\x1b]0;owned\x07 \u202egnp.exe\xff\r\n"
		c := starttls.NewConn(newFakeConn(in, 0), &starttls.Options{Transcript: &tr})
		line, err := c.ReadLine()
		require.NoError(t, err)
		assert.Equal(t, "220 \x1b[2J\x1b]0;owned\x07 \u202egnp.exe\xff", string(line), "the line itself is raw")
		got := tr.String()
		assert.Equal(t, `S: 220 \x1b[2J\x1b]0;owned\x07 \u202egnp.exe\xff`+"\n", got)
		assert.False(t, hasControl(strings.TrimSuffix(got, "\n")))
	})
	t.Run("set transcript", func(t *testing.T) {
		var tr bytes.Buffer
		c := starttls.NewConn(newFakeConn("a\r\nb\r\n", 0), nil)
		_, err := c.ReadLine()
		require.NoError(t, err)
		c.SetTranscript(&tr)
		_, err = c.ReadLine()
		require.NoError(t, err)
		c.SetTranscript(nil)
		require.NoError(t, c.WriteLine("x"))
		assert.Equal(t, "S: b\n", tr.String())
	})
}

func TestBufferedAndRead(t *testing.T) {
	c := starttls.NewConn(newFakeConn("220 ready\r\nEXTRA", 0), nil)
	assert.Zero(t, c.Buffered())
	_, err := c.ReadLine()
	require.NoError(t, err)
	assert.Equal(t, 5, c.Buffered())
	// Read drains the buffer before the wrapped conn.
	buf := make([]byte, 16)
	n, err := c.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "EXTRA", string(buf[:n]))
	assert.Zero(t, c.Buffered())
	assert.Nil(t, c.TLS())
	assert.NotNil(t, c.NetConn())
}

// TestConnConformance checks Conn against the net.Conn contract, with both
// ends wrapped, over net.Pipe and over loopback TCP.
func TestConnConformance(t *testing.T) {
	t.Run("pipe", func(t *testing.T) {
		nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
			a, b := net.Pipe()
			c1, c2 := starttls.NewConn(a, nil), starttls.NewConn(b, nil)
			return c1, c2, func() { c1.Close(); c2.Close() }, nil
		})
	})
	t.Run("tcp", func(t *testing.T) {
		nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, nil, nil, err
			}
			defer ln.Close()
			accepted := make(chan net.Conn, 1)
			acceptErr := make(chan error, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					acceptErr <- err
					return
				}
				accepted <- c
			}()
			a, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				return nil, nil, nil, err
			}
			var b net.Conn
			select {
			case b = <-accepted:
			case err := <-acceptErr:
				a.Close()
				return nil, nil, nil, err
			}
			c1, c2 := starttls.NewConn(a, nil), starttls.NewConn(b, nil)
			return c1, c2, func() { c1.Close(); c2.Close() }, nil
		})
	})
}

// FuzzReadLine feeds random bytes in random chunks under a random bound and
// checks that every line is bounded, holds no LF, and that the lines and
// their terminators are exactly the input, in order.
func FuzzReadLine(f *testing.F) {
	f.Add([]byte("220 mx.example.test ESMTP\r\n250-PIPELINING\r\n250 STARTTLS\r\n"), uint16(0), uint8(0))
	f.Add([]byte("* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\n"), uint16(16), uint8(1))
	f.Add([]byte("+OK\r\nSTLS\r\n.\r\n"), uint16(3), uint8(2))
	f.Add([]byte("a\rb\r\r\n\n\r"), uint16(1), uint8(3))
	f.Add(bytes.Repeat([]byte("x"), 5000), uint16(0), uint8(0))
	f.Add(append(bytes.Repeat([]byte("y"), 40), "\r\n"...), uint16(38), uint8(5))
	f.Fuzz(func(t *testing.T, data []byte, bound uint16, chunk uint8) {
		fc := newFakeConn(string(data), int(chunk))
		c := starttls.NewConn(fc, &starttls.Options{MaxLineLength: int(bound)})
		max := c.MaxLineLength()
		pos := 0
		for range len(data) + 1 {
			line, err := c.ReadLine()
			rest := data[pos:]
			if err != nil {
				switch {
				case errors.Is(err, starttls.ErrTooLarge):
					end := bytes.IndexByte(rest, '\n')
					if end < 0 {
						end = len(rest)
					} else {
						end = len(bytes.TrimSuffix(rest[:end], []byte("\r")))
					}
					if end <= max {
						t.Fatalf("ErrTooLarge for a line of %d bytes under bound %d", end, max)
					}
				case err == io.EOF:
					if len(rest) != 0 {
						t.Fatalf("io.EOF with %d bytes unread", len(rest))
					}
				case errors.Is(err, io.ErrUnexpectedEOF):
					if len(rest) == 0 || bytes.IndexByte(rest, '\n') >= 0 {
						t.Fatalf("io.ErrUnexpectedEOF with %q unread", rest)
					}
				default:
					t.Fatalf("unexpected error %v", err)
				}
				if c.Buffered() > max+2 && c.Buffered() > 16 {
					t.Fatalf("%d bytes buffered under bound %d", c.Buffered(), max)
				}
				return
			}
			if len(line) > max {
				t.Fatalf("line of %d bytes under bound %d", len(line), max)
			}
			if bytes.IndexByte(line, '\n') >= 0 {
				t.Fatalf("line %q holds LF", line)
			}
			if !bytes.HasPrefix(rest, line) {
				t.Fatalf("line %q is not the input %q", line, rest)
			}
			after := rest[len(line):]
			switch {
			case bytes.HasPrefix(after, []byte("\r\n")):
				pos += len(line) + 2
			case bytes.HasPrefix(after, []byte("\n")):
				pos += len(line) + 1
			default:
				t.Fatalf("line %q not followed by a terminator in %q", line, rest)
			}
		}
		t.Fatalf("more lines than bytes")
	})
}

// TestReadLineOutOfStepIsFinal checks that once ReadLine has lost its place
// in the line stream, the tail of the cut line never comes back as a line,
// where it could pass for a command.
func TestReadLineOutOfStepIsFinal(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"tail left in the stream", strings.Repeat("x", 200) + "QUIT\r\nNOOP\r\n"},
		{"over by one, lf seen", strings.Repeat("x", 101) + "\r\nNOOP\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := starttls.NewConn(newFakeConn(tt.in, 0), &starttls.Options{MaxLineLength: 100})
			for range 3 {
				line, err := c.ReadLine()
				require.ErrorIs(t, err, starttls.ErrTooLarge, "got line %q", line)
			}
		})
	}
	t.Run("deadline in mid-line", func(t *testing.T) {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		c := starttls.NewConn(a, nil)
		wrote := make(chan error, 1)
		go func() {
			_, err := io.WriteString(b, "MAIL FR")
			wrote <- err
		}()
		require.NoError(t, a.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
		_, err := c.ReadLine()
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		require.NoError(t, <-wrote)
		require.NoError(t, a.SetReadDeadline(time.Time{}))
		go func() {
			_, err := io.WriteString(b, "OM:<attacker@example.test>\r\n")
			wrote <- err
		}()
		line, err := c.ReadLine()
		require.ErrorIs(t, err, os.ErrDeadlineExceeded, "got line %q", line)
		b.Close()
		<-wrote
	})
	t.Run("deadline at a line start is not final", func(t *testing.T) {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		c := starttls.NewConn(a, nil)
		require.NoError(t, a.SetReadDeadline(time.Now().Add(-time.Second)))
		_, err := c.ReadLine()
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		require.NoError(t, a.SetReadDeadline(time.Now().Add(5*time.Second)))
		wrote := make(chan error, 1)
		go func() {
			_, err := io.WriteString(b, "NOOP\r\n")
			wrote <- err
		}()
		line, err := c.ReadLine()
		require.NoError(t, err)
		assert.Equal(t, "NOOP", string(line))
		require.NoError(t, <-wrote)
	})
}
