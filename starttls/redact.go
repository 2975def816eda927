package starttls

// Redactor tells a transcript which lines carry credentials. A protocol
// implements it (an [Upgrader] may, and a server dialogue passes one in
// [Options]) because only the protocol knows its authentication commands;
// the core knows none.
type Redactor interface {
	// Redact reports whether line, a client's command or response (read
	// by a server or written by a client; servers' lines are recorded as
	// they are), carries a secret, and
	// how many of its leading bytes may still be recorded (the command
	// word, a tag, a mechanism name). The rest is recorded as
	// "<redacted>". keep 0 hides the whole line. The Conn passes each tab
	// of the line as a space (same length, so keep is an index into the
	// line as sent): a Redactor that splits words at spaces also sees
	// "PASS<TAB>secret", which some servers accept, as two words.
	Redact(line []byte) (keep int, ok bool)
}

// RedactFunc adapts a function to [Redactor].
type RedactFunc func(line []byte) (keep int, ok bool)

// Redact calls f(line).
func (f RedactFunc) Redact(line []byte) (int, bool) { return f(line) }

// DefaultRedactor is the [Redactor] of a [Conn] whose protocol gave none. It
// knows no protocol, so it errs on the side of hiding: when one of a line's
// first two words contains AUTH, PASS, LOGIN or APOP (in any case: AUTH,
// AUTHINFO, AUTHENTICATE, PASS, LOGIN), everything after the last such word
// among the first three is hidden. "AUTHINFO PASS hunter2" is recorded as
// "AUTHINFO PASS <redacted>", `a1 AUTHENTICATE "PLAIN" "AGFsaWNlAHB3"` as
// "a1 AUTHENTICATE <redacted>". A line with nothing after those words is
// recorded as it is.
var DefaultRedactor Redactor = RedactFunc(defaultRedact)

func defaultRedact(line []byte) (keep int, ok bool) {
	// The ends of the first three space-separated words.
	var ends [3]int
	n, start := 0, 0
	for n < len(ends) && start < len(line) {
		end := start
		for end < len(line) && line[end] != ' ' {
			end++
		}
		ends[n] = end
		n++
		start = end + 1
	}
	first := -1 // the first authentication-looking word, among the first two
	for i := 0; i < min(n, 2); i++ {
		if authLooking(line[wordStart(ends, i):ends[i]]) {
			first = i
			break
		}
	}
	if first < 0 {
		return 0, false
	}
	last := first // extended over the words that follow and look alike
	for last+1 < n && authLooking(line[wordStart(ends, last+1):ends[last+1]]) {
		last++
	}
	if ends[last] >= len(line) {
		return 0, false // nothing after them to hide
	}
	return ends[last], true
}

// wordStart returns where word i starts, given the ends of the words.
func wordStart(ends [3]int, i int) int {
	if i == 0 {
		return 0
	}
	return ends[i-1] + 1
}

// authLooking reports whether word contains AUTH, PASS, LOGIN or APOP,
// ignoring ASCII case.
func authLooking(word []byte) bool {
	for _, marker := range [...]string{"AUTH", "PASS", "LOGIN", "APOP"} {
		for i := 0; i+len(marker) <= len(word); i++ {
			if EqualFold(string(word[i:i+len(marker)]), marker) {
				return true
			}
		}
	}
	return false
}
