package scripttest

import (
	"context"
	"crypto/tls"
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

	"github.com/tlsup/tlsup/starttls"
)

// This file holds what the protocol packages' golden_test.go share: golden
// transcripts are scripts captured from real servers by internal/realpeers
// (bash .ci/real-servers.sh --capture) and replayed hermetically. A golden
// script holds only S: and C: lines, comments and at most one !tls.

// Golden is a golden transcript read back by [LoadGolden]: the script for
// the peer, and what the server said, split at the handshake.
type Golden struct {
	// Script is the file as read, for [Pipe] or [TCP].
	Script string
	// Implicit: the handshake comes before any line.
	Implicit bool
	// TLS: the script has a handshake.
	TLS bool
	// Lines are the server's lines in order, without CRLF; a leading
	// {name} placeholder (an IMAP tag) is made concrete as name.
	Lines []string
	// Commands holds, for each of Lines, the client line sent just before
	// it since the previous server line, or "".
	Commands []string
	// Before and After are the server's lines before and after !tls.
	Before, After []string
}

var goldenTag = regexp.MustCompile(`^\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// LoadGolden reads and checks the golden transcript at path. It fails the
// test on a line that is not a comment, !tls, "S: " or "C: ".
func LoadGolden(t testing.TB, path string) Golden {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	g := Golden{Script: string(data)}
	seen := false
	command := ""
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case line == "!tls":
			g.TLS = true
			g.Implicit = !seen
		case strings.HasPrefix(line, "S: "):
			seen = true
			text := strings.TrimPrefix(line, "S: ")
			if strings.HasPrefix(text, `"`) {
				raw, err := strconv.Unquote(text)
				require.NoError(t, err, "%s: %s", path, line)
				text = strings.TrimSuffix(raw, "\r\n")
			}
			text = goldenTag.ReplaceAllString(text, "$1")
			g.Lines = append(g.Lines, text)
			g.Commands = append(g.Commands, command)
			command = ""
			if g.TLS {
				g.After = append(g.After, text)
			} else {
				g.Before = append(g.Before, text)
			}
		case strings.HasPrefix(line, "C: "):
			seen = true
			command = strings.TrimPrefix(line, "C: ")
		default:
			t.Fatalf("%s: unexpected line %q", path, line)
		}
	}
	return g
}

// Wire is what the server sent, every line with its CRLF, back to back
// (the handshake left out).
func (g Golden) Wire() []byte {
	var b strings.Builder
	for _, l := range g.Lines {
		b.WriteString(l + "\r\n")
	}
	return []byte(b.String())
}

// Feed returns one end of a net.Pipe whose other end writes data in one
// write and closes. Reads and the write are bounded by 5 seconds; cleanup
// closes the conn and waits for the writer.
func Feed(t testing.TB, data []byte) net.Conn {
	t.Helper()
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer server.Close()
		server.SetWriteDeadline(time.Now().Add(5 * time.Second))
		server.Write(data)
	}()
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	t.Cleanup(func() {
		client.Close()
		<-done
	})
	return client
}

// GoldenCase says what replaying one golden transcript must give.
type GoldenCase struct {
	// File is the transcript's name in testdata.
	File string
	// Policy is the client's policy for the replay.
	Policy starttls.Policy
	// Err is the sentinel the upgrade fails with; nil for success.
	Err error
	// Before and NotBefore are keywords the capabilities before TLS must
	// have, and must not have.
	Before, NotBefore []string
	// After and NotAfter are keywords the capabilities discovered inside
	// TLS must have, and must not have.
	After, NotAfter []string
}

// Load reads testdata/File.
func (c GoldenCase) Load(t testing.TB) Golden {
	t.Helper()
	return LoadGolden(t, filepath.Join("testdata", c.File))
}

// FeedGolden runs one subtest per case, named by its file: check gets the
// transcript and a Conn that reads what the server sent, back to back
// ([Golden.Wire] through [Feed]), for the protocol's parser.
func FeedGolden(t *testing.T, cases []GoldenCase, check func(t *testing.T, g Golden, c *starttls.Conn)) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.File, func(t *testing.T) {
			g := tt.Load(t)
			check(t, g, starttls.NewConn(Feed(t, g.Wire()), nil))
		})
	}
}

// GoldenClient is what a protocol gives [ReplayGolden].
type GoldenClient struct {
	// Upgrade runs the protocol's client Upgrade with these settings.
	Upgrade func(ctx context.Context, conn net.Conn, cfg *tls.Config, policy starttls.Policy, mode starttls.Mode) (*tls.Conn, *starttls.Result, error)
	// Greeting is what the server's first line starts with ("* OK "):
	// Result.Greeting must hold the rest.
	Greeting string
	// Before and After return the capability list the upgrade must report
	// before and after TLS, worked out without the library's parser.
	Before, After func(g Golden) []string
}

// ReplayGolden runs one subtest per case, named by its file: it replays
// testdata/File against client.Upgrade through a [Pipe] peer, which checks
// that the client says exactly what the real one said, and checks the
// Result against the transcript and the case.
func ReplayGolden(t *testing.T, client GoldenClient, cases []GoldenCase) {
	t.Helper()
	pki := NewPKI(t)
	for _, tt := range cases {
		t.Run(tt.File, func(t *testing.T) {
			g := tt.Load(t)
			conn, peer := Pipe(t, g.Script, &Options{TLSConfig: pki.Server()})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			mode := starttls.StartTLS
			if g.Implicit {
				mode = starttls.Implicit
			}
			tc, res, err := client.Upgrade(ctx, conn, pki.Client(TestName), tt.Policy, mode)
			if tc != nil {
				defer tc.Close()
			}
			if tt.Err != nil {
				require.ErrorIs(t, err, tt.Err)
				assert.False(t, res.TLS)
			} else {
				require.NoError(t, err)
				assert.True(t, res.TLS)
			}
			require.NoError(t, peer.Wait(), "the client must say exactly what the real one said")

			require.NotEmpty(t, g.Lines, "no server line")
			greeting, ok := strings.CutPrefix(g.Lines[0], client.Greeting)
			require.True(t, ok, "greeting %q", g.Lines[0])
			assert.Equal(t, greeting, res.Greeting)
			if g.Implicit {
				assert.Nil(t, res.Before)
			} else {
				assert.Equal(t, client.Before(g), res.Before.List(), "capabilities before TLS")
				CheckKeywords(t, "before TLS", res.Before, tt.Before, tt.NotBefore)
			}
			if tt.Err == nil {
				assert.Equal(t, client.After(g), res.After.List(), "capabilities after TLS")
				CheckKeywords(t, "after TLS", res.After, tt.After, tt.NotAfter)
			}
		})
	}
}

// CheckKeywords asserts that caps has every keyword of has and none of
// lacks; what says which set it is in the failures.
func CheckKeywords(t testing.TB, what string, caps *starttls.Capabilities, has, lacks []string) {
	t.Helper()
	for _, k := range has {
		assert.True(t, caps.Has(k), "%s: want %s in %v", what, k, caps.List())
	}
	for _, k := range lacks {
		assert.False(t, caps.Has(k), "%s: want no %s in %v", what, k, caps.List())
	}
}

// CheckGoldenFiles keeps a table of cases and testdata/golden_* in step: a
// new capture must come with its expectations.
func CheckGoldenFiles(t testing.TB, cases []GoldenCase) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "golden_*"))
	require.NoError(t, err)
	var want []string
	for _, tt := range cases {
		want = append(want, filepath.Join("testdata", tt.File))
	}
	assert.ElementsMatch(t, want, files)
}
