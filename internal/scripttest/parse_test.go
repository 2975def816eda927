package scripttest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	dirs, err := parse(`
		# comment
		S: 220 hi
		S+ 250 joined
		S: "\x16\x03"
		C: {t} LOGIN {_}
		!tls
		!sleep 20ms
		!trickle
		!trickle 5ms
		!notrickle
		!eof
		!hold
		!close
	`, Server)
	require.NoError(t, err)
	ops := make([]string, len(dirs))
	for i, d := range dirs {
		ops[i] = d.op
	}
	assert.Equal(t, []string{"send", "send", "send", "expect", "tls", "sleep", "trickle", "trickle", "notrickle", "eof", "hold", "close"}, ops)
	assert.Equal(t, 3, dirs[0].line, "lines are numbered in the script, blank and comment lines included")
	assert.False(t, dirs[0].join)
	assert.True(t, dirs[1].join)
	assert.Equal(t, []byte("\x16\x03"), dirs[2].raw)
	assert.Equal(t, []string{"t", "_"}, dirs[3].names)
	assert.True(t, dirs[3].match.MatchString("a1 LOGIN x"))
	assert.False(t, dirs[3].match.MatchString("a1 LOGIN x y"))
	assert.Equal(t, 20*time.Millisecond, dirs[5].dur)
	assert.Zero(t, dirs[6].dur)
	assert.Equal(t, 5*time.Millisecond, dirs[7].dur)

	// With Role Client the same lines swap sides.
	dirs, err = parse("S: 220 hi\nC: EHLO x\nC+ NOOP", Client)
	require.NoError(t, err)
	assert.Equal(t, "expect", dirs[0].op)
	assert.Equal(t, "send", dirs[1].op)
	assert.True(t, dirs[2].join)
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		script string
		role   Role
		want   string
	}{
		{"S: ok\n!bogus", Server, "script line 2: unknown directive"},
		{"!sleep forever", Server, "script line 1:"},
		{"\n\n!trickle slowly", Server, "script line 3:"},
		{`S: "unterminated`, Server, "script line 1: bad quoted string"},
		{"C+ joined expectation", Server, "script line 1: C+ only joins lines this peer sends"},
		{"S+ joined expectation", Client, "script line 1: S+ only joins lines this peer sends"},
		{"X: what", Server, "script line 1: want S:, C:, S+, C+ or !directive"},
		{"hello", Server, "script line 1:"},
	}
	for _, tt := range tests {
		_, err := parse(tt.script, tt.role)
		require.Error(t, err, tt.script)
		assert.Contains(t, err.Error(), tt.want)
	}
}
