package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// FuzzEncodeJSON feeds arbitrary peer text (a greeting, a capability) to
// encodeJSON, one line and indented, and checks: the output is valid JSON
// that decodes to what encoding/json alone gives (the escaping changes no
// value); it is valid UTF-8 and carries no raw terminal control (C0, DEL,
// C1) and no raw format character (bidi overrides, zero-width marks, tag
// characters); a one-line object is one line.
func FuzzEncodeJSON(f *testing.F) {
	for _, s := range []string{
		"X-EVIL \x1b[31m\x7f\xc2\x9b2J\xc2\x85\xe2\x80\xae\xef\xbb\xbf\xf3\xa0\x80\x81\xff",
		"\x1b]0;pwn\x07\x7f\u009b2J.example.test", "mx.example.test ESMTP", "", `"\u2028\u2029<>&`,
		"\\u0085", "\\\u0085",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, indent bool) {
		v := map[string]any{"greeting": s, "capabilities_before": []string{s, "STARTTLS"}}
		var out bytes.Buffer
		require.NoError(t, encodeJSON(&out, v, indent))
		got := out.Bytes()
		require.True(t, utf8.Valid(got), "valid UTF-8: %q", got)
		bad := bytes.IndexFunc(got, func(r rune) bool {
			return unicode.IsControl(r) && r != '\n' || unicode.Is(unicode.Cf, r)
		})
		require.Equal(t, -1, bad, "raw control or format character in %q", got)
		if !indent {
			require.Equal(t, 1, bytes.Count(got, []byte("\n")), "one line: %q", got)
			require.True(t, bytes.HasSuffix(got, []byte("\n")))
		}
		plain, err := json.Marshal(v)
		require.NoError(t, err)
		var want, decoded map[string]any
		require.NoError(t, json.Unmarshal(plain, &want))
		require.NoError(t, json.Unmarshal(got, &decoded), "valid JSON: %q", got)
		require.Equal(t, want, decoded, "the escaping changes no value")
		require.False(t, strings.Contains(string(got), "\x1b"))
	})
}
