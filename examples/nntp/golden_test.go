package nntp

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
)

// The golden transcripts in testdata/golden_inn_*.txt were captured from a
// real INN nnrpd by internal/realpeers/lineproto (bash
// .ci/real-lineproto.sh --capture). These tests replay them hermetically:
// the server's bytes as nnrpd sent them, against the package's client and
// parser.

var goldenINN = []scripttest.GoldenCase{
	{File: "golden_inn_nntp_starttls.txt",
		Before: []string{"VERSION", "READER", "STARTTLS", "AUTHINFO"},
		After:  []string{"VERSION", "READER", "AUTHINFO"}, NotAfter: []string{"STARTTLS"}},
	{File: "golden_inn_nntps_implicit.txt",
		After: []string{"VERSION", "READER"}, NotAfter: []string{"STARTTLS"}},
	// nnrpd without a usable certificate lists STARTTLS and answers 580.
	{File: "golden_inn_nntp_refused.txt", Err: starttls.ErrRefused, Before: []string{"STARTTLS"}},
}

// goldenList returns the lines of the first 101 list in lines,
// dot-unstuffed, worked out without the package's parser.
func goldenList(lines []string) []string {
	var out []string
	in := false
	for _, l := range lines {
		switch {
		case !in && strings.HasPrefix(l, "101"):
			in = true
		case in && l == ".":
			return out
		case in:
			out = append(out, strings.TrimPrefix(l, "."))
		}
	}
	return nil
}

var goldenClient = scripttest.GoldenClient{
	Upgrade: func(ctx context.Context, conn net.Conn, cfg *tls.Config, policy starttls.Policy, mode starttls.Mode) (*tls.Conn, *starttls.Result, error) {
		return Upgrade(ctx, conn, &Options{TLSConfig: cfg, Policy: policy, Mode: mode})
	},
	Greeting: "200 ",
	Before:   func(g scripttest.Golden) []string { return goldenList(g.Before) },
	After:    func(g scripttest.Golden) []string { return goldenList(g.After) },
}

// TestGoldenINN replays each transcript against Upgrade.
func TestGoldenINN(t *testing.T) {
	scripttest.ReplayGolden(t, goldenClient, goldenINN)
}

// TestGoldenINNReplies feeds everything nnrpd sent, back to back, to the
// status and list readers: every status line parses, and the lists account
// for every other line.
func TestGoldenINNReplies(t *testing.T) {
	scripttest.FeedGolden(t, goldenINN, func(t *testing.T, g scripttest.Golden, c *starttls.Conn) {
		lines := 0
		for lines < len(g.Lines) {
			code, text, err := readStatus(c)
			require.NoError(t, err, "after %d lines", lines)
			assert.Equal(t, g.Lines[lines], strings.TrimSuffix(strings.Join([]string{itoa(code), text}, " "), " "))
			lines++
			if code == 101 {
				list, err := readList(c)
				require.NoError(t, err)
				assert.Equal(t, goldenList(g.Lines[lines-1:]), list)
				lines += len(list) + 1
			}
		}
		assert.Equal(t, len(g.Lines), lines)
	})
}

func itoa(n int) string {
	return string([]byte{byte('0' + n/100), byte('0' + n/10%10), byte('0' + n%10)})
}

// TestGoldenINNFiles keeps the table and testdata in step.
func TestGoldenINNFiles(t *testing.T) {
	scripttest.CheckGoldenFiles(t, goldenINN)
}
