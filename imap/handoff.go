package imap

import (
	"net"
	"strings"
	"sync"

	"github.com/tlsup/tlsup/starttls"
)

// HandOff returns a net.Conn on which an IMAP client library that starts
// from scratch (go-imap v2's imapclient.New) continues the session that
// [Upgrade] or [Dial] secured, as if it had just connected. Such a client
// waits for a server greeting, and after STARTTLS none comes (RFC 9051,
// Section 6.2.1): its first reads return a synthetic untagged OK whose
// CAPABILITY response code carries res.After, the capabilities discovered
// inside TLS, so that the library asks no CAPABILITY of its own. Nothing
// from before TLS is replayed. Everything else goes to res.Conn (bytes
// its line reader holds first); closing the conn closes the session.
//
// The library does not see a *tls.Conn; res.State is the session's TLS
// state. HandOff returns nil when res carries no session (the upgrade
// failed). With res.Plaintext (Opportunistic only) the greeting carries
// res.Before instead, the plaintext session's own capabilities, with the
// AUTH= mechanisms left out and LOGINDISABLED added; go-imap's Login does
// not look at them, so check res.TLS before sending a password.
func HandOff(res *starttls.Result) net.Conn {
	if res == nil || res.Conn == nil {
		return nil
	}
	caps := res.After
	if res.Plaintext {
		caps = res.Before
	}
	var b strings.Builder
	b.WriteString("* OK ")
	var atoms []string
	for _, a := range caps.List() {
		if !isCapabilityAtom(a) {
			continue
		}
		if res.Plaintext && (len(a) > 5 && starttls.EqualFold(a[:5], "AUTH=") || starttls.EqualFold(a, "LOGINDISABLED")) {
			continue
		}
		atoms = append(atoms, a)
	}
	if res.Plaintext {
		// RFC 9051, Section 6.2.3: no password in the clear. A client
		// that reads capabilities sees it; go-imap's Login does not look,
		// so check res.TLS before logging in.
		atoms = append(atoms, "LOGINDISABLED")
	}
	if len(atoms) > 0 {
		b.WriteString("[CAPABILITY ")
		b.WriteString(strings.Join(atoms, " "))
		b.WriteString("] ")
	}
	if res.Plaintext {
		b.WriteString("IMAP session continued without TLS\r\n")
	} else {
		b.WriteString("IMAP session continued after STARTTLS\r\n")
	}
	return &handOff{Conn: res.Conn, pending: []byte(b.String())}
}

// handOff is HandOff's conn: a synthetic greeting to read, then res.Conn.
type handOff struct {
	*starttls.Conn
	mu      sync.Mutex
	pending []byte
}

// Read returns the synthetic greeting first, then reads the session.
func (h *handOff) Read(p []byte) (int, error) {
	h.mu.Lock()
	if len(h.pending) > 0 {
		n := copy(p, h.pending)
		h.pending = h.pending[n:]
		h.mu.Unlock()
		return n, nil
	}
	h.mu.Unlock()
	return h.Conn.Read(p)
}

// isCapabilityAtom reports whether s can stand in a CAPABILITY response
// code: a non-empty atom (RFC 9051, Section 9: no atom-specials, no "]").
func isCapabilityAtom(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}
