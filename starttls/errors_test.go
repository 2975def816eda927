package starttls_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/starttls"
)

func TestEscape(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "mx.example.test ESMTP ready", "mx.example.test ESMTP ready"},
		{"empty", "", ""},
		{"crlf", "a\r\nb", `a\r\nb`},
		{"tab", "a\tb", `a\tb`},
		{"nul", "a\x00b", `a\x00b`},
		{"bell and del", "\x07\x7f", `\x07\x7f`},
		{"esc sequence", "\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
		{"osc title", "\x1b]0;pwned\x07", `\x1b]0;pwned\x07`},
		{"backslash", `C:\dir`, `C:\\dir`},
		{"backslash that looks escaped", `\x41`, `\\x41`},
		{"invalid utf-8", "a\xffb\xc3", `a\xffb\xc3`},
		{"overlong encoding", "\xc0\xaf", `\xc0\xaf`},
		{"bidi override", "\u202egnp.exe", `\u202egnp.exe`},
		{"bidi isolate", "\u2066x\u2069", `\u2066x\u2069`},
		{"zero width joiner", "a\u200db", `a\u200db`},
		{"bom", "\ufeffx", `\ufeffx`},
		{"c1 control", "\u0085\u009b", `\u0085\u009b`},
		{"line separator", "a\u2028b", `a\u2028b`},
		{"tag character", "\U000e0041", `\U000e0041`},
		{"printable unicode kept", "héllo 日本 ✓", "héllo 日本 ✓"},
		{"replacement char kept", "\ufffd", "\ufffd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := starttls.Escape(tt.in)
			assert.Equal(t, tt.want, got)
			assert.True(t, utf8.ValidString(got))
			assert.False(t, hasControl(got))
		})
	}
}

func TestEscapeLength(t *testing.T) {
	exact := strings.Repeat("a", 512)
	assert.Equal(t, exact, starttls.Escape(exact))
	over := strings.Repeat("a", 513)
	assert.Equal(t, exact+"...", starttls.Escape(over))
	huge := strings.Repeat("b", 1<<20)
	assert.Equal(t, strings.Repeat("b", 512)+"...", starttls.Escape(huge))
	controls := strings.Repeat("\x1b", 1000)
	got := starttls.Escape(controls)
	assert.True(t, strings.HasSuffix(got, "..."))
	assert.LessOrEqual(t, len(got), 512+10+3)
	// An escape is never cut in half.
	assert.True(t, strings.HasSuffix(strings.TrimSuffix(got, "..."), `\x1b`))
}

// FuzzEscape checks that Escape's output is printable, valid UTF-8 and
// bounded, and that clean short input passes unchanged.
func FuzzEscape(f *testing.F) {
	f.Add("220 mx.example.test ESMTP")
	f.Add("\x1b[2J\x1b]0;owned\x07")
	f.Add("\u202e\u2066\ufeff\u0085")
	f.Add("\xff\xfe\xc0\xaf")
	f.Add(strings.Repeat("\\", 600))
	f.Add(strings.Repeat("\U000e0041", 200))
	f.Fuzz(func(t *testing.T, s string) {
		got := starttls.Escape(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Escape(%q) = %q: invalid UTF-8", s, got)
		}
		if hasControl(got) {
			t.Fatalf("Escape(%q) = %q: control character", s, got)
		}
		// 512 bytes, plus at most one escape begun under the bound
		// (\UXXXXXXXX, 10 bytes), plus "...".
		if len(got) > 512+10+3 {
			t.Fatalf("Escape of %d bytes gave %d bytes", len(s), len(got))
		}
		clean := len(s) <= 512
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 || s[i] >= 0x7f || s[i] == '\\' {
				clean = false
			}
		}
		if clean && got != s {
			t.Fatalf("Escape(%q) = %q, want it unchanged", s, got)
		}
		if !clean && len(s) <= 512 && strings.HasSuffix(got, "...") && !strings.HasSuffix(s, "...") && len(got) < 512 {
			t.Fatalf("Escape(%q) = %q: cut below the bound", s, got)
		}
	})
}

func TestErrorStrings(t *testing.T) {
	reply := &starttls.ReplyError{Protocol: "smtp", Command: "STARTTLS", Code: 454, Text: "TLS not available"}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"kind only", &starttls.Error{Protocol: "smtp", Step: starttls.StepDiscover, Kind: starttls.ErrNotOffered},
			"smtp: discover: not offered"},
		{"reply", &starttls.Error{Protocol: "smtp", Step: starttls.StepStartTLS, Err: reply},
			"smtp: starttls: refused: 454 TLS not available"},
		{"kind and cause", &starttls.Error{Protocol: "pop3", Step: starttls.StepStartTLS, Kind: starttls.ErrInjectedData, Err: errors.New("3 bytes")},
			"pop3: starttls: data injected before tls: 3 bytes"},
		{"no protocol", &starttls.Error{Step: starttls.StepHandshake, Kind: starttls.ErrHandshake, Err: io.ErrUnexpectedEOF},
			"starttls: handshake: tls handshake failed: unexpected EOF"},
		{"reply greeting", &starttls.ReplyError{Protocol: "imap", Status: "BYE", Text: "go away", Kind: starttls.ErrGreetingRejected},
			"imap: greeting: BYE go away"},
		{"reply no text", &starttls.ReplyError{Protocol: "pop3", Command: "STLS", Status: "-ERR"},
			"pop3: STLS: -ERR"},
		{"protocol error", starttls.NewProtocolError("greeting %q", starttls.Escape("\x1bX")),
			`starttls: protocol violation: greeting "\\x1bX"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.err.Error()
			assert.Equal(t, tt.want, got)
			assertErrorText(t, tt.err)
		})
	}
}

// assertErrorText checks the house rules for an error's text: prefixed with
// the protocol's name ("toy: ", "smtp: ") or, when the error names none,
// "starttls: ", said once; lower-case after the prefix; no raw control
// character.
func assertErrorText(t *testing.T, err error) {
	t.Helper()
	s := err.Error()
	prefix, rest, ok := strings.Cut(s, ": ")
	require.True(t, ok && prefix != "" && !strings.ContainsAny(prefix, " \t"), "error %q lacks the prefix", s)
	assert.False(t, strings.HasPrefix(rest, prefix+": ") || strings.HasPrefix(rest, "starttls: "+prefix+": "), "error %q stutters", s)
	if e, ok := err.(*starttls.Error); ok {
		if e.Protocol != "" {
			assert.Equal(t, e.Protocol, prefix, "error %q: prefix", s)
		}
		// A step name follows; a ReplyError's command keeps its case.
		first, _ := utf8.DecodeRuneInString(rest)
		assert.False(t, 'A' <= first && first <= 'Z', "error %q is not lower-case", s)
	}
	assert.False(t, hasControl(s), "error %q holds a control character", s)
}

func TestErrorUnwrap(t *testing.T) {
	reply := &starttls.ReplyError{Protocol: "smtp", Command: "STARTTLS", Code: 454, Text: "busy"}
	err := error(&starttls.Error{Protocol: "smtp", Step: starttls.StepStartTLS, Err: reply})
	require.ErrorIs(t, err, starttls.ErrRefused, "a ReplyError without Kind is a refusal")
	var re *starttls.ReplyError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 454, re.Code)
	var e *starttls.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, starttls.StepStartTLS, e.Step)

	rejected := &starttls.ReplyError{Code: 554, Kind: starttls.ErrGreetingRejected}
	require.ErrorIs(t, rejected, starttls.ErrGreetingRejected)
	assert.NotErrorIs(t, rejected, starttls.ErrRefused)

	both := &starttls.Error{Kind: starttls.ErrHandshake, Err: fmt.Errorf("%w: %w", context.DeadlineExceeded, os.ErrDeadlineExceeded)}
	require.ErrorIs(t, both, starttls.ErrHandshake)
	require.ErrorIs(t, both, context.DeadlineExceeded)
	require.ErrorIs(t, both, os.ErrDeadlineExceeded)
	assert.Empty(t, (&starttls.Error{}).Unwrap())

	require.ErrorIs(t, starttls.NewProtocolError("x"), starttls.ErrProtocol)
}

// TestErrorTextScrubbed checks the core's last line of defence: raw peer
// text that reached an error unescaped is escaped by Error, and text escaped
// already is not escaped twice.
func TestErrorTextScrubbed(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"raw cause", &starttls.Error{Protocol: "smtp", Step: starttls.StepGreeting, Err: errors.New("bad greeting \x1b[2J\r\nINJECTED")},
			`smtp: greeting: bad greeting \x1b[2J\r\nINJECTED`},
		{"escaped cause", &starttls.Error{Protocol: "smtp", Step: starttls.StepGreeting, Err: starttls.NewProtocolError("greeting %s", starttls.Escape("a\x1b\\b"))},
			`smtp: greeting: protocol violation: greeting a\x1b\\b`},
		{"raw reply text", &starttls.ReplyError{Protocol: "pop3", Command: "STLS", Status: "-ERR", Text: "no\x07\u202e"},
			`pop3: STLS: -ERR no\x07\u202e`},
		{"raw protocol error", starttls.ProtocolError("line \x00"), `starttls: protocol violation: line \x00`},
		{"unicode kept", &starttls.Error{Step: starttls.StepGreeting, Err: errors.New("héllo ✓")}, "starttls: greeting: héllo ✓"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.err.Error())
			assertErrorText(t, tt.err)
		})
	}
}

// FuzzErrorText checks that no text in an error's cause reaches its message
// with a control character or invalid UTF-8, and that plain text passes
// unchanged.
func FuzzErrorText(f *testing.F) {
	f.Add("220 mx ready")
	f.Add("\x1b]0;title\x07\r\n")
	f.Add(`already \x1b escaped \\`)
	f.Add("\xff\xfe\u202e")
	f.Fuzz(func(t *testing.T, s string) {
		for _, err := range []error{
			&starttls.Error{Protocol: "smtp", Step: starttls.StepGreeting, Err: errors.New(s)},
			&starttls.ReplyError{Protocol: "smtp", Command: "EHLO", Code: 554, Text: s},
			starttls.ProtocolError(s),
		} {
			got := err.Error()
			if hasControl(got) || !utf8.ValidString(got) {
				t.Fatalf("%T with %q: message %q", err, s, got)
			}
			plain := strings.TrimPrefix(strings.TrimRight(s, " "), "starttls: ")
			if starttls.Escape(s) == s && !strings.Contains(got, plain) {
				t.Fatalf("%T with plain %q: message %q lost it", err, s, got)
			}
		}
	})
}
