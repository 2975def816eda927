package smtp_test

import (
	"bytes"
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
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
)

// The golden transcripts in testdata/golden_postfix_*.txt were captured
// from a real Postfix by internal/realpeers (bash .ci/real-servers.sh
// --capture). These tests replay them hermetically: the server's bytes as
// Postfix sent them, against the library's client and parser.

// goldenPostfix says what each golden transcript must give.
var goldenPostfix = []struct {
	file   string
	policy starttls.Policy
	// err is the kind the upgrade fails with; nil for success.
	err error
	// keywords the capabilities must have, or not, before and after TLS
	before, notBefore []string
	after, notAfter   []string
}{
	{file: "golden_postfix_smtp_starttls.txt",
		before: []string{"STARTTLS", "PIPELINING", "SIZE"}, notBefore: []string{"AUTH"},
		after: []string{"PIPELINING", "SIZE"}, notAfter: []string{"STARTTLS", "AUTH"}},
	{file: "golden_postfix_submission_starttls.txt",
		// RFC 4954, Section 4 and smtpd_tls_auth_only: AUTH only inside TLS.
		before: []string{"STARTTLS"}, notBefore: []string{"AUTH"},
		after: []string{"AUTH"}, notAfter: []string{"STARTTLS"}},
	{file: "golden_postfix_smtps_implicit.txt",
		after: []string{"AUTH"}, notAfter: []string{"STARTTLS"}},
	{file: "golden_postfix_notls_required.txt", err: starttls.ErrNotOffered,
		notBefore: []string{"STARTTLS"}},
	{file: "golden_postfix_notls_always.txt", policy: starttls.Always, err: starttls.ErrRefused,
		notBefore: []string{"STARTTLS"}},
}

// goldenScript is a golden transcript read back: the script for
// scripttest, and what the server said, split at the handshake.
type goldenScript struct {
	script   string
	implicit bool     // the handshake comes first
	tls      bool     // there is a handshake
	lines    []string // the server's lines, in order, without CRLF
	// before and after are the server's lines before and after !tls.
	before, after []string
}

// readGolden reads testdata/name.
func readGolden(t *testing.T, name string) goldenScript {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	g := goldenScript{script: string(data)}
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

// ehloKeywords returns the keyword lines of the first 250 multi-line reply
// in lines (the EHLO reply), without its domain line: what the upgrade
// must report as capabilities, worked out without the library's parser.
func ehloKeywords(lines []string) []string {
	var out []string
	in := false
	for _, l := range lines {
		switch {
		case !in && strings.HasPrefix(l, "250-"):
			in = true // the domain line
		case in && len(l) >= 4:
			out = append(out, l[4:])
			if l[3] == ' ' {
				return out
			}
		}
	}
	return out
}

// TestGoldenPostfix replays each golden transcript against smtp.Upgrade.
func TestGoldenPostfix(t *testing.T) {
	pki := scripttest.NewPKI(t)
	for _, tt := range goldenPostfix {
		t.Run(tt.file, func(t *testing.T) {
			g := readGolden(t, tt.file)
			conn, peer := scripttest.Pipe(t, g.script, &scripttest.Options{TLSConfig: pki.Server()})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			mode := starttls.StartTLS
			if g.implicit {
				mode = starttls.Implicit
			}
			tc, res, err := smtp.Upgrade(ctx, conn, &smtp.Options{
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

			greeting := g.lines[0]
			assert.Equal(t, greeting[4:], res.Greeting)
			if g.implicit {
				assert.Nil(t, res.Before)
			} else {
				assert.Equal(t, ehloKeywords(g.before), res.Before.List(), "capabilities before TLS")
				for _, k := range tt.before {
					assert.True(t, res.Before.Has(k), "before TLS: want %s in %v", k, res.Before.List())
				}
				for _, k := range tt.notBefore {
					assert.False(t, res.Before.Has(k), "before TLS: want no %s in %v", k, res.Before.List())
				}
			}
			if tt.err == nil {
				assert.Equal(t, ehloKeywords(g.after), res.After.List(), "capabilities after TLS")
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

// TestGoldenPostfixReplies feeds every reply of every golden transcript,
// back to back, to smtp.ReadReply: each parses, with one code throughout,
// and together they account for every line Postfix sent.
func TestGoldenPostfixReplies(t *testing.T) {
	for _, tt := range goldenPostfix {
		t.Run(tt.file, func(t *testing.T) {
			g := readGolden(t, tt.file)
			var wire bytes.Buffer
			for _, l := range g.lines {
				wire.WriteString(l + "\r\n")
			}
			client, server := net.Pipe()
			defer client.Close()
			go func() {
				defer server.Close()
				server.SetWriteDeadline(time.Now().Add(5 * time.Second))
				server.Write(wire.Bytes())
			}()
			client.SetReadDeadline(time.Now().Add(5 * time.Second))
			c := starttls.NewConn(client, nil)
			lines := 0
			for lines < len(g.lines) {
				r, err := smtp.ReadReply(c)
				require.NoError(t, err, "after %d lines", lines)
				assert.GreaterOrEqual(t, r.Code, 200)
				assert.Less(t, r.Code, 600)
				for i, text := range r.Lines {
					assert.Equal(t, g.lines[lines+i][4:], text)
					assert.Equal(t, strconv.Itoa(r.Code), g.lines[lines+i][:3])
				}
				lines += len(r.Lines)
			}
			assert.Equal(t, len(g.lines), lines)
		})
	}
}

// TestGoldenPostfixFiles keeps the table and testdata in step: a new
// capture must come with its expectations.
func TestGoldenPostfixFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "golden_*"))
	require.NoError(t, err)
	var want []string
	for _, tt := range goldenPostfix {
		want = append(want, filepath.Join("testdata", tt.file))
	}
	assert.ElementsMatch(t, want, files)
}
