package smtp_test

import (
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"testing"

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
var goldenPostfix = []scripttest.GoldenCase{
	{File: "golden_postfix_smtp_starttls.txt",
		Before: []string{"STARTTLS", "PIPELINING", "SIZE"}, NotBefore: []string{"AUTH"},
		After: []string{"PIPELINING", "SIZE"}, NotAfter: []string{"STARTTLS", "AUTH"}},
	{File: "golden_postfix_submission_starttls.txt",
		// RFC 4954, Section 4 and smtpd_tls_auth_only: AUTH only inside TLS.
		Before: []string{"STARTTLS"}, NotBefore: []string{"AUTH"},
		After: []string{"AUTH"}, NotAfter: []string{"STARTTLS"}},
	{File: "golden_postfix_smtps_implicit.txt",
		After: []string{"AUTH"}, NotAfter: []string{"STARTTLS"}},
	{File: "golden_postfix_notls_required.txt", Err: starttls.ErrNotOffered,
		NotBefore: []string{"STARTTLS"}},
	{File: "golden_postfix_notls_always.txt", Policy: starttls.Always, Err: starttls.ErrRefused,
		NotBefore: []string{"STARTTLS"}},
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

// goldenClient is smtp.Upgrade and what its Result must say, for
// scripttest.ReplayGolden.
var goldenClient = scripttest.GoldenClient{
	Upgrade: func(ctx context.Context, conn net.Conn, cfg *tls.Config, policy starttls.Policy, mode starttls.Mode) (*tls.Conn, *starttls.Result, error) {
		return smtp.Upgrade(ctx, conn, &smtp.Options{TLSConfig: cfg, Policy: policy, Mode: mode})
	},
	Greeting: "220 ",
	Before:   func(g scripttest.Golden) []string { return ehloKeywords(g.Before) },
	After:    func(g scripttest.Golden) []string { return ehloKeywords(g.After) },
}

// TestGoldenPostfix replays each golden transcript against smtp.Upgrade.
func TestGoldenPostfix(t *testing.T) {
	scripttest.ReplayGolden(t, goldenClient, goldenPostfix)
}

// TestGoldenPostfixReplies feeds every reply of every golden transcript,
// back to back, to smtp.ReadReply: each parses, with one code throughout,
// and together they account for every line Postfix sent.
func TestGoldenPostfixReplies(t *testing.T) {
	scripttest.FeedGolden(t, goldenPostfix, func(t *testing.T, g scripttest.Golden, c *starttls.Conn) {
		lines := 0
		for lines < len(g.Lines) {
			r, err := smtp.ReadReply(c)
			require.NoError(t, err, "after %d lines", lines)
			assert.GreaterOrEqual(t, r.Code, 200)
			assert.Less(t, r.Code, 600)
			for i, text := range r.Lines {
				assert.Equal(t, g.Lines[lines+i][4:], text)
				assert.Equal(t, strconv.Itoa(r.Code), g.Lines[lines+i][:3])
			}
			lines += len(r.Lines)
		}
		assert.Equal(t, len(g.Lines), lines)
	})
}

// TestGoldenPostfixFiles keeps the table and testdata in step: a new
// capture must come with its expectations.
func TestGoldenPostfixFiles(t *testing.T) {
	scripttest.CheckGoldenFiles(t, goldenPostfix)
}
