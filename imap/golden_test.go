package imap_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/imap"
	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
)

// The golden transcripts in testdata/golden_dovecot_*.txt were captured
// from a real Dovecot by internal/realpeers (bash .ci/real-servers.sh
// --capture); the random tags of the client became {t1}, {t2}, ... These
// tests replay them hermetically against the library's client and parser.

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
	{file: "golden_dovecot_imap_starttls.txt",
		// RFC 9051, Section 6.2.3: LOGINDISABLED until TLS.
		before: []string{"IMAP4rev1", "STARTTLS", "LOGINDISABLED"}, notBefore: []string{"AUTH=PLAIN"},
		after: []string{"IMAP4rev1", "AUTH=PLAIN"}, notAfter: []string{"STARTTLS", "LOGINDISABLED"}},
	{file: "golden_dovecot_imaps_implicit.txt",
		after: []string{"IMAP4rev1", "AUTH=PLAIN"}, notAfter: []string{"STARTTLS", "LOGINDISABLED"}},
	{file: "golden_dovecot_imap_notls_required.txt", err: starttls.ErrNotOffered,
		before: []string{"LOGINDISABLED"}, notBefore: []string{"STARTTLS"}},
	{file: "golden_dovecot_imap_notls_always.txt", policy: starttls.Always, err: starttls.ErrRefused,
		before: []string{"LOGINDISABLED"}, notBefore: []string{"STARTTLS"}},
}

// goldenTranscript is a golden transcript read back: the script for
// scripttest, and what the server said, split at the handshake.
type goldenTranscript struct {
	script   string
	implicit bool     // the handshake comes first
	tls      bool     // there is a handshake
	lines    []string // the server's lines in order, tags made concrete
	// before and after are the server's lines before and after !tls.
	before, after []string
}

var goldenTag = regexp.MustCompile(`^\{(t[0-9]+)\}`)

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
			text = goldenTag.ReplaceAllString(text, "$1")
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

// goldenCapabilities returns the capability atoms of the first CAPABILITY
// response or [CAPABILITY ...] code in lines, worked out without the
// library's parser.
func goldenCapabilities(lines []string) []string {
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "* CAPABILITY "); ok {
			return strings.Fields(rest)
		}
		if _, rest, ok := strings.Cut(l, "[CAPABILITY "); ok {
			list, _, _ := strings.Cut(rest, "]")
			return strings.Fields(list)
		}
	}
	return nil
}

// TestGoldenDovecot replays each golden transcript against imap.Upgrade.
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
			tc, res, err := imap.Upgrade(ctx, conn, &imap.Options{
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

			greeting, ok := strings.CutPrefix(g.lines[0], "* OK ")
			require.True(t, ok, "greeting %q", g.lines[0])
			assert.Equal(t, greeting, res.Greeting)
			if g.implicit {
				assert.Nil(t, res.Before)
			} else {
				assert.Equal(t, goldenCapabilities(g.before), res.Before.List(), "capabilities before TLS")
				for _, k := range tt.before {
					assert.True(t, res.Before.Has(k), "before TLS: want %s in %v", k, res.Before.List())
				}
				for _, k := range tt.notBefore {
					assert.False(t, res.Before.Has(k), "before TLS: want no %s in %v", k, res.Before.List())
				}
			}
			if tt.err == nil {
				// After TLS the list comes from the CAPABILITY command,
				// never from the greeting's code (in implicit mode both
				// are inside TLS; the command's answer wins).
				var afterCaps []string
				for _, l := range g.after {
					if rest, ok := strings.CutPrefix(l, "* CAPABILITY "); ok {
						afterCaps = strings.Fields(rest)
					}
				}
				assert.Equal(t, afterCaps, res.After.List(), "capabilities after TLS")
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

// TestGoldenDovecotResponses feeds every line Dovecot sent, back to back,
// to imap.ReadResponses: each is one well-formed response, untagged or
// completing one of the client's tags.
func TestGoldenDovecotResponses(t *testing.T) {
	for _, tt := range goldenDovecot {
		t.Run(tt.file, func(t *testing.T) {
			g := readGoldenTranscript(t, tt.file)
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
			var got []*imap.Response
			err := imap.ReadResponses(c, 0, func(r *imap.Response) (bool, error) {
				got = append(got, r)
				return len(got) < len(g.lines), nil
			})
			require.NoError(t, err)
			require.Len(t, got, len(g.lines))
			for i, r := range got {
				switch {
				case r.Tag == "*" && r.Status != "":
					assert.Contains(t, []string{"OK", "PREAUTH", "BYE", "NO", "BAD"}, r.Status, "line %q", g.lines[i])
				case r.Tag == "*":
					assert.Equal(t, "CAPABILITY", r.Name, "line %q", g.lines[i])
					caps, err := imap.ParseCapabilities(r.Args)
					require.NoError(t, err)
					assert.Equal(t, strings.Fields(r.Args), caps.List())
				default:
					assert.Regexp(t, `^t[0-9]+$`, r.Tag, "line %q", g.lines[i])
					assert.Contains(t, []string{"OK", "NO", "BAD"}, r.Status, "line %q", g.lines[i])
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
