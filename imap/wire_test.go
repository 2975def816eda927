package imap

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/starttls"
)

func TestLiteralAt(t *testing.T) {
	for _, c := range []struct {
		line string
		ok   bool
		want literal
	}{
		{"* 1 FETCH (BODY[] {342}", true, literal{size: 342}},
		{"{0}", true, literal{}},
		{"x {5+}", true, literal{size: 5, nonSync: true}},
		{"* 1 FETCH (BINARY[] ~{7}", true, literal{size: 7, binary: true}},
		{"~{7+}", true, literal{size: 7, nonSync: true, binary: true}},
		{"{00065536}", true, literal{size: 65536}},
		{"{}", false, literal{}},
		{"{+}", false, literal{}},
		{"{x}", false, literal{}},
		{"{5-}", false, literal{}},
		{"5}", false, literal{}},
		{"{5} ", false, literal{}},
		{"{5}x", false, literal{}},
		{"{5", false, literal{}},
		{"", false, literal{}},
		{"}", false, literal{}},
		{"{-5}", false, literal{}},
	} {
		t.Run(c.line, func(t *testing.T) {
			lit, ok, err := literalAt([]byte(c.line), DefaultMaxLiteral)
			require.NoError(t, err)
			assert.Equal(t, c.ok, ok)
			if ok {
				c.want.start = strings.LastIndexByte(c.line, '{')
				if c.want.binary {
					c.want.start--
				}
			}
			assert.Equal(t, c.want, lit)
		})
	}
	for _, line := range []string{"{65537}", "{4294967296}", "{18446744073709551616}", "~{" + strings.Repeat("9", 1000) + "}", "{99999999999+}"} {
		t.Run("too large "+line[:min(len(line), 20)], func(t *testing.T) {
			_, ok, err := literalAt([]byte(line), DefaultMaxLiteral)
			require.ErrorIs(t, err, starttls.ErrTooLarge)
			assert.False(t, ok)
			assert.Less(t, len(err.Error()), 700, "the error quotes a bounded part of the line")
		})
	}
	_, _, err := literalAt("{11}", 10)
	require.ErrorIs(t, err, starttls.ErrTooLarge)
}

func TestLiteralAtDoesNotAllocate(t *testing.T) {
	for _, line := range []string{"* 1 FETCH (BODY[] {5}", "{4294967296", "x", "{" + strings.Repeat("9", 100)} {
		allocs := testing.AllocsPerRun(100, func() { literalAt([]byte(line), DefaultMaxLiteral) })
		assert.Zero(t, allocs, "line %q", line)
	}
}

// FuzzLiteralAt checks that a literal found is within the bound and prints
// back as the end of the line, and that a failure is only ever too-large.
func FuzzLiteralAt(f *testing.F) {
	for _, s := range []string{"{5}", "~{5+}", "{4294967296}", "{}", "{00}", "* 1 FETCH (BODY[] {342}", "a}", "{65536}", "{65537}"} {
		f.Add([]byte(s), int64(0))
	}
	f.Fuzz(func(t *testing.T, line []byte, max int64) {
		bound := max
		if bound <= 0 {
			bound = DefaultMaxLiteral
		}
		lit, ok, err := literalAt(line, bound)
		if err != nil {
			if ok || !bytes.HasSuffix(line, []byte("}")) {
				t.Fatalf("error %v with ok=%v on %q", err, ok, line)
			}
			if !strings.Contains(err.Error(), "too large") {
				t.Fatalf("error %v", err)
			}
			return
		}
		if !ok {
			return
		}
		if lit.size < 0 || lit.size > bound {
			t.Fatalf("size %d over the bound %d", lit.size, bound)
		}
		// The announcement is the line's end: digits, maybe "+", "}",
		// and the value is theirs, leading zeros aside.
		open := bytes.LastIndexByte(line, '{')
		digits := string(line[open+1 : len(line)-1])
		if lit.nonSync != strings.HasSuffix(digits, "+") {
			t.Fatalf("%q: NonSync %v", line, lit.nonSync)
		}
		digits = strings.TrimSuffix(digits, "+")
		if lit.binary != (open > 0 && line[open-1] == '~') {
			t.Fatalf("%q: Binary %v", line, lit.binary)
		}
		if want := strings.TrimLeft(digits, "0"); strconv.FormatInt(lit.size, 10) != want && !(lit.size == 0 && want == "") {
			t.Fatalf("%q parsed as %d", line, lit.size)
		}
	})
}
