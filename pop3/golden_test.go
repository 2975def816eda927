package pop3_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/pop3"
	"github.com/tlsup/tlsup/starttls"
)

// The golden transcripts in testdata/golden_dovecot_*.txt were captured
// from a real Dovecot by internal/realpeers (bash .ci/real-servers.sh
// --capture). These tests replay them hermetically against the library's
// client and parser.

// goldenDovecot says what each golden transcript must give.
var goldenDovecot = []struct {
	file   string
	policy starttls.Policy
	// err is the kind the upgrade fails with; nil for success.
	err error
	// keywords the capabilities must have, or not, before and after TLS
	before, notBefore []string
	after, notAfter   []string
}{
	{file: "golden_dovecot_pop3_stls.txt",
		// disable_plaintext_auth: neither USER nor a SASL mechanism
		// before TLS (RFC 2595, Section 4 for STLS).
		before: []string{"STLS", "UIDL", "SASL"}, notBefore: []string{"USER"},
		after: []string{"USER", "SASL", "UIDL"}, notAfter: []string{"STLS"}},
	{file: "golden_dovecot_pop3s_implicit.txt",
		after: []string{"USER", "SASL"}, notAfter: []string{"STLS"}},
	{file: "golden_dovecot_pop3_notls_required.txt", err: starttls.ErrNotOffered,
		notBefore: []string{"STLS", "USER"}},
	{file: "golden_dovecot_pop3_notls_always.txt", policy: starttls.Always, err: starttls.ErrRefused,
		notBefore: []string{"STLS", "USER"}},
}

// goldenTranscript is a golden transcript read back: the script for
// scripttest, and what the server said, split at the handshake.
type goldenTranscript struct {
	script   string
	implicit bool     // the handshake comes first
	tls      bool     // there is a handshake
	lines    []string // the server's lines in order, without CRLF
	// before and after are the server's lines before and after !tls.
	before, after []string
}

// readGoldenTranscript reads testdata/name.
func readGoldenTranscript(t *testing.T, name string) goldenTranscript {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	g := goldenTranscript{script: string(data)}
	seen := false
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case line == "!tls":
			g.tls = true
			g.implicit = !seen
		case strings.HasPrefix(line, "S: "):
			seen = true
			text := strings.TrimPrefix(line, "S: ")
			if strings.HasPrefix(text, `"`) {
				raw, err := strconv.Unquote(text)
				require.NoError(t, err, "%s: %s", name, line)
				text = strings.TrimSuffix(raw, "\r\n")
			}
			g.lines = append(g.lines, text)
			if g.tls {
				g.after = append(g.after, text)
			} else {
				g.before = append(g.before, text)
			}
		case strings.HasPrefix(line, "C: "):
			seen = true
		default:
			t.Fatalf("%s: unexpected line %q", name, line)
		}
	}
	return g
}

// goldenCapa returns the lines of the first CAPA reply in lines (between
// the "+OK" after the greeting and the "."), worked out without the
// library's parser. Dovecot stuffs nothing there.
func goldenCapa(lines []string) []string {
	var out []string
	in := false
	for i, l := range lines {
		switch {
		case !in && i > 0 && strings.HasPrefix(l, "+OK"):
			in = true
		case in && l == ".":
			return out
		case in:
			out = append(out, l)
		}
	}
	return out
}

// TestGoldenDovecot replays each golden transcript against pop3.Upgrade.
func TestGoldenDovecot(t *testing.T) {
	pki := scripttest.NewPKI(t)
	for _, tt := range goldenDovecot {
		t.Run(tt.file, func(t *testing.T) {
			g := readGoldenTranscript(t, tt.file)
			conn, peer := scripttest.Pipe(t, g.script, &scripttest.Options{TLSConfig: pki.Server()})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			mode := starttls.StartTLS
			if g.implicit {
				mode = starttls.Implicit
			}
			tc, res, err := pop3.Upgrade(ctx, conn, &pop3.Options{
				TLSConfig: pki.Client(scripttest.TestName), Policy: tt.policy, Mode: mode,
			})
			if tc != nil {
				defer tc.Close()
			}
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				assert.False(t, res.TLS)
			} else {
				require.NoError(t, err)
				assert.True(t, res.TLS)
			}
			require.NoError(t, peer.Wait(), "the client must say exactly what the real one said")

			greeting, ok := strings.CutPrefix(g.lines[0], "+OK ")
			require.True(t, ok, "greeting %q", g.lines[0])
			assert.Equal(t, greeting, res.Greeting)
			if g.implicit {
				assert.Nil(t, res.Before)
			} else {
				assert.Equal(t, goldenCapa(g.before), res.Before.List(), "capabilities before TLS")
				for _, k := range tt.before {
					assert.True(t, res.Before.Has(k), "before TLS: want %s in %v", k, res.Before.List())
				}
				for _, k := range tt.notBefore {
					assert.False(t, res.Before.Has(k), "before TLS: want no %s in %v", k, res.Before.List())
				}
			}
			if tt.err == nil {
				// The CAPA reply inside TLS; in implicit mode the
				// greeting comes first, so skip it in both cases.
				after := g.after
				if !g.implicit {
					after = append([]string{"(greeting)"}, after...)
				}
				assert.Equal(t, goldenCapa(after), res.After.List(), "capabilities after TLS")
				for _, k := range tt.after {
					assert.True(t, res.After.Has(k), "after TLS: want %s in %v", k, res.After.List())
				}
				for _, k := range tt.notAfter {
					assert.False(t, res.After.Has(k), "after TLS: want no %s in %v", k, res.After.List())
				}
			}
		})
	}
}

// TestGoldenDovecotResponses feeds everything Dovecot sent, back to back,
// to pop3.ReadResponse and pop3.ReadMultiline: status lines where a status
// line is due, the CAPA bodies after each "+OK" that answered CAPA.
func TestGoldenDovecotResponses(t *testing.T) {
	for _, tt := range goldenDovecot {
		t.Run(tt.file, func(t *testing.T) {
			g := readGoldenTranscript(t, tt.file)
			// Which status lines open a multi-line body: the "+OK" that
			// answers a CAPA, read from the script's C: lines.
			var multi []bool
			lastCommand := ""
			for _, line := range strings.Split(g.script, "\n") {
				line = strings.TrimSpace(line)
				if c, ok := strings.CutPrefix(line, "C: "); ok {
					lastCommand = c
				}
				if _, ok := strings.CutPrefix(line, "S: "); ok {
					multi = append(multi, lastCommand == "CAPA")
					lastCommand = ""
				}
			}
			var wire strings.Builder
			for _, l := range g.lines {
				wire.WriteString(l + "\r\n")
			}
			client, server := net.Pipe()
			defer client.Close()
			go func() {
				defer server.Close()
				server.SetWriteDeadline(time.Now().Add(5 * time.Second))
				server.Write([]byte(wire.String()))
			}()
			client.SetReadDeadline(time.Now().Add(5 * time.Second))
			c := starttls.NewConn(client, nil)
			for i := 0; i < len(g.lines); {
				r, err := pop3.ReadResponse(c)
				require.NoError(t, err, "line %q", g.lines[i])
				assert.Equal(t, strings.HasPrefix(g.lines[i], "+OK"), r.OK, "line %q", g.lines[i])
				i++
				if r.OK && multi[i-1] {
					body, err := pop3.ReadMultiline(c)
					require.NoError(t, err)
					require.LessOrEqual(t, i+len(body)+1, len(g.lines))
					assert.Equal(t, g.lines[i:i+len(body)], body)
					i += len(body) + 1 // the "."
				}
			}
		})
	}
}

// TestGoldenDovecotFiles keeps the table and testdata in step: a new
// capture must come with its expectations.
func TestGoldenDovecotFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "golden_*"))
	require.NoError(t, err)
	var want []string
	for _, tt := range goldenDovecot {
		want = append(want, filepath.Join("testdata", tt.file))
	}
	assert.ElementsMatch(t, want, files)
}
