package sieve

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
)

// The golden transcripts in testdata/golden_dovecot_sieve_*.txt were
// captured from a real Dovecot ManageSieve (Pigeonhole) by
// internal/realpeers/lineproto (bash .ci/real-lineproto.sh --capture).
// These tests replay them hermetically: the server's bytes as Dovecot sent
// them, against the package's client and parser.

var goldenDovecot = []scripttest.GoldenCase{
	{File: "golden_dovecot_sieve_starttls.txt",
		Before: []string{"IMPLEMENTATION", "SIEVE", "STARTTLS", "SASL"},
		After:  []string{"IMPLEMENTATION", "SIEVE", "SASL"}, NotAfter: []string{"STARTTLS"}},
	{File: "golden_dovecot_sieve_notls_required.txt", Err: starttls.ErrNotOffered, NotBefore: []string{"STARTTLS"}},
	{File: "golden_dovecot_sieve_notls_always.txt", Policy: starttls.Always, Err: starttls.ErrRefused,
		NotBefore: []string{"STARTTLS"}},
}

var quotedString = regexp.MustCompile(`"([^"\\]*)"`)

// goldenCapabilities returns the capability lines before the first OK in
// lines, as entries, worked out with a regular expression rather than the
// package's parser (Dovecot sends neither escapes nor literals).
func goldenCapabilities(lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, "OK") || strings.HasPrefix(l, "NO") || strings.HasPrefix(l, "BYE") {
			return out
		}
		m := quotedString.FindAllStringSubmatch(l, -1)
		entry := m[0][1]
		if len(m) > 1 && m[1][1] != "" {
			entry += " " + m[1][1]
		}
		out = append(out, entry)
	}
	return nil
}

// TestGoldenDovecot replays each transcript against Upgrade: the client
// says exactly what it said to Dovecot, and the Result matches the
// transcript. (scripttest.ReplayGolden expects the greeting to be the
// first line's text; here it is the IMPLEMENTATION value.)
func TestGoldenDovecot(t *testing.T) {
	pki := scripttest.NewPKI(t)
	for _, tt := range goldenDovecot {
		t.Run(tt.File, func(t *testing.T) {
			g := tt.Load(t)
			require.False(t, g.Implicit)
			conn, peer := scripttest.Pipe(t, g.Script, &scripttest.Options{TLSConfig: pki.Server()})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			tc, res, err := Upgrade(ctx, conn, &Options{TLSConfig: pki.Client(scripttest.TestName), Policy: tt.Policy})
			if tc != nil {
				defer tc.Close()
			}
			if tt.Err != nil {
				require.ErrorIs(t, err, tt.Err)
				assert.False(t, res.TLS)
			} else {
				require.NoError(t, err)
				assert.True(t, res.TLS)
				assert.Equal(t, goldenCapabilities(g.After), res.After.List(), "capabilities after TLS")
				scripttest.CheckKeywords(t, "after TLS", res.After, tt.After, tt.NotAfter)
			}
			require.NoError(t, peer.Wait(), "the client must say exactly what the real one said")
			assert.Equal(t, "Dovecot (Debian) Pigeonhole", res.Greeting)
			assert.Equal(t, goldenCapabilities(g.Before), res.Before.List(), "capabilities before TLS")
			scripttest.CheckKeywords(t, "before TLS", res.Before, tt.Before, tt.NotBefore)
		})
	}
}

// TestGoldenDovecotResponses feeds everything Dovecot sent, back to back,
// to the response reader: every response parses, and together they
// account for every line.
func TestGoldenDovecotResponses(t *testing.T) {
	scripttest.FeedGolden(t, goldenDovecot, func(t *testing.T, g scripttest.Golden, c *starttls.Conn) {
		lines := 0
		for lines < len(g.Lines) {
			r, err := readResponse(c, true)
			require.NoError(t, err, "after %d lines", lines)
			assert.Equal(t, goldenCapabilities(g.Lines[lines:]), nilIfEmpty(r.caps))
			lines += len(r.caps) + 1
		}
		assert.Equal(t, len(g.Lines), lines)
	})
}

func nilIfEmpty(list []string) []string {
	if len(list) == 0 {
		return nil
	}
	return list
}

// TestGoldenDovecotFiles keeps the table and testdata in step.
func TestGoldenDovecotFiles(t *testing.T) {
	scripttest.CheckGoldenFiles(t, goldenDovecot)
}
