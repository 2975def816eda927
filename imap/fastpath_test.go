package imap

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzIsTaggedOK checks the client's shortcut for the plain tagged OK
// against the full parser: isTaggedOK accepts a line exactly when
// ParseResponse reads it as the completion of the same tag with status OK
// and no response code.
func FuzzIsTaggedOK(f *testing.F) {
	const tag = "t0123456789ab"
	for _, seed := range []string{
		tag + " OK", tag + " OK ", tag + " ok done", tag + " OK CAPABILITY completed",
		tag + " OK [CAPABILITY IMAP4rev1] done", tag + " OK [", tag + " OK []", tag + " OK  [x",
		tag + " OKAY", tag + " NO nope", tag + " BAD", tag + "  OK", tag + " O", tag,
		"* OK ready", "t0123456789abc OK", "t0123456789a OK", "+ OK", tag + " Ok\x00", tag + " oK \xff",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		fast := isTaggedOK([]byte(line), []byte(tag))
		r, err := ParseResponse([]byte(line))
		full := err == nil && r.Tag == tag && r.Status == "OK" && r.Code == ""
		assert.Equal(t, full, fast, "line %q: ParseResponse %+v, %v", line, r, err)
	})
}

func TestIsTaggedOK(t *testing.T) {
	tag := []byte("t1")
	for line, want := range map[string]bool{
		"t1 OK":                  true,
		"t1 ok Begin TLS":        true,
		"t1 OK [CAPABILITY X] y": false, // parsed in full
		"t1 NO":                  false,
		"t10 OK":                 false,
		"t1 OKAY":                false,
	} {
		require.Equal(t, want, isTaggedOK([]byte(line), tag), "line %q", line)
	}
}
