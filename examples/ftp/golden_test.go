package ftp

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
	"github.com/tlsup/tlsup/starttls"
)

// The golden transcripts in testdata/golden_vsftpd_*.txt were captured
// from a real vsftpd by internal/realpeers/lineproto (bash
// .ci/real-lineproto.sh --capture). These tests replay them hermetically:
// the server's bytes as vsftpd sent them, against the package's client and
// parser.

var goldenVsftpd = []scripttest.GoldenCase{
	{File: "golden_vsftpd_ftp_starttls.txt",
		Before: []string{"AUTH", "PBSZ", "PROT"}, After: []string{"PBSZ", "PROT"}},
	{File: "golden_vsftpd_ftps_implicit.txt", After: []string{"PBSZ", "PROT"}},
	{File: "golden_vsftpd_notls_required.txt", Err: starttls.ErrNotOffered, NotBefore: []string{"AUTH", "PBSZ"}},
	{File: "golden_vsftpd_notls_always.txt", Policy: starttls.Always, Err: starttls.ErrRefused, NotBefore: []string{"AUTH"}},
}

// goldenFeatures returns the feature lines of the first 211 multi-line
// reply in lines, worked out without the package's parser.
func goldenFeatures(lines []string) []string {
	var out []string
	in := false
	for _, l := range lines {
		switch {
		case !in && strings.HasPrefix(l, "211-"):
			in = true
		case in && strings.HasPrefix(l, "211 "):
			return out
		case in:
			out = append(out, strings.TrimPrefix(l, " "))
		}
	}
	return nil
}

var goldenClient = scripttest.GoldenClient{
	Upgrade: func(ctx context.Context, conn net.Conn, cfg *tls.Config, policy starttls.Policy, mode starttls.Mode) (*tls.Conn, *starttls.Result, error) {
		return Upgrade(ctx, conn, &Options{TLSConfig: cfg, Policy: policy, Mode: mode})
	},
	Greeting: "220 ",
	Before:   func(g scripttest.Golden) []string { return goldenFeatures(g.Before) },
	After:    func(g scripttest.Golden) []string { return goldenFeatures(g.After) },
}

// TestGoldenVsftpd replays each transcript against Upgrade.
func TestGoldenVsftpd(t *testing.T) {
	scripttest.ReplayGolden(t, goldenClient, goldenVsftpd)
}

// TestGoldenVsftpdReplies feeds everything vsftpd sent, back to back, to
// ReadReply: each reply parses and together they account for every line.
func TestGoldenVsftpdReplies(t *testing.T) {
	scripttest.FeedGolden(t, goldenVsftpd, func(t *testing.T, g scripttest.Golden, c *starttls.Conn) {
		lines := 0
		for lines < len(g.Lines) {
			r, err := ReadReply(c)
			require.NoError(t, err, "after %d lines", lines)
			assert.True(t, strings.HasPrefix(g.Lines[lines], strconv.Itoa(r.Code)), "line %q, code %d", g.Lines[lines], r.Code)
			if r.Code == 211 {
				caps, err := features(r)
				require.NoError(t, err)
				assert.Equal(t, goldenFeatures(g.Lines[lines:]), caps.List())
			}
			lines += len(r.Lines)
		}
		assert.Equal(t, len(g.Lines), lines)
	})
}

// TestGoldenVsftpdFiles keeps the table and testdata in step.
func TestGoldenVsftpdFiles(t *testing.T) {
	scripttest.CheckGoldenFiles(t, goldenVsftpd)
}
