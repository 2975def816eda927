package smtp_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
)

// beforeTLSMark is a capability only ever seen before TLS in
// FuzzHandOff: it must never reach the synthetic replies of a TLS
// session.
const beforeTLSMark = "X-SEEN-BEFORE-TLS"

// FuzzHandOff drives HandOff's conn with arbitrary capabilities, server
// name, client writes (cut into arbitrary chunks) and server bytes, and
// checks its contract: the writes reach the session byte for byte, except
// the first line when, and only when, it is a hello (EHLO, HELO, LHLO)
// answered locally; the reads are the synthetic greeting, that answer,
// then the session's bytes (those its line reader holds first); every
// synthetic line is one CRLF-terminated line with no control character,
// built from the capabilities the session may show (res.After, or
// res.Before without AUTH for a plaintext session), never from before TLS.
//
// caps holds the capability entries separated by NUL (a NUL inside an
// entry is a control character, as CR and LF are); cuts gives the chunk
// sizes of the writes, one byte each.
func FuzzHandOff(f *testing.F) {
	f.Add("SIZE 52428800\x00AUTH PLAIN LOGIN", scripttest.TestName, false, []byte("EHLO localhost\r\nAUTH PLAIN AHVzZXIAc2VjcmV0\r\n"), []byte{}, []byte("235 2.7.0 Authentication successful\r\n"))
	f.Add("PIPELINING\x00SIZE 1000", "mx.example.test", false, []byte("EHLO client.example.test\r\nNOOP\r\n"), []byte{3, 9}, []byte("250 2.0.0 Ok\r\n"))
	f.Add("AUTH PLAIN LOGIN\x00SIZE 1000\x00auth=login", "", true, []byte("ehlo x\r\nQUIT\r\n"), []byte{1}, []byte("221 2.0.0 Bye\r\n"))
	f.Add("8BITMIME\x00X\r\n250 FAKE\x00\x7f", "bad name\r\n", false, []byte("HELO x\r\n"), []byte{}, []byte{})
	f.Add("STARTTLS", scripttest.TestName, false, []byte("NOOP\r\nEHLO x\r\n"), []byte{}, []byte("250 2.0.0 Ok\r\n250 mx\r\n"))
	f.Add("", "mx.example.test", false, []byte("LHLO x"), []byte{}, []byte{})
	f.Add("SIZE", "mx.example.test", false, bytes.Repeat([]byte("x"), 600), []byte{255, 255, 255}, []byte{})
	f.Add("CHUNKING", "mx", false, []byte("MAIL FROM:<a@example.test>\r\n"), []byte{}, []byte("250 2.1.0 Ok\r\n"))
	f.Add("DSN\x00ENHANCEDSTATUSCODES", "m\u00e9l.example.test", true, []byte("EHLO\r\n\r\n"), []byte{0, 0, 0}, []byte("500 5.5.2 Error\r\n"))

	f.Fuzz(func(t *testing.T, caps, serverName string, plaintext bool, writes, cuts, server []byte) {
		entries := starttls.NewCapabilities()
		if caps != "" {
			entries = starttls.NewCapabilities(strings.Split(caps, "\x00")...)
		}
		fc := scripttest.NewFakeConn(server)
		conn := starttls.NewConn(fc, nil)
		res := &starttls.Result{Conn: conn, State: tls.ConnectionState{ServerName: serverName}}
		if plaintext {
			res.Plaintext, res.Before = true, entries
		} else {
			res.TLS, res.State.HandshakeComplete = true, true
			res.Before, res.After = starttls.NewCapabilities(beforeTLSMark, "STARTTLS"), entries
		}
		// A byte read ahead puts the rest of the session's bytes in the
		// line reader's buffer: the conn must read them from there.
		wantServer := server
		if len(server) > 0 {
			b, err := conn.ReadByte()
			require.NoError(t, err)
			require.Equal(t, server[0], b)
			wantServer = server[1:]
		}
		h := smtp.HandOff(res)
		require.NotNil(t, h)

		chunks := cutWrites(writes, cuts)
		for _, c := range chunks {
			n, err := h.Write(c)
			require.NoError(t, err)
			require.Equal(t, len(c), n, "a Write reports all of its bytes")
		}
		var got []byte
		buf := make([]byte, 7) // small: the synthetic bytes come in pieces
		for i := 0; ; i++ {
			require.Less(t, i, 1+(len(writes)+len(caps)+len(serverName)+len(server))*4+1000, "reads must end")
			n, err := h.Read(buf)
			got = append(got, buf[:n]...)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
		}

		// Which first line, if any, is answered locally.
		all := bytes.Join(chunks, nil)
		verb, answered := firstHello(chunks)
		written := fc.Written()
		switch {
		case answered:
			lf := bytes.IndexByte(all, '\n')
			require.Equal(t, string(all[lf+1:]), string(written), "everything behind the hello reaches the session, byte for byte")
		case bytes.IndexByte(all, '\n') < 0 && len(all) <= 512:
			require.Empty(t, written, "an unfinished first line is held")
		default:
			require.Equal(t, string(all), string(written), "a first line that is no hello reaches the session, byte for byte")
		}

		name := serverName
		if name == "" || strings.ContainsAny(name, " \x7f") || strings.IndexFunc(name, func(r rune) bool { return r < 0x20 }) >= 0 {
			name = "localhost"
		}
		how := "after STARTTLS"
		if plaintext {
			how = "without TLS"
		}
		greeting := "220 " + name + " ESMTP session continued " + how + "\r\n"
		require.True(t, strings.HasPrefix(string(got), greeting), "greeting: got %q, want %q", got, greeting)
		rest := got[len(greeting):]
		require.True(t, bytes.HasSuffix(rest, wantServer), "the session's bytes come last, as sent")
		reply := string(rest[:len(rest)-len(wantServer)])
		if !answered {
			require.Empty(t, reply, "nothing but a hello is answered locally")
			return
		}
		lines := strings.SplitAfter(reply, "\r\n")
		require.Equal(t, "", lines[len(lines)-1], "the reply ends in CRLF: %q", reply)
		lines = lines[:len(lines)-1]
		var texts []string
		for i, l := range lines {
			l = strings.TrimSuffix(l, "\r\n")
			require.Equal(t, -1, starttls.IndexControl(l), "no control character in %q", l)
			sep := "-"
			if i == len(lines)-1 {
				sep = " "
			}
			text, ok := strings.CutPrefix(l, "250"+sep)
			require.True(t, ok, "line %d of the reply: %q", i, l)
			texts = append(texts, text)
		}
		require.Equal(t, name, texts[0], "the first line names the server")
		want := []string{}
		if verb != "HELO" {
			for _, e := range entries.List() {
				if e == "" || starttls.IndexControl(e) >= 0 {
					continue
				}
				if plaintext && isAuthEntry(e) {
					continue
				}
				want = append(want, e)
			}
		}
		require.Equal(t, want, texts[1:], "the reply lists what the session may show")
		if !plaintext && !strings.Contains(caps, beforeTLSMark) {
			require.NotContains(t, reply, beforeTLSMark, "nothing from before TLS")
		}
	})
}

// isAuthEntry reports whether a capability entry offers authentication,
// in either form a client may read: "AUTH mechs" (RFC 4954) or the
// pre-standard "AUTH=mechs" some servers still send.
func isAuthEntry(e string) bool {
	keyword, _, _ := strings.Cut(e, " ")
	return starttls.EqualFold(keyword, "AUTH") || len(keyword) >= 5 && starttls.EqualFold(keyword[:5], "AUTH=")
}

// cutWrites cuts writes into chunks of the sizes in cuts (1 to 64 bytes
// each), the rest in one last chunk.
func cutWrites(writes, cuts []byte) [][]byte {
	var chunks [][]byte
	for _, c := range cuts {
		if len(writes) == 0 {
			break
		}
		n := min(int(c)%64+1, len(writes))
		chunks = append(chunks, writes[:n])
		writes = writes[n:]
	}
	if len(writes) > 0 {
		chunks = append(chunks, writes)
	}
	return chunks
}

// firstHello says whether HandOff must answer the first line written in
// chunks locally, and with which verb: its first line is a hello (EHLO,
// HELO or LHLO, any case, CRs before the LF ignored), and it was still
// held when its LF came (a first line past 512 bytes without an LF is
// passed on: no hello is that long).
func firstHello(chunks [][]byte) (verb string, ok bool) {
	held := 0
	for _, c := range chunks {
		i := bytes.IndexByte(c, '\n')
		if i < 0 {
			if held += len(c); held > 512 {
				return "", false
			}
			continue
		}
		line := strings.TrimRight(string(bytes.Join(chunks, nil)[:held+i]), "\r")
		verb, _, _ = strings.Cut(line, " ")
		verb = starttls.UpperASCII(verb)
		return verb, verb == "EHLO" || verb == "HELO" || verb == "LHLO"
	}
	return "", false
}
