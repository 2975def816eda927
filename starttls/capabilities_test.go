package starttls_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"

	"github.com/tlsup/tlsup/starttls"
)

func TestCapabilitiesHas(t *testing.T) {
	tests := []struct {
		name    string
		entries []string
		query   string
		want    bool
	}{
		{"exact", []string{"PIPELINING", "STARTTLS"}, "STARTTLS", true},
		{"lower-case entry", []string{"starttls"}, "STARTTLS", true},
		{"mixed-case query", []string{"STARTTLS"}, "StartTLS", true},
		{"stls", []string{"TOP", "STLS", "SASL PLAIN"}, "STLS", true},
		{"keyword with params", []string{"SIZE 10240000"}, "size", true},
		{"prefix is not it", []string{"XSTARTTLS"}, "STARTTLS", false},
		{"suffix is not it", []string{"STARTTLSX"}, "STARTTLS", false},
		{"trailing nul", []string{"STARTTLS\x00"}, "STARTTLS", false},
		{"leading space", []string{" STARTTLS"}, "STARTTLS", false},
		{"tab is not a separator", []string{"STARTTLS\tX"}, "STARTTLS", false},
		{"long s look-alike", []string{"ſTARTTLS"}, "STARTTLS", false},
		{"long s look-alike, lower query", []string{"ſtarttls"}, "starttls", false},
		{"kelvin sign look-alike", []string{"\u212aEEPALIVE"}, "KEEPALIVE", false},
		{"kelvin sign in query", []string{"KEEPALIVE"}, "\u212aEEPALIVE", false},
		{"dotless i look-alike", []string{"L\u0131ST"}, "LIST", false},
		{"empty set", nil, "STARTTLS", false},
		{"parameter is not a keyword", []string{"AUTH STARTTLS"}, "STARTTLS", false},
		{"imap atom with =", []string{"AUTH=PLAIN"}, "AUTH=PLAIN", true},
		{"imap atom not its prefix", []string{"AUTH=PLAIN"}, "AUTH", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := starttls.NewCapabilities(tt.entries...)
			assert.Equal(t, tt.want, c.Has(tt.query), "Has(%q) on %q", tt.query, tt.entries)
			_, ok := c.Get(tt.query)
			assert.Equal(t, tt.want, ok)
		})
	}
}

func TestCapabilitiesGetParams(t *testing.T) {
	c := starttls.NewCapabilities("PIPELINING", "SIZE 10240000", "AUTH PLAIN  LOGIN", "auth CRAM-MD5", "8BITMIME")
	p, ok := c.Get("size")
	assert.True(t, ok)
	assert.Equal(t, "10240000", p)
	p, ok = c.Get("PIPELINING")
	assert.True(t, ok)
	assert.Empty(t, p)
	assert.Equal(t, []string{"PLAIN", "LOGIN"}, c.Params("AUTH"), "first entry wins, fields split on runs of spaces")
	assert.Nil(t, c.Params("PIPELINING"))
	assert.Nil(t, c.Params("STARTTLS"))
	assert.Equal(t, 5, c.Len())
	assert.Equal(t, []string{"PIPELINING", "SIZE 10240000", "AUTH PLAIN  LOGIN", "auth CRAM-MD5", "8BITMIME"}, c.List())

	// List is a copy; NewCapabilities copies its input.
	in := []string{"A", "B"}
	d := starttls.NewCapabilities(in...)
	in[0] = "Z"
	l := d.List()
	l[1] = "Y"
	assert.Equal(t, []string{"A", "B"}, d.List())
	d.Add("STARTTLS")
	assert.True(t, d.Has("starttls"))
	assert.Equal(t, 3, d.Len())
}

func TestCapabilitiesNil(t *testing.T) {
	for _, c := range []*starttls.Capabilities{nil, {}, starttls.NewCapabilities()} {
		assert.False(t, c.Has("STARTTLS"))
		p, ok := c.Get("STARTTLS")
		assert.False(t, ok)
		assert.Empty(t, p)
		assert.Nil(t, c.Params("AUTH"))
		assert.Nil(t, c.List())
		assert.Zero(t, c.Len())
		assert.Empty(t, c.String())
	}
}

func TestCapabilitiesString(t *testing.T) {
	c := starttls.NewCapabilities("SIZE 1", "X\x1b[31mRED", "\u202eEVIL")
	s := c.String()
	assert.Equal(t, `SIZE 1, X\x1b[31mRED, \u202eEVIL`, s)
	assert.False(t, hasControl(s))
}

func TestEqualFold(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"", "", true},
		{"STARTTLS", "starttls", true},
		{"StArTtLs", "sTaRtTlS", true},
		{"STLS", "STLS", true},
		{"STARTTLS", "STARTTLX", false},
		{"STARTTLS", "STARTTL", false},
		{"ſTARTTLS", "STARTTLS", false},
		{"ſtarttls", "starttls", false},
		{"\u212a", "K", false},
		{"\u212a", "k", false},
		{"[", "{", false}, // 0x5b and 0x7b differ by 0x20 but are not letters
		{"@", "`", false},
		{"^", "~", false},
		{"\xff", "\xdf", false},
		{"é", "É", false}, // ASCII only: non-ASCII letters compare exactly
		{"é", "é", true},
		{"8BITMIME", "8bitmime", true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, starttls.EqualFold(tt.a, tt.b), "EqualFold(%q, %q)", tt.a, tt.b)
		assert.Equal(t, tt.want, starttls.EqualFold(tt.b, tt.a), "EqualFold(%q, %q)", tt.b, tt.a)
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// FuzzEqualFold checks EqualFold against strings.EqualFold: they agree on
// ASCII, and on anything else EqualFold is the stricter.
func FuzzEqualFold(f *testing.F) {
	f.Add("STARTTLS", "starttls")
	f.Add("ſTARTTLS", "STARTTLS")
	f.Add("\u212aEEPALIVE", "keepalive")
	f.Add("[", "{")
	f.Add("STLS", "STLS\x00")
	f.Fuzz(func(t *testing.T, a, b string) {
		got := starttls.EqualFold(a, b)
		std := strings.EqualFold(a, b)
		if got != starttls.EqualFold(b, a) {
			t.Fatalf("EqualFold(%q, %q) is not symmetric", a, b)
		}
		if isASCII(a) && isASCII(b) {
			if got != std {
				t.Fatalf("EqualFold(%q, %q) = %v, strings.EqualFold = %v", a, b, got, std)
			}
			return
		}
		if got && !std {
			t.Fatalf("EqualFold(%q, %q) true where strings.EqualFold is false", a, b)
		}
		if got {
			// Only ASCII letters may differ, and only in case.
			for i := 0; i < len(a); i++ {
				if a[i] >= utf8.RuneSelf && a[i] != b[i] {
					t.Fatalf("EqualFold(%q, %q) folded a non-ASCII byte", a, b)
				}
			}
		}
	})
}

// FuzzCapabilities builds a set from random entries and checks that Has and
// Get agree with a plain reference: the text before the first space,
// compared by ASCII case.
func FuzzCapabilities(f *testing.F) {
	f.Add("PIPELINING\nSIZE 10240000\nSTARTTLS", "STARTTLS")
	f.Add("XSTARTTLS\nSTARTTLSX\nSTARTTLS\x00", "starttls")
	f.Add("ſTARTTLS\nSTLS", "STLS")
	f.Add("AUTH PLAIN LOGIN\nauth CRAM-MD5", "AUTH")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, list, query string) {
		entries := strings.Split(list, "\n")
		c := starttls.NewCapabilities(entries...)
		if c.Len() != len(entries) {
			t.Fatalf("Len %d, want %d", c.Len(), len(entries))
		}
		wantParams, wantOK := "", false
		for _, e := range entries {
			kw, rest, _ := strings.Cut(e, " ")
			if asciiLower(kw) == asciiLower(query) {
				wantParams, wantOK = rest, true
				break
			}
		}
		params, ok := c.Get(query)
		if ok != wantOK || params != wantParams {
			t.Fatalf("Get(%q) = %q, %v; want %q, %v", query, params, ok, wantParams, wantOK)
		}
		if c.Has(query) != ok {
			t.Fatalf("Has and Get disagree on %q", query)
		}
		if ok && strings.Contains(query, " ") {
			t.Fatalf("a query with a space %q matched a keyword", query)
		}
		if s := c.String(); hasControl(s) || !utf8.ValidString(s) {
			t.Fatalf("String() = %q is not safe to print", s)
		}
	})
}

// asciiLower lower-cases ASCII letters only.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func TestUpperASCII(t *testing.T) {
	for in, want := range map[string]string{
		"":            "",
		"STARTTLS":    "STARTTLS",
		"starttls":    "STARTTLS",
		"StartTLS x1": "STARTTLS X1",
		"ſtarttls":    "ſTARTTLS", // the long s stays: it is not an ASCII letter
		"lıst":        "LıST",     // nor is the dotless i
		"\u212aey":    "\u212aEY", // nor the Kelvin sign
		"a\x00b\xff":  "A\x00B\xff",
	} {
		assert.Equal(t, want, starttls.UpperASCII(in), "UpperASCII(%q)", in)
	}
	assert.Zero(t, testing.AllocsPerRun(100, func() { starttls.UpperASCII("NOOP") }),
		"a string without lower-case letters is returned as is")
}

func TestIndexControl(t *testing.T) {
	for in, want := range map[string]int{
		"": -1, "NOOP": -1, "ü é": -1, "a\x00": 1, "\tx": 0, "ab\x7f": 2, "x\r\n": 1, "\x1b[31m": 0,
	} {
		assert.Equal(t, want, starttls.IndexControl(in), "IndexControl(%q)", in)
	}
}
