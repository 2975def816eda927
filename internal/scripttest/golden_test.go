package scripttest_test

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
)

// TestLoadGolden reads golden transcripts back: server lines split at the
// handshake, quoted lines unquoted, IMAP tag placeholders made concrete,
// the client line before each server line.
func TestLoadGolden(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   scripttest.Golden
	}{{
		name:   "starttls",
		script: "# comment\n\nS: 220 mx ESMTP\nC: EHLO localhost\nS: 250 mx\nC: STARTTLS\nS: 220 go\n!tls\nC: EHLO localhost\nS: \"250  spaced \\r\\n\"\n",
		want: scripttest.Golden{
			TLS:      true,
			Lines:    []string{"220 mx ESMTP", "250 mx", "220 go", "250  spaced "},
			Commands: []string{"", "EHLO localhost", "STARTTLS", "EHLO localhost"},
			Before:   []string{"220 mx ESMTP", "250 mx", "220 go"},
			After:    []string{"250  spaced "},
		},
	}, {
		name:   "implicit with tags",
		script: "!tls\nS: * OK ready\nC: {t1} CAPABILITY\nS: * CAPABILITY IMAP4rev1\nS: {t1} OK done\n",
		want: scripttest.Golden{
			TLS: true, Implicit: true,
			Lines:    []string{"* OK ready", "* CAPABILITY IMAP4rev1", "t1 OK done"},
			Commands: []string{"", "{t1} CAPABILITY", ""},
			After:    []string{"* OK ready", "* CAPABILITY IMAP4rev1", "t1 OK done"},
		},
	}, {
		name:   "no tls",
		script: "S: +OK hi\nC: CAPA\nS: +OK\nS: USER\nS: .\n",
		want: scripttest.Golden{
			Lines:    []string{"+OK hi", "+OK", "USER", "."},
			Commands: []string{"", "CAPA", "", ""},
			Before:   []string{"+OK hi", "+OK", "USER", "."},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "golden.txt")
			require.NoError(t, os.WriteFile(path, []byte(tt.script), 0o644))
			got := scripttest.LoadGolden(t, path)
			tt.want.Script = tt.script
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestGoldenWireAndFeed: the server's lines come back from Feed as they
// were sent, CRLF-terminated, then EOF.
func TestGoldenWireAndFeed(t *testing.T) {
	g := scripttest.Golden{Lines: []string{"220 mx", "250 ok"}}
	assert.Equal(t, "220 mx\r\n250 ok\r\n", string(g.Wire()))
	got, err := io.ReadAll(scripttest.Feed(t, g.Wire()))
	require.NoError(t, err)
	assert.Equal(t, "220 mx\r\n250 ok\r\n", string(got))
}

// TestLoadGoldenRejects: a golden script holds only S:, C:, !tls and
// comments; a bad quoted line or another directive fails the test.
func TestLoadGoldenRejects(t *testing.T) {
	for _, script := range []string{"S: 220 mx\n!sleep 1s\n", "S+ 250 x\n", "S: \"unterminated\n"} {
		path := filepath.Join(t.TempDir(), "golden.txt")
		require.NoError(t, os.WriteFile(path, []byte(script), 0o644))
		ft := &failTB{TB: t}
		done := make(chan struct{})
		go func() { // LoadGolden ends a failing test with runtime.Goexit
			defer close(done)
			scripttest.LoadGolden(ft, path)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("LoadGolden did not return")
		}
		assert.True(t, ft.failed, "script %q must fail", script)
	}
}

// failTB records a failure instead of failing the real test.
type failTB struct {
	testing.TB
	failed bool
}

func (f *failTB) Helper()               {}
func (f *failTB) Errorf(string, ...any) { f.failed = true }
func (f *failTB) Fatalf(string, ...any) { f.failed = true; runtime.Goexit() }
func (f *failTB) FailNow()              { f.failed = true; runtime.Goexit() }
