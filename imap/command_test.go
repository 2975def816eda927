package imap_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/imap"
	"github.com/tlsup/tlsup/starttls"
)

// srvFakeConn is a net.Conn that reads from a fixed input and records what
// is written, for the command reader.
type srvFakeConn struct {
	in  io.Reader
	out bytes.Buffer
}

func (c *srvFakeConn) Read(p []byte) (int, error)         { return c.in.Read(p) }
func (c *srvFakeConn) Write(p []byte) (int, error)        { return c.out.Write(p) }
func (c *srvFakeConn) Close() error                       { return nil }
func (c *srvFakeConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c *srvFakeConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (c *srvFakeConn) SetDeadline(t time.Time) error      { return nil }
func (c *srvFakeConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *srvFakeConn) SetWriteDeadline(t time.Time) error { return nil }

func TestReadCommand(t *testing.T) {
	sync := &imap.CommandOptions{SyncLiterals: true}
	tests := []struct {
		name    string
		input   string
		opts    *imap.CommandOptions
		want    *imap.Command
		written string // what ReadCommand writes: continuation requests
		wantErr error
		tag     string // the CommandError's tag and name, and Close
		cmdName string
		close   bool
	}{{
		name:  "atoms",
		input: "a1 LOGIN demo demo\r\n",
		want:  &imap.Command{Tag: "a1", Name: "LOGIN", Args: []string{"demo", "demo"}},
	}, {
		name:  "lower-case name, no arguments, bare LF",
		input: "A.1 capability\n",
		want:  &imap.Command{Tag: "A.1", Name: "CAPABILITY"},
	}, {
		name:  "quoted strings with escapes and spaces",
		input: `a1 login "de mo" "p\"w\\d" ""` + "\r\n",
		want:  &imap.Command{Tag: "a1", Name: "LOGIN", Args: []string{"de mo", `p"w\d`, ""}},
	}, {
		name:  "lists and sections kept whole",
		input: `t FETCH 1:* (FLAGS BODY[HEADER.FIELDS (FROM "x y")])` + "\r\n",
		want:  &imap.Command{Tag: "t", Name: "FETCH", Args: []string{"1:*", `(FLAGS BODY[HEADER.FIELDS (FROM "x y")])`}},
	}, {
		name:  "a trailing space is tolerated",
		input: "a1 SELECT INBOX \r\n",
		want:  &imap.Command{Tag: "a1", Name: "SELECT", Args: []string{"INBOX"}},
	}, {
		name:    "synchronizing literals, accepted",
		input:   "a1 LOGIN {4}\r\ndemo {5}\r\np w d\r\n",
		opts:    sync,
		want:    &imap.Command{Tag: "a1", Name: "LOGIN", Args: []string{"demo", "p w d"}},
		written: "+ Ready for literal data\r\n+ Ready for literal data\r\n",
	}, {
		name:  "non-synchronizing literals are read without a continuation",
		input: "a1 LOGIN {4+}\r\ndemo {4+}\r\ndemo\r\n",
		want:  &imap.Command{Tag: "a1", Name: "LOGIN", Args: []string{"demo", "demo"}},
	}, {
		name:  "binary literal, CRLF and NUL inside",
		input: "a1 APPEND INBOX ~{4+}\r\n\x00\r\n\x01\r\n",
		want:  &imap.Command{Tag: "a1", Name: "APPEND", Args: []string{"INBOX", "\x00\r\n\x01"}},
	}, {
		name:  "empty literal",
		input: "a1 LOGIN {0+}\r\n {0+}\r\n\r\n",
		want:  &imap.Command{Tag: "a1", Name: "LOGIN", Args: []string{"", ""}},
	}, {
		name:    "synchronizing literal refused by default, nothing written",
		input:   "a1 LOGIN {4}\r\n",
		wantErr: starttls.ErrProtocol, tag: "a1", cmdName: "LOGIN",
	}, {
		name:    "synchronizing literal over the bound: no continuation",
		input:   "a1 LOGIN {65537}\r\n",
		opts:    sync,
		wantErr: starttls.ErrTooLarge, tag: "a1", cmdName: "LOGIN",
	}, {
		name:    "non-synchronizing literal over the bound: close",
		input:   "a1 LOGIN {65537+}\r\n",
		wantErr: starttls.ErrTooLarge, tag: "a1", cmdName: "LOGIN", close: true,
	}, {
		name:    "a size beyond int64 does not overflow",
		input:   "a1 LOGIN {99999999999999999999999999+}\r\n",
		wantErr: starttls.ErrTooLarge, tag: "a1", cmdName: "LOGIN", close: true,
	}, {
		name:    "smaller bound from the options",
		input:   "a1 LOGIN {11+}\r\n",
		opts:    &imap.CommandOptions{MaxLiteral: 10},
		wantErr: starttls.ErrTooLarge, tag: "a1", cmdName: "LOGIN", close: true,
	}, {
		name:    "too many literals",
		input:   "a1 X {0+}\r\n {0+}\r\n {0+}\r\n",
		opts:    &imap.CommandOptions{MaxLiterals: 2},
		wantErr: starttls.ErrTooLarge, tag: "a1", cmdName: "X", close: true,
	}, {
		name:    "literal inside a list is not supported",
		input:   "a1 X (a {3+}\r\n",
		wantErr: starttls.ErrProtocol, tag: "a1", cmdName: "X", close: true,
	}, {
		name:    "synchronizing literal inside a list (RFC 2971 ID): refused, not invited",
		input:   "a1 ID (\"name\" {3}\r\n",
		wantErr: starttls.ErrProtocol, tag: "a1", cmdName: "ID",
	}, {
		name:    "malformed command announcing a literal: close",
		input:   "a1 LOGIN \"unterminated {3+}\r\n",
		wantErr: starttls.ErrProtocol, tag: "a1", cmdName: "LOGIN", close: true,
	}, {
		name:    "unterminated quoted string",
		input:   "a1 LOGIN \"demo\r\n",
		wantErr: starttls.ErrProtocol, tag: "a1", cmdName: "LOGIN",
	}, {
		name:    "bad escape",
		input:   `a1 LOGIN "\n"` + "\r\n",
		wantErr: starttls.ErrProtocol, tag: "a1", cmdName: "LOGIN",
	}, {
		name:    "unbalanced list",
		input:   "a1 FETCH 1 (FLAGS\r\n",
		wantErr: starttls.ErrProtocol, tag: "a1", cmdName: "FETCH",
	}, {
		name:    "double space",
		input:   "a1 SELECT  INBOX\r\n",
		wantErr: starttls.ErrProtocol, tag: "a1", cmdName: "SELECT",
	}, {
		name:    "literal not at the end of the line",
		input:   "a1 LOGIN {4}x\r\n",
		wantErr: starttls.ErrProtocol, tag: "a1", cmdName: "LOGIN",
	}, {
		name:    "untagged",
		input:   "* NOOP\r\n",
		wantErr: starttls.ErrProtocol,
	}, {
		name:    "continuation tag",
		input:   "+ NOOP\r\n",
		wantErr: starttls.ErrProtocol,
	}, {
		name:    "tag without a command",
		input:   "a1\r\n",
		wantErr: starttls.ErrProtocol, tag: "a1",
	}, {
		name:    "NUL in the command name",
		input:   "a1 NO\x00OP\r\n",
		wantErr: starttls.ErrProtocol, tag: "a1",
	}, {
		name:    "non-ASCII look-alike command name",
		input:   "a1 ſtarttls\r\n",
		wantErr: starttls.ErrProtocol, tag: "a1",
	}, {
		name:    "over-long line",
		input:   "a1 NOOP " + strings.Repeat("x", 5000) + "\r\n",
		wantErr: starttls.ErrTooLarge, close: true,
	}, {
		name:    "literal cut short",
		input:   "a1 LOGIN {4+}\r\nde",
		wantErr: io.ErrUnexpectedEOF,
	}, {
		name:    "nothing after a literal",
		input:   "a1 LOGIN {4+}\r\ndemo",
		wantErr: io.ErrUnexpectedEOF,
	}, {
		name:    "end of stream",
		input:   "",
		wantErr: io.EOF,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := &srvFakeConn{in: strings.NewReader(tt.input)}
			c := starttls.NewConn(fc, &starttls.Options{Server: true})
			cmd, err := imap.ReadCommand(c, tt.opts)
			assert.Equal(t, tt.written, fc.out.String(), "written")
			if tt.wantErr == nil {
				require.NoError(t, err)
				assert.Equal(t, tt.want, cmd)
				return
			}
			require.ErrorIs(t, err, tt.wantErr, "got %v", err)
			assert.Nil(t, cmd)
			var cerr *imap.CommandError
			if errors.Is(tt.wantErr, starttls.ErrProtocol) || errors.Is(tt.wantErr, starttls.ErrTooLarge) {
				require.ErrorAs(t, err, &cerr)
				assert.Equal(t, tt.tag, cerr.Tag, "tag")
				assert.Equal(t, tt.cmdName, cerr.Name, "name")
				assert.Equal(t, tt.close, cerr.Close, "close")
				assert.True(t, strings.HasPrefix(err.Error(), "imap: bad command: "), "message %q", err)
			} else {
				assert.False(t, errors.As(err, &cerr), "an I/O error is not a CommandError: %v", err)
			}
		})
	}
}

func TestParseCommand(t *testing.T) {
	cmd, err := imap.ParseCommand(`a1 LOGIN "demo" demo`)
	require.NoError(t, err)
	assert.Equal(t, &imap.Command{Tag: "a1", Name: "LOGIN", Args: []string{"demo", "demo"}}, cmd)

	_, err = imap.ParseCommand("a1 LOGIN {4}")
	var cerr *imap.CommandError
	require.ErrorAs(t, err, &cerr)
	assert.Equal(t, "a1", cerr.Tag)
	assert.Equal(t, "LOGIN", cerr.Name)
	require.ErrorIs(t, err, starttls.ErrProtocol)
}

func TestCapabilities(t *testing.T) {
	tests := []struct {
		name string
		opts *imap.CapabilityOptions
		want []string
	}{{
		name: "nil is before TLS",
		want: []string{"IMAP4rev1", "LITERAL-", "STARTTLS", "LOGINDISABLED"},
	}, {
		name: "before TLS, plaintext mechanisms withheld, others kept",
		opts: &imap.CapabilityOptions{Mechanisms: []string{"PLAIN", "login", "SCRAM-SHA-256"}},
		want: []string{"IMAP4rev1", "LITERAL-", "STARTTLS", "LOGINDISABLED", "AUTH=SCRAM-SHA-256"},
	}, {
		name: "after TLS",
		opts: &imap.CapabilityOptions{TLS: true, Mechanisms: []string{"PLAIN", "SCRAM-SHA-256"}},
		want: []string{"IMAP4rev1", "LITERAL-", "AUTH=PLAIN", "AUTH=SCRAM-SHA-256"},
	}, {
		name: "plaintext explicitly allowed before TLS",
		opts: &imap.CapabilityOptions{AllowPlaintextAuth: true, Mechanisms: []string{"PLAIN"}},
		want: []string{"IMAP4rev1", "LITERAL-", "STARTTLS", "AUTH=PLAIN"},
	}, {
		name: "extensions filtered: the state decides STARTTLS, LOGINDISABLED and AUTH=",
		opts: &imap.CapabilityOptions{TLS: true, Extensions: []string{
			"IDLE", "starttls", "LoginDisabled", "auth=PLAIN", "imap4rev1", "SASL-IR", "two words", "", "BAD\x00"}},
		want: []string{"IMAP4rev1", "IDLE", "SASL-IR"},
	}, {
		name: "empty extensions mean none",
		opts: &imap.CapabilityOptions{TLS: true, Extensions: []string{}},
		want: []string{"IMAP4rev1"},
	}, {
		name: "malformed mechanisms dropped",
		opts: &imap.CapabilityOptions{TLS: true, Extensions: []string{}, Mechanisms: []string{"PLAIN X", "", "A\r\nB"}},
		want: []string{"IMAP4rev1"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, imap.Capabilities(tt.opts).List())
		})
	}
}

func TestRefuseStartTLS(t *testing.T) {
	assert.Equal(t, "a1 BAD TLS already active", imap.RefuseStartTLS("a1", true))
	assert.Equal(t, "a1 BAD STARTTLS not allowed once authenticated", imap.RefuseStartTLS("a1", false))
}

// FuzzReadCommand feeds arbitrary bytes to the command reader, with
// synchronizing literals allowed and a small literal bound.
func FuzzReadCommand(f *testing.F) {
	for _, seed := range []string{
		// RFC 9051, Section 8 and 6.x examples.
		"a001 LOGIN SMITH SESAME\r\n",
		"a002 CAPABILITY\r\n",
		"a003 STARTTLS\r\n",
		"A142 SELECT INBOX\r\n",
		"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n",
		"A003 APPEND saved-messages (\\Seen) {12}\r\nHello World!\r\n",
		"A202 LIST \"\" \"%\"\r\n",
		"a AUTHENTICATE PLAIN AGRlbW8AZGVtbw==\r\n",
		"a LOGIN {4+}\r\ndemo {4+}\r\ndemo\r\n",
		"a APPEND INBOX ~{3+}\r\n\x00\x01\x02\r\n",
		"a LOGIN {99999999999999999999+}\r\n",
		"a STARTTLS\r\nb NOOP\r\n",
		"a X (a {3+}\r\nabc)\r\n",
		"* OK\r\n",
		"\r\n",
		"a \"\\",
	} {
		f.Add([]byte(seed))
	}
	const maxLiteral, maxLiterals = 64, 4
	f.Fuzz(func(t *testing.T, data []byte) {
		fc := &srvFakeConn{in: bytes.NewReader(data)}
		c := starttls.NewConn(fc, &starttls.Options{Server: true, MaxLineLength: 256})
		opts := &imap.CommandOptions{SyncLiterals: true, MaxLiteral: maxLiteral, MaxLiterals: maxLiterals}
		cmd, err := imap.ReadCommand(c, opts)
		// Only continuation requests are ever written, one per literal.
		cont := "+ Ready for literal data\r\n"
		written := fc.out.String()
		if strings.ReplaceAll(written, cont, "") != "" || strings.Count(written, cont) > maxLiterals {
			t.Fatalf("wrote %q", written)
		}
		if err != nil {
			if cmd != nil {
				t.Fatalf("command %+v with error %v", cmd, err)
			}
			var cerr *imap.CommandError
			if errors.As(err, &cerr) {
				if !errors.Is(err, starttls.ErrProtocol) && !errors.Is(err, starttls.ErrTooLarge) {
					t.Fatalf("CommandError of no kind: %v", err)
				}
				if strings.ContainsAny(cerr.Tag, " \r\n\x00+") || strings.ContainsAny(cerr.Name, " \r\n\x00") {
					t.Fatalf("bad tag or name in %+v", cerr)
				}
			}
			return
		}
		if cmd.Tag == "" || strings.ContainsAny(cmd.Tag, " \r\n\x00+(){%*\"\\") {
			t.Fatalf("bad tag %q", cmd.Tag)
		}
		if cmd.Name == "" || cmd.Name != strings.ToUpper(cmd.Name) || strings.ContainsAny(cmd.Name, " \r\n\x00") {
			t.Fatalf("bad name %q", cmd.Name)
		}
		total := 0
		for _, a := range cmd.Args {
			total += len(a)
			if len(a) > 256 && len(a) > maxLiteral {
				t.Fatalf("argument of %d bytes", len(a))
			}
		}
		if total > len(data) {
			t.Fatalf("%d argument bytes from %d input bytes", total, len(data))
		}
		// Round trip: quoting every argument that can be quoted parses back
		// to the same command.
		line := cmd.Tag + " " + cmd.Name
		for _, a := range cmd.Args {
			if strings.ContainsAny(a, "\r\n\x00") || strings.IndexFunc(a, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
				return // only a literal can carry it
			}
			line += ` "` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(a) + `"`
		}
		again, err := imap.ParseCommand(line)
		if err != nil {
			t.Fatalf("round trip of %q: %v", line, err)
		}
		if again.Tag != cmd.Tag || again.Name != cmd.Name || len(again.Args) != len(cmd.Args) {
			t.Fatalf("round trip: %+v, want %+v", again, cmd)
		}
		for i := range cmd.Args {
			if again.Args[i] != cmd.Args[i] {
				t.Fatalf("round trip: %+v, want %+v", again, cmd)
			}
		}
	})
}

func BenchmarkReadCommand(b *testing.B) {
	input := []byte("a1 LOGIN {4+}\r\ndemo \"p\\\"w\"\r\n")
	r := bytes.NewReader(input)
	fc := &srvFakeConn{in: r}
	b.ReportAllocs()
	b.SetBytes(int64(len(input)))
	for b.Loop() {
		r.Reset(input)
		c := starttls.NewConn(fc, nil)
		if _, err := imap.ReadCommand(c, nil); err != nil {
			b.Fatal(err)
		}
	}
}
