package starttls

import "strings"

// Capabilities is an ordered set of capability entries as the peer sent
// them, in the form its protocol gives them (a keyword line "SIZE
// 10240000", an atom "AUTH=PLAIN", a name with its value): the [Upgrader]
// that discovers them decides what an entry is. An entry's keyword is the
// text before its first space; keywords compare by ASCII case folding
// only, so that no Unicode look-alike ("ſTARTTLS" with a long s, a Kelvin
// sign) matches.
//
// The zero value and the nil pointer are empty sets.
type Capabilities struct {
	entries []string
}

// NewCapabilities returns a set holding entries, in order.
func NewCapabilities(entries ...string) *Capabilities {
	return &Capabilities{entries: append([]string(nil), entries...)}
}

// Add appends an entry.
func (c *Capabilities) Add(entry string) { c.entries = append(c.entries, entry) }

// Len returns the number of entries.
func (c *Capabilities) Len() int {
	if c == nil {
		return 0
	}
	return len(c.entries)
}

// List returns a copy of the entries as sent, in order; nil for an empty
// set.
func (c *Capabilities) List() []string {
	if c == nil || len(c.entries) == 0 {
		return nil
	}
	return append([]string(nil), c.entries...)
}

// Has reports whether an entry's keyword equals name, ignoring ASCII case.
// The whole keyword must match: "XSTARTTLS", "STARTTLSX" and "STARTTLS\x00"
// are not "STARTTLS".
func (c *Capabilities) Has(name string) bool {
	_, ok := c.Get(name)
	return ok
}

// Get returns the parameters of the first entry whose keyword is name (the
// text after the keyword's space, "" when there is none) and whether there
// was one.
func (c *Capabilities) Get(name string) (params string, ok bool) {
	if c == nil {
		return "", false
	}
	for _, e := range c.entries {
		kw, rest, _ := strings.Cut(e, " ")
		if EqualFold(kw, name) {
			return rest, true
		}
	}
	return "", false
}

// Params returns the space-separated parameters of name's entry, nil when
// absent or bare.
func (c *Capabilities) Params(name string) []string {
	p, _ := c.Get(name)
	fields := strings.Fields(p)
	if len(fields) == 0 {
		return nil // as documented; strings.Fields gives an empty slice
	}
	return fields
}

// String returns the entries joined by ", ", escaped.
func (c *Capabilities) String() string {
	if c == nil {
		return ""
	}
	return Escape(strings.Join(c.entries, ", "))
}

// EqualFold reports whether a and b are equal under ASCII case folding.
// Unlike strings.EqualFold it does not fold Unicode: "ſ" (U+017F) is not
// "s", so a look-alike keyword cannot pass for a real one.
func EqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// UpperASCII returns s with its ASCII letters upper-cased and every other
// byte unchanged. Unlike strings.ToUpper it maps no Unicode look-alike ("ſ",
// the dotless "ı", the Kelvin sign) onto an ASCII letter, so a command name
// compared after it cannot be forged. It allocates only when s has a
// lower-case letter.
func UpperASCII(s string) string {
	i := 0
	for i < len(s) && !('a' <= s[i] && s[i] <= 'z') {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if c := b[i]; 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}

// IndexControl returns the index of the first ASCII control character in s
// (a byte below 0x20, NUL included, or DEL), or -1 when there is none.
func IndexControl(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return i
		}
	}
	return -1
}
