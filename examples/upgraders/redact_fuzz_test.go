package upgraders_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/examples/upgraders"
	"github.com/tlsup/tlsup/starttls"
)

// credential is one form of a line that carries a secret, in one
// protocol: its words before the secret, the last of them (a mechanism,
// a user name) chosen by the fuzzer.
type credential struct {
	protocol string
	// words are the line's words before the secret; "%" stands for the
	// fuzzer's word (a mechanism, a tag, a user name).
	words []string
	// keep is how many of the words the transcript keeps.
	keep int
}

// credentials are the authentication lines of each protocol's Redact
// doc: the secret must never be kept.
var credentials = []credential{
	{"smtp", []string{"AUTH", "%"}, 2},                  // RFC 4954, Section 4
	{"lmtp", []string{"AUTH", "%"}, 2},                  //
	{"imap", []string{"%", "AUTHENTICATE", "PLAIN"}, 3}, // RFC 9051, Section 6.2.2
	{"imap", []string{"%", "LOGIN", "user"}, 2},         // Section 6.2.3
	{"pop3", []string{"PASS"}, 1},                       // RFC 1939, Section 7
	{"pop3", []string{"APOP", "%"}, 1},                  //
	{"pop3", []string{"AUTH", "%"}, 2},                  // RFC 5034
	{"nntp", []string{"AUTHINFO", "PASS"}, 2},           // RFC 4643, Section 2.3
	{"nntp", []string{"AUTHINFO", "SASL", "%"}, 3},      // Section 2.4
	{"ftp", []string{"USER"}, 1},                        // RFC 959, Section 4.1.1
	{"ftp", []string{"PASS"}, 1},                        //
	{"ftp", []string{"ACCT"}, 1},                        //
	{"sieve", []string{"AUTHENTICATE", "%"}, 2},         // RFC 5804, Section 2.1
}

// FuzzRedact checks the Redact of every Upgrader New makes that has one,
// on two kinds of input. Arbitrary lines: keep is within the line and
// leaves something to hide. Credential lines built from the fuzzer's
// word, secret and letter case: they are redacted, the kept part is
// exactly the command words (and the mechanism), and no byte of the
// secret is kept.
func FuzzRedact(f *testing.F) {
	f.Add("AUTH PLAIN AGFsaWNlAGh1bnRlcjI=", "PLAIN", "AGFsaWNlAGh1bnRlcjI=", uint64(0))
	f.Add("a1 LOGIN smith sesame", "a1", "sesame", uint64(0xff))
	f.Add("APOP mrose c4c9334bac560ecc979e58001b3e22fb", "mrose", "c4c9334bac560ecc979e58001b3e22fb", uint64(5))
	f.Add("AUTHINFO PASS hunter2", "PLAIN", "hunter2", uint64(3))
	f.Add(`AUTHENTICATE "PLAIN" "AGFs"`, `"PLAIN"`, `"AGFs"`, uint64(1))
	f.Add(`authenticate "PLAIN" {12+}`, `"PLA IN"`, "{12+}", uint64(2))
	f.Add("AUTH PLAIN", "SCRAM-SHA-256", "=", uint64(0))
	f.Add("PASS", "x", " leading space", uint64(0))
	f.Add("a1 AUTHENTICATE PLAIN", "*", "\x00\r\n", uint64(0))

	f.Fuzz(func(t *testing.T, line, word, secret string, caseMask uint64) {
		for _, name := range upgraders.Names() {
			u, err := upgraders.New(name, nil)
			require.NoError(t, err)
			r, ok := u.(starttls.Redactor)
			if !ok {
				continue
			}
			keep, ok := r.Redact([]byte(line))
			if ok {
				require.True(t, keep >= 0 && keep < len(line), "%s: Redact(%q) keeps %d bytes", name, line, keep)
			}
		}
		if !wellFormed(word) || secret == "" {
			return
		}
		for _, c := range credentials {
			words := make([]string, len(c.words))
			for i, w := range c.words {
				if w == "%" {
					w = word
				} else {
					w = mixCase(w, caseMask>>(8*i))
				}
				words[i] = w
			}
			if c.protocol == "sieve" && strings.Count(word, `"`) > 0 && !(len(word) >= 2 && word[0] == '"' && strings.Count(word, `"`) == 2 && word[len(word)-1] == '"') {
				continue // a sieve mechanism is an atom or one quoted string
			}
			prefix := strings.Join(words, " ")
			built := prefix + " " + secret
			u, err := upgraders.New(c.protocol, nil)
			require.NoError(t, err)
			keep, ok := u.(starttls.Redactor).Redact([]byte(built))
			require.True(t, ok, "%s: Redact(%q) hides nothing", c.protocol, built)
			kept := strings.Join(words[:c.keep], " ")
			require.Equal(t, kept, built[:keep], "%s: Redact(%q) keeps", c.protocol, built)
			require.LessOrEqual(t, keep, len(prefix), "%s: Redact(%q) keeps part of the secret", c.protocol, built)
			require.True(t, bytes.HasSuffix([]byte(built[keep:]), []byte(secret)))
		}
	})
}

// wellFormed: a word of a command line, one token (no space or tab, no line
// end, not empty) and not a quoted string with a space inside.
func wellFormed(w string) bool {
	return w != "" && !strings.ContainsAny(w, " \t\r\n")
}

// mixCase changes the case of w's letters by the bits of mask: commands
// are case-insensitive in every one of these protocols.
func mixCase(w string, mask uint64) string {
	b := []byte(w)
	for i, c := range b {
		if mask&(1<<(i%8)) != 0 && 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
