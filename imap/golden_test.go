package imap_test

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"

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
var goldenDovecot = []scripttest.GoldenCase{
	{File: "golden_dovecot_imap_starttls.txt",
		// RFC 9051, Section 6.2.3: LOGINDISABLED until TLS.
		Before: []string{"IMAP4rev1", "STARTTLS", "LOGINDISABLED"}, NotBefore: []string{"AUTH=PLAIN"},
		After: []string{"IMAP4rev1", "AUTH=PLAIN"}, NotAfter: []string{"STARTTLS", "LOGINDISABLED"}},
	{File: "golden_dovecot_imaps_implicit.txt",
		After: []string{"IMAP4rev1", "AUTH=PLAIN"}, NotAfter: []string{"STARTTLS", "LOGINDISABLED"}},
	{File: "golden_dovecot_imap_notls_required.txt", Err: starttls.ErrNotOffered,
		Before: []string{"LOGINDISABLED"}, NotBefore: []string{"STARTTLS"}},
	{File: "golden_dovecot_imap_notls_always.txt", Policy: starttls.Always, Err: starttls.ErrRefused,
		Before: []string{"LOGINDISABLED"}, NotBefore: []string{"STARTTLS"}},
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

// goldenClient is imap.Upgrade and what its Result must say, for
// scripttest.ReplayGolden.
var goldenClient = scripttest.GoldenClient{
	Upgrade: func(ctx context.Context, conn net.Conn, cfg *tls.Config, policy starttls.Policy, mode starttls.Mode) (*tls.Conn, *starttls.Result, error) {
		return imap.Upgrade(ctx, conn, &imap.Options{TLSConfig: cfg, Policy: policy, Mode: mode})
	},
	Greeting: "* OK ",
	Before:   func(g scripttest.Golden) []string { return goldenCapabilities(g.Before) },
	// After TLS the list comes from the CAPABILITY command, never from the
	// greeting's code (in implicit mode both are inside TLS; the command's
	// answer wins).
	After: func(g scripttest.Golden) []string {
		var afterCaps []string
		for _, l := range g.After {
			if rest, ok := strings.CutPrefix(l, "* CAPABILITY "); ok {
				afterCaps = strings.Fields(rest)
			}
		}
		return afterCaps
	},
}

// TestGoldenDovecot replays each golden transcript against imap.Upgrade.
func TestGoldenDovecot(t *testing.T) {
	scripttest.ReplayGolden(t, goldenClient, goldenDovecot)
}

// TestGoldenDovecotResponses feeds every line Dovecot sent, back to back,
// to imap.ReadResponses: each is one well-formed response, untagged or
// completing one of the client's tags.
func TestGoldenDovecotResponses(t *testing.T) {
	scripttest.FeedGolden(t, goldenDovecot, func(t *testing.T, g scripttest.Golden, c *starttls.Conn) {
		var got []*imap.Response
		err := imap.ReadResponses(c, 0, func(r *imap.Response) (bool, error) {
			got = append(got, r)
			return len(got) < len(g.Lines), nil
		})
		require.NoError(t, err)
		require.Len(t, got, len(g.Lines))
		for i, r := range got {
			switch {
			case r.Tag == "*" && r.Status != "":
				assert.Contains(t, []string{"OK", "PREAUTH", "BYE", "NO", "BAD"}, r.Status, "line %q", g.Lines[i])
			case r.Tag == "*":
				assert.Equal(t, "CAPABILITY", r.Name, "line %q", g.Lines[i])
				caps, err := imap.ParseCapabilities(r.Args)
				require.NoError(t, err)
				assert.Equal(t, strings.Fields(r.Args), caps.List())
			default:
				assert.Regexp(t, `^t[0-9]+$`, r.Tag, "line %q", g.Lines[i])
				assert.Contains(t, []string{"OK", "NO", "BAD"}, r.Status, "line %q", g.Lines[i])
			}
		}
	})
}

// TestGoldenDovecotFiles keeps the table and testdata in step: a new
// capture must come with its expectations.
func TestGoldenDovecotFiles(t *testing.T) {
	scripttest.CheckGoldenFiles(t, goldenDovecot)
}
