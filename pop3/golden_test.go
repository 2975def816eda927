package pop3_test

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"

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
var goldenDovecot = []scripttest.GoldenCase{
	{File: "golden_dovecot_pop3_stls.txt",
		// disable_plaintext_auth: neither USER nor a SASL mechanism
		// before TLS (RFC 2595, Section 4 for STLS).
		Before: []string{"STLS", "UIDL", "SASL"}, NotBefore: []string{"USER"},
		After: []string{"USER", "SASL", "UIDL"}, NotAfter: []string{"STLS"}},
	{File: "golden_dovecot_pop3s_implicit.txt",
		After: []string{"USER", "SASL"}, NotAfter: []string{"STLS"}},
	{File: "golden_dovecot_pop3_notls_required.txt", Err: starttls.ErrNotOffered,
		NotBefore: []string{"STLS", "USER"}},
	{File: "golden_dovecot_pop3_notls_always.txt", Policy: starttls.Always, Err: starttls.ErrRefused,
		NotBefore: []string{"STLS", "USER"}},
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

// goldenClient is pop3.Upgrade and what its Result must say, for
// scripttest.ReplayGolden.
var goldenClient = scripttest.GoldenClient{
	Upgrade: func(ctx context.Context, conn net.Conn, cfg *tls.Config, policy starttls.Policy, mode starttls.Mode) (*tls.Conn, *starttls.Result, error) {
		return pop3.Upgrade(ctx, conn, &pop3.Options{TLSConfig: cfg, Policy: policy, Mode: mode})
	},
	Greeting: "+OK ",
	Before:   func(g scripttest.Golden) []string { return goldenCapa(g.Before) },
	// The CAPA reply inside TLS; in implicit mode the greeting comes first,
	// so skip it in both cases.
	After: func(g scripttest.Golden) []string {
		after := g.After
		if !g.Implicit {
			after = append([]string{"(greeting)"}, after...)
		}
		return goldenCapa(after)
	},
}

// TestGoldenDovecot replays each golden transcript against pop3.Upgrade.
func TestGoldenDovecot(t *testing.T) {
	scripttest.ReplayGolden(t, goldenClient, goldenDovecot)
}

// TestGoldenDovecotResponses feeds everything Dovecot sent, back to back,
// to pop3.ReadResponse and pop3.ReadMultiline: status lines where a status
// line is due, the CAPA bodies after each "+OK" that answered CAPA.
func TestGoldenDovecotResponses(t *testing.T) {
	scripttest.FeedGolden(t, goldenDovecot, func(t *testing.T, g scripttest.Golden, c *starttls.Conn) {
		// Which status lines open a multi-line body: the "+OK" that
		// answers a CAPA.
		multi := make([]bool, len(g.Commands))
		for i, cmd := range g.Commands {
			multi[i] = cmd == "CAPA"
		}
		for i := 0; i < len(g.Lines); {
			r, err := pop3.ReadResponse(c)
			require.NoError(t, err, "line %q", g.Lines[i])
			assert.Equal(t, strings.HasPrefix(g.Lines[i], "+OK"), r.OK, "line %q", g.Lines[i])
			i++
			if r.OK && multi[i-1] {
				body, err := pop3.ReadMultiline(c)
				require.NoError(t, err)
				require.LessOrEqual(t, i+len(body)+1, len(g.Lines))
				assert.Equal(t, g.Lines[i:i+len(body)], body)
				i += len(body) + 1 // the "."
			}
		}
	})
}

// TestGoldenDovecotFiles keeps the table and testdata in step: a new
// capture must come with its expectations.
func TestGoldenDovecotFiles(t *testing.T) {
	scripttest.CheckGoldenFiles(t, goldenDovecot)
}
