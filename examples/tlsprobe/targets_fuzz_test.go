package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/starttls"
)

// commonFlags are the common flags FuzzReadTargets picks from.
var commonFlags = [][]string{nil, {"-protocol", "imap"}, {"-mode", "implicit"}, {"-insecure"}, {"-mode", "starttls", "-protocol", "sieve"}}

// FuzzReadTargets feeds arbitrary targets files to readTargets and checks
// the contract ("Many targets"): blank lines and # comments are skipped
// and every other line is one target, in order, as given (trimmed), or the
// whole file is a usage error whose text has no control character; every
// target has a protocol the probe knows, with the Upgrader of that
// protocol, and a host:port with a port from 1 to 65535; a scheme sets the
// protocol (in ASCII case only), imaps, smtps and pop3s implicit mode; a
// line without a scheme takes -protocol or the one protocol of its port;
// a line never sets a flag (no -insecure unless given).
func FuzzReadTargets(f *testing.F) {
	for _, file := range []string{
		"# a fleet\nsmtp://127.0.0.1:2525\n\nSMTP://127.0.0.1:2526\n",
		"imaps://mail.example.test\npop3://mail.example.test\nsmtps://[::1]\n",
		"gopher://127.0.0.1:70\n", "127.0.0.1:12345\n", "# nothing\n", "",
		"sieve://mail.example.test\nxmpp://example.test:5222/\npostgresql://db.example.test\nldaps://[2001:db8::1]:636\n",
		"mail.example.test:993\r\n  nntps://news.example.test  \r\n\t# tab comment\n",
		"smtp://-insecure\n-insecure\nsmtp://host:25 # comment\n",
		"\u0130MAPS://mail.example.test\n", "smtp://\x1b[2J\n", "-\x1b[2J\n",
	} {
		for i := range commonFlags {
			f.Add([]byte(file), byte(i))
		}
	}
	f.Fuzz(func(t *testing.T, file []byte, pick byte) {
		common := commonFlags[int(pick)%len(commonFlags)]
		targets, err := readTargets(bytes.NewReader(file), common, io.Discard)
		if err != nil {
			var u usageError
			require.True(t, errors.As(err, &u), "a usage error: %T %v", err, err)
			require.Equal(t, -1, strings.IndexFunc(err.Error(), unicode.IsControl), "no control character in %q", err.Error())
			return
		}
		var lines []string
		sc := bufio.NewScanner(bytes.NewReader(file))
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
				lines = append(lines, l)
			}
		}
		require.NotEmpty(t, targets)
		require.Len(t, targets, len(lines), "one target a line")
		commonProtocol := ""
		if i := slices.Index(common, "-protocol"); i >= 0 {
			commonProtocol = common[i+1]
		}
		known := protocols()
		for i, tg := range targets {
			p := tg.probe
			require.Equal(t, lines[i], tg.line, "input order, the line as given")
			_, ok := known[p.protocol]
			require.True(t, ok, "line %q: protocol %q unknown", tg.line, p.protocol)
			require.Equal(t, p.protocol, p.upgrader.Protocol())
			host, port, err := net.SplitHostPort(p.address)
			require.NoError(t, err, "address %q", p.address)
			require.NotEmpty(t, host)
			require.Equal(t, p.host, host)
			n, err := strconv.Atoi(port)
			require.NoError(t, err)
			require.True(t, n >= 1 && n <= 65535, "port %d", n)
			require.Equal(t, slices.Contains(common, "-insecure"), p.tlsConfig.InsecureSkipVerify, "line %q set a flag", tg.line)

			scheme, _, hasScheme := strings.Cut(tg.line, "://")
			if hasScheme {
				lower := asciiLower(scheme)
				want, implicit := lower, false
				if s, ok := schemes[lower]; ok {
					want, implicit = s.protocol, s.implicit
				}
				require.Equal(t, want, p.protocol, "the scheme %q sets the protocol", scheme)
				if implicit {
					require.Equal(t, starttls.Implicit, p.mode)
				}
				if lower == "imaps" || lower == "smtps" || lower == "pop3s" {
					require.Equal(t, starttls.Implicit, p.mode, "%s:// means implicit mode", lower)
				}
				continue
			}
			if commonProtocol != "" {
				require.Equal(t, commonProtocol, p.protocol)
				continue
			}
			var owners []string
			for name, e := range known {
				if e.implicit == n || slices.Contains(e.ports, n) {
					owners = append(owners, name)
				}
			}
			require.Equal(t, []string{p.protocol}, owners, "the one protocol of port %d", n)
		}
	})
}

// asciiLower lower-cases ASCII letters only.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}
