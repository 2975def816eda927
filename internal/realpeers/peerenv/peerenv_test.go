package peerenv

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGoldenScript(t *testing.T) {
	for _, tt := range []struct {
		name, transcript string
		imapTags         bool
		want, err        string
	}{
		{name: "lines and the handshake",
			transcript: "S: 220 mx ready\nC: STARTTLS\nS: 220 go\n-- TLS --\nC: EHLO x\n",
			want:       "S: 220 mx ready\nC: STARTTLS\nS: 220 go\n!tls\nC: EHLO x\n"},
		{name: "imap tags", imapTags: true,
			transcript: "S: * OK ready\nC: a1 CAPABILITY\nS: * CAPABILITY IMAP4rev1\nS: a1 OK done\nC: b2 STARTTLS\nS: b2 OK go\n",
			want:       "S: * OK ready\nC: {t1} CAPABILITY\nS: * CAPABILITY IMAP4rev1\nS: {t1} OK done\nC: {t2} STARTTLS\nS: {t2} OK go\n"},
		{name: "tags kept without imapTags",
			transcript: "C: a1 NOOP\nS: a1 OK\n", want: "C: a1 NOOP\nS: a1 OK\n"},
		{name: "server spaces quoted",
			transcript: "S: 211-Features:\nS:  AUTH TLS\nS: \"quoted\"\n",
			want:       "S: 211-Features:\nS: \" AUTH TLS\\r\\n\"\nS: \"\\\"quoted\\\"\\r\\n\"\n"},
		{name: "client spaces", transcript: "C:  NOOP\n", err: "cannot be matched"},
		{name: "escaped", transcript: `S: 220 a\x00b`, err: "cannot be replayed"},
		{name: "redacted", transcript: "C: PASS <redacted>\n", err: "cannot be replayed"},
		{name: "no side", transcript: "X: what\n", err: "transcript line"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := GoldenScript(tt.transcript, tt.imapTags)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestWriteGolden(t *testing.T) {
	dir := t.TempDir()
	e := &Env{Script: Script{Path: ".ci/real-x.sh", Tests: "internal/x"}, Capture: dir}
	e.WriteGolden(t, "examples/x", "golden_a.txt", "Server X 1.0\n  on port 1", "S: hello\n")
	data, err := os.ReadFile(filepath.Join(dir, "examples/x/testdata/golden_a.txt"))
	require.NoError(t, err)
	assert.Equal(t, "# Server X 1.0\n# on port 1\n"+
		"# Written by internal/x (bash .ci/real-x.sh --capture);\n"+
		"# replayed by golden_test.go through internal/scripttest. S: lines are\n"+
		"# the server's, as it sent them; C: lines the library client's; !tls is\n"+
		"# the handshake.\nS: hello\n", string(data))

	(&Env{}).WriteGolden(t, "x", "y", "z", "S: w\n") // no Capture: nothing written, no failure
}

func TestLoadSkipsWithoutGate(t *testing.T) {
	t.Setenv("TLSUP_PEERENV_TEST_GATE", "")
	ran := false
	t.Run("gated", func(t *testing.T) {
		Load(t, Script{Gate: "TLSUP_PEERENV_TEST_GATE", Path: ".ci/none.sh"})
		ran = true
	})
	assert.False(t, ran, "Load must skip the test without its gate")
}
