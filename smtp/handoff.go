package smtp

import (
	"bytes"
	"errors"
	"net"
	netsmtp "net/smtp"
	"strings"
	"sync"

	"github.com/tlsup/tlsup/starttls"
)

// HandOff returns a net.Conn on which an SMTP client library that starts
// from scratch (net/smtp's NewClient, go-smtp's NewClient) continues the
// session that [Upgrade] or [Dial] secured, as if it had just connected:
//
//   - its first reads return a synthetic 220 greeting naming the server
//     verified in TLS (res.State.ServerName): the real greeting came before
//     TLS, and nothing from before TLS is replayed;
//   - its first EHLO (HELO, LHLO) is answered locally with a 250 reply
//     built from res.After, the capabilities discovered inside TLS, and
//     never reaches the server: the upgrade said EHLO already, and a
//     server may refuse a second one (OpenSMTPD's "503 5.5.1 Invalid
//     command: Already identified");
//   - everything else goes to res.Conn, so bytes the line reader holds
//     are read first.
//
// It suits clients that write a command and then read its reply, as both
// libraries do. The library does not see a *tls.Conn: net/smtp then takes
// the session for plaintext and its PlainAuth refuses any host but
// localhost; wrap its Auth with [TLSAuth], which tells it the truth.
// go-smtp's Client.TLSConnectionState reports false for the same reason;
// res.State is the session's TLS state. Closing the conn closes the session.
//
// HandOff returns nil when res carries no session (res nil, res.Conn nil:
// the upgrade failed). With res.Plaintext (Opportunistic only) the conn is
// the plaintext session: its EHLO reply comes from res.Before with AUTH
// (and its old "AUTH=" form) left out, so that a library asked to
// authenticate finds no mechanism rather than sending a password in the
// clear, and TLSAuth tells net/smtp the session is not TLS. Check res.TLS
// before anything secret.
func HandOff(res *starttls.Result) net.Conn {
	if res == nil || res.Conn == nil {
		return nil
	}
	name := res.State.ServerName
	if name == "" || starttls.IndexControl(name) >= 0 || strings.ContainsAny(name, " ") {
		name = "localhost"
	}
	h := &handOff{Conn: res.Conn, name: name, caps: res.After}
	if res.Plaintext {
		h.caps = &starttls.Capabilities{}
		for _, e := range res.Before.List() {
			if !offersAuth(e) {
				h.caps.Add(e)
			}
		}
	}
	how := "after STARTTLS"
	if res.Plaintext {
		how = "without TLS"
	}
	h.pending = []byte("220 " + name + " ESMTP session continued " + how + "\r\n")
	return h
}

// offersAuth reports whether a capability entry offers authentication
// in a form some client reads: "AUTH mechanisms" (RFC 4954) or the
// pre-standard "AUTH=mechanisms" that servers still send for old clients
// (Python's smtplib, for one, takes mechanisms from it).
func offersAuth(entry string) bool {
	keyword, _, _ := strings.Cut(entry, " ")
	return starttls.EqualFold(keyword, "AUTH") || len(keyword) >= 5 && starttls.EqualFold(keyword[:5], "AUTH=")
}

// handOff is HandOff's conn: a synthetic greeting to read, the first hello
// to answer, then res.Conn.
type handOff struct {
	*starttls.Conn
	name string
	caps *starttls.Capabilities

	mu      sync.Mutex
	pending []byte // synthetic bytes to read before the session's
	line    []byte // a command being written, until its CRLF, while armed
	done    bool   // the first hello was answered, or another command came
}

// Read returns the synthetic greeting and hello reply first, then reads
// the session.
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

// Write answers the first hello locally and passes everything else on.
func (h *handOff) Write(p []byte) (int, error) {
	h.mu.Lock()
	if h.done {
		h.mu.Unlock()
		return h.Conn.Write(p)
	}
	h.line = append(h.line, p...)
	i := bytes.IndexByte(h.line, '\n')
	if i < 0 {
		if len(h.line) > 512 {
			// No hello is this long (RFC 5321, Section 4.5.3.1.4): pass
			// it on as it is.
			return h.flush(len(p))
		}
		h.mu.Unlock()
		return len(p), nil
	}
	verb, _, _ := strings.Cut(strings.TrimRight(string(h.line[:i]), "\r"), " ")
	verb = starttls.UpperASCII(verb)
	if verb != "EHLO" && verb != "HELO" && verb != "LHLO" {
		return h.flush(len(p))
	}
	rest := h.line[i+1:]
	h.pending = append(h.pending, h.helloReply(verb)...)
	h.line = nil
	h.done = true
	h.mu.Unlock()
	if len(rest) > 0 {
		// Pipelined behind the hello: the session's business.
		if _, err := h.Conn.Write(rest); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// flush ends the interception: what was held is written to the session.
// It is called with h.mu held and releases it.
func (h *handOff) flush(n int) (int, error) {
	held := h.line
	h.line = nil
	h.done = true
	h.mu.Unlock()
	if _, err := h.Conn.Write(held); err != nil {
		return 0, err
	}
	return n, nil
}

// helloReply is the 250 reply to the first hello, from the capabilities
// discovered inside TLS (HELO gets the bare line: RFC 5321, Section 4.1.1.1).
func (h *handOff) helloReply(verb string) []byte {
	lines := []string{h.name}
	if verb != "HELO" {
		for _, e := range h.caps.List() {
			if starttls.IndexControl(e) < 0 && e != "" {
				lines = append(lines, e)
			}
		}
	}
	var b strings.Builder
	for i, l := range lines {
		b.WriteString("250")
		if i < len(lines)-1 {
			b.WriteByte('-')
		} else {
			b.WriteByte(' ')
		}
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	return []byte(b.String())
}

// TLSAuth wraps a net/smtp Auth so that it sees the truth about TLS: a
// client built on [HandOff]'s conn cannot tell it is inside TLS (net/smtp
// looks for a *tls.Conn), so PlainAuth would refuse to send the password
// to any host but localhost. TLSAuth sets ServerInfo.TLS from res: true
// only when res.TLS says a handshake completed, never for a plaintext
// session. Everything else is a's.
func TLSAuth(a netsmtp.Auth, res *starttls.Result) netsmtp.Auth {
	return &tlsAuth{Auth: a, tls: res != nil && res.TLS && !res.Plaintext && res.State.HandshakeComplete}
}

type tlsAuth struct {
	netsmtp.Auth
	tls bool
}

// Start calls the wrapped Auth's Start with TLS set as the session is.
func (a *tlsAuth) Start(server *netsmtp.ServerInfo) (string, []byte, error) {
	if server == nil {
		return "", nil, errors.New("smtp: nil ServerInfo")
	}
	info := *server
	info.TLS = a.tls
	return a.Auth.Start(&info)
}
