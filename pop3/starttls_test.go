package pop3_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/clienttest"
	"github.com/tlsup/tlsup/internal/errkind"
	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/pop3"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// The dialogue of a well-behaved server, before and after TLS.
const (
	clientGreeting = `S: +OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>`
	clientCapaSTLS = `
		C: CAPA
		S: +OK Capability list follows
		S: TOP
		S: UIDL
		S: RESP-CODES
		S: PIPELINING
		S: STLS
		S: .
	`
	clientGoAhead = `
		C: STLS
		S: +OK Begin TLS negotiation
		!tls
	`
	clientCapaAfter = `
		C: CAPA
		S: +OK Capability list follows
		S: TOP
		S: UIDL
		S: USER
		S: SASL PLAIN LOGIN
		S: .
	`
)

var (
	clientBefore = []string{"TOP", "UIDL", "RESP-CODES", "PIPELINING", "STLS"}
	clientAfter  = []string{"TOP", "UIDL", "USER", "SASL PLAIN LOGIN"}
)

// clientCase is one transcript run against pop3.Upgrade.
type clientCase struct {
	name   string
	script string
	// opts are the upgrade options; the runner sets a verifying TLSConfig
	// for scripttest.TestName when TLSConfig is nil.
	opts pop3.Options
	// serverTLS, when set, replaces the peer's certificate config.
	serverTLS func(pki *scripttest.PKI) *tls.Config
	// tcp runs the peer over loopback TCP instead of net.Pipe.
	tcp bool
	// peerFails: the script is expected to fail on the peer side (a
	// handshake the client aborts, a write after the client hung up).
	peerFails bool
	check     func(t *testing.T, tc *tls.Conn, res *starttls.Result, err error)
}

func runClientCases(t *testing.T, cases []clientCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			runClientCase(t, tt)
		})
	}
}

func runClientCase(t *testing.T, tt clientCase) {
	pki := scripttest.NewPKI(t)
	peerOpts := &scripttest.Options{TLSConfig: pki.Server()}
	if tt.serverTLS != nil {
		peerOpts.TLSConfig = tt.serverTLS(pki)
	}
	var conn net.Conn
	var peer *scripttest.Peer
	if tt.tcp {
		conn, peer = scripttest.TCP(t, tt.script, peerOpts)
	} else {
		conn, peer = scripttest.Pipe(t, tt.script, peerOpts)
	}
	opts := tt.opts
	if opts.TLSConfig == nil {
		opts.TLSConfig = pki.Client(scripttest.TestName)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tc, res, err := pop3.Upgrade(ctx, conn, &opts)
	require.NotNil(t, res, "the result is returned even on error")
	if err != nil {
		assert.Nil(t, tc, "no *tls.Conn on error")
		assert.Nil(t, res.Conn, "no session conn on error")
		clienttest.AssertClosed(t, conn)
		clienttest.AssertPrintable(t, err.Error())
	} else if tc != nil {
		t.Cleanup(func() { tc.Close() })
	}
	clienttest.AssertPrintable(t, res.Greeting)
	tt.check(t, tc, res, err)
	perr := peer.Wait()
	if !tt.peerFails {
		require.NoError(t, perr, "peer script")
	}
}

// wantSuccess checks a completed upgrade with the given capabilities.
func wantSuccess(before, after []string) func(*testing.T, *tls.Conn, *starttls.Result, error) {
	return func(t *testing.T, tc *tls.Conn, res *starttls.Result, err error) {
		require.NoError(t, err)
		require.NotNil(t, tc)
		assert.True(t, res.TLS)
		assert.False(t, res.Plaintext)
		assert.Equal(t, before, res.Before.List(), "capabilities before TLS")
		assert.Equal(t, after, res.After.List(), "capabilities after TLS")
		require.NotNil(t, res.Conn)
		assert.Equal(t, tc, res.Conn.TLS())
	}
}

// wantError checks a failed upgrade: err matches every target with
// errors.Is, fails at step, and TLS is as given.
func wantError(step starttls.Step, tlsDone bool, targets ...error) func(*testing.T, *tls.Conn, *starttls.Result, error) {
	return func(t *testing.T, tc *tls.Conn, res *starttls.Result, err error) {
		require.Error(t, err)
		for _, target := range targets {
			require.ErrorIs(t, err, target)
		}
		var e *starttls.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, "pop3", e.Protocol)
		assert.Equal(t, step, e.Step, "step of %v", err)
		assert.Equal(t, tlsDone, res.TLS, "Result.TLS")
		assert.False(t, res.Plaintext)
	}
}

// wantReply is wantError for a -ERR reply to command.
func wantReply(step starttls.Step, kind error, command, text string) func(*testing.T, *tls.Conn, *starttls.Result, error) {
	return func(t *testing.T, tc *tls.Conn, res *starttls.Result, err error) {
		wantError(step, false, kind)(t, tc, res, err)
		var re *starttls.ReplyError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, "pop3", re.Protocol)
		assert.Equal(t, command, re.Command)
		assert.Equal(t, "-ERR", re.Status)
		assert.Equal(t, 0, re.Code)
		assert.Equal(t, text, re.Text)
	}
}

// wantPlaintext checks an Opportunistic upgrade that continued without TLS.
func wantPlaintext(before []string) func(*testing.T, *tls.Conn, *starttls.Result, error) {
	return func(t *testing.T, tc *tls.Conn, res *starttls.Result, err error) {
		require.NoError(t, err)
		require.NotNil(t, tc, "a placeholder, safe to close")
		assert.False(t, tc.ConnectionState().HandshakeComplete)
		assert.True(t, res.Plaintext)
		assert.False(t, res.TLS)
		assert.Nil(t, res.After)
		assert.Equal(t, before, res.Before.List())
		require.NotNil(t, res.Conn)
		assert.Nil(t, res.Conn.TLS())
		assert.Equal(t, 0, res.Conn.Buffered())
	}
}

func TestPositiveControl(t *testing.T) {
	var transcript bytes.Buffer
	runClientCase(t, clientCase{
		script: clientGreeting + clientCapaSTLS + clientGoAhead + clientCapaAfter,
		opts:   pop3.Options{Conn: &starttls.Options{Transcript: &transcript}},
		check: func(t *testing.T, tc *tls.Conn, res *starttls.Result, err error) {
			wantSuccess(clientBefore, clientAfter)(t, tc, res, err)
			assert.Equal(t, "pop3", res.Protocol)
			assert.Equal(t, starttls.StartTLS, res.Mode)
			assert.Equal(t, starttls.Required, res.Policy)
			assert.Equal(t, "POP3 server ready <1896.697170952@dbc.mtview.ca.us>", res.Greeting)
			assert.Equal(t, scripttest.TestName, res.State.ServerName)
			assert.True(t, res.After.Has("SASL"))
			assert.Equal(t, []string{"PLAIN", "LOGIN"}, res.After.Params("SASL"))
			assert.False(t, res.After.Has("STLS"), "nothing of the CAPA before TLS is kept")
			assert.Equal(t, strings.Join([]string{
				"S: +OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>",
				"C: CAPA",
				"S: +OK Capability list follows",
				"S: TOP", "S: UIDL", "S: RESP-CODES", "S: PIPELINING", "S: STLS", "S: .",
				"C: STLS",
				"S: +OK Begin TLS negotiation",
				"-- TLS --",
				"C: CAPA",
				"S: +OK Capability list follows",
				"S: TOP", "S: UIDL", "S: USER", "S: SASL PLAIN LOGIN", "S: .",
			}, "\n")+"\n", transcript.String())
		},
	})
}

func TestStripping(t *testing.T) {
	capaStripped := `
		C: CAPA
		S: +OK Capability list follows
		S: TOP
		S: UIDL
		S: .
	`
	capaUnsupported := `
		C: CAPA
		S: -ERR unknown command
	`
	runClientCases(t, []clientCase{
		{
			name:   "STLS missing, Required: not offered, STLS not sent",
			script: clientGreeting + capaStripped + "!eof",
			check: func(t *testing.T, tc *tls.Conn, res *starttls.Result, err error) {
				wantError(starttls.StepDiscover, false, starttls.ErrNotOffered)(t, tc, res, err)
				assert.Equal(t, []string{"TOP", "UIDL"}, res.Before.List())
				assert.Equal(t, "not-offered", errkind.Of(err))
			},
		},
		{
			name:   "STLS missing, Always: STLS sent anyway",
			script: clientGreeting + capaStripped + clientGoAhead + clientCapaAfter,
			opts:   pop3.Options{Policy: starttls.Always},
			check:  wantSuccess([]string{"TOP", "UIDL"}, clientAfter),
		},
		{
			name:   "STLS missing, Opportunistic: plaintext, said loudly",
			script: clientGreeting + capaStripped,
			opts:   pop3.Options{Policy: starttls.Opportunistic},
			check:  wantPlaintext([]string{"TOP", "UIDL"}),
		},
		{
			name:   "CAPA unsupported, Required: not offered, STLS not sent",
			script: clientGreeting + capaUnsupported + "!eof",
			check: func(t *testing.T, tc *tls.Conn, res *starttls.Result, err error) {
				wantError(starttls.StepDiscover, false, starttls.ErrNotOffered)(t, tc, res, err)
				assert.Equal(t, 0, res.Before.Len())
			},
		},
		{
			name:   "CAPA unsupported, Always: STLS sent anyway",
			script: clientGreeting + capaUnsupported + clientGoAhead + clientCapaAfter,
			opts:   pop3.Options{Policy: starttls.Always},
			check:  wantSuccess(nil, clientAfter),
		},
		{
			name:   "CAPA unsupported, Opportunistic: plaintext",
			script: clientGreeting + capaUnsupported,
			opts:   pop3.Options{Policy: starttls.Opportunistic},
			check:  wantPlaintext(nil),
		},
		{
			name:   "STLS offered, Opportunistic: a refusal is still an error",
			script: clientGreeting + clientCapaSTLS + "C: STLS\nS: -ERR [SYS/TEMP] try later\n!eof",
			opts:   pop3.Options{Policy: starttls.Opportunistic},
			check:  wantReply(starttls.StepStartTLS, starttls.ErrRefused, "STLS", "[SYS/TEMP] try later"),
		},
		{
			name:      "STLS offered, Opportunistic: a failed handshake is still an error",
			script:    clientGreeting + clientCapaSTLS + clientGoAhead,
			opts:      pop3.Options{Policy: starttls.Opportunistic},
			serverTLS: selfSignedServer,
			tcp:       true,
			peerFails: true,
			check:     wantCertificateError,
		},
		{
			name: "dot-stuffed ..STLS is .STLS, not STLS",
			script: clientGreeting + `
				C: CAPA
				S: +OK
				S: ..STLS
				S: ...
				S: .
				!eof
			`,
			check: func(t *testing.T, tc *tls.Conn, res *starttls.Result, err error) {
				wantError(starttls.StepDiscover, false, starttls.ErrNotOffered)(t, tc, res, err)
				assert.Equal(t, []string{".STLS", ".."}, res.Before.List())
			},
		},
		{
			name: "STLS advertised only inside the greeting text",
			script: `
				S: +OK STLS
				C: CAPA
				S: +OK
				S: USER
				S: .
				!eof
			`,
			check: wantError(starttls.StepDiscover, false, starttls.ErrNotOffered),
		},
		{
			name: "STLS in the CAPA status line text is no capability",
			script: clientGreeting + `
				C: CAPA
				S: +OK STLS
				S: USER
				S: .
				!eof
			`,
			check: wantError(starttls.StepDiscover, false, starttls.ErrNotOffered),
		},
	})
}

func TestKeywordMatch(t *testing.T) {
	for _, tt := range []struct {
		entry string
		match bool
	}{
		{"STLS", true},
		{"stls", true},
		{"StLs", true},
		{"STLS with-a-parameter", true},
		{"XSTLS", false},
		{"STLSX", false},
		{"STLS-EXTRA", false},
		{" STLS", false},
		{"S TLS", false},
		{"STLS\t", false},
		{"\u017fTLS", false},                // LATIN SMALL LETTER LONG S: "s" only under Unicode folding
		{"\uff33\uff34\uff2c\uff33", false}, // FULLWIDTH STLS
		{"STL\xd3", false},                  // invalid UTF-8
	} {
		tc := clientCase{script: clientGreeting + "\nC: CAPA\nS: +OK\nS: " + scriptRaw(tt.entry) + "\nS: .\n"}
		if tt.match {
			tc.script += clientGoAhead + clientCapaAfter
			tc.check = wantSuccess([]string{tt.entry}, clientAfter)
		} else {
			tc.script += "!eof"
			tc.check = func(t *testing.T, c *tls.Conn, res *starttls.Result, err error) {
				wantError(starttls.StepDiscover, false, starttls.ErrNotOffered)(t, c, res, err)
				assert.Equal(t, []string{tt.entry}, res.Before.List())
			}
		}
		t.Run(fmt.Sprintf("%q", tt.entry), func(t *testing.T) { runClientCase(t, tc) })
	}
}

// scriptRaw returns a script send directive body for line as raw bytes:
// a Go-quoted string ending in CRLF.
func scriptRaw(line string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c < 0x20 || c >= 0x7f || c == '\\' || c == '"' {
			fmt.Fprintf(&b, `\x%02x`, c)
			continue
		}
		b.WriteByte(c)
	}
	b.WriteString(`\r\n"`)
	return b.String()
}

func TestRefusal(t *testing.T) {
	var cases []clientCase
	for _, text := range []string{
		"TLS not available",
		"[SYS/TEMP] TLS temporarily unavailable",
		"[SYS/PERM] TLS is not configured",
		"[IN-USE] mailbox locked",
		"",
	} {
		line := "-ERR " + text
		if text == "" {
			line = "-ERR"
		}
		cases = append(cases, clientCase{
			name:   line,
			script: clientGreeting + clientCapaSTLS + "C: STLS\nS: " + line + "\n!eof",
			check: func(t *testing.T, tc *tls.Conn, res *starttls.Result, err error) {
				wantReply(starttls.StepStartTLS, starttls.ErrRefused, "STLS", text)(t, tc, res, err)
				assert.Equal(t, "refused", errkind.Of(err))
				assert.Equal(t, clientBefore, res.Before.List())
			},
		})
	}
	for _, line := range []string{
		"+ go ahead",
		"+OKAY",
		"OK Begin TLS",
		"220 Ready to start TLS",
		"* OK begin",
		"",
		"+OK\x00",
	} {
		cases = append(cases, clientCase{
			name:   fmt.Sprintf("go-ahead %q", line),
			script: clientGreeting + clientCapaSTLS + "C: STLS\nS: " + scriptRaw(line) + "\n!eof",
			check: func(t *testing.T, tc *tls.Conn, res *starttls.Result, err error) {
				wantError(starttls.StepStartTLS, false, starttls.ErrProtocol)(t, tc, res, err)
				assert.Equal(t, "protocol", errkind.Of(err))
			},
		})
	}
	runClientCases(t, cases)
}

func TestGreeting(t *testing.T) {
	runClientCases(t, []clientCase{
		{
			name:   "APOP timestamp kept in the greeting, never trusted",
			script: clientGreeting + clientCapaSTLS + clientGoAhead + clientCapaAfter,
			check: func(t *testing.T, tc *tls.Conn, res *starttls.Result, err error) {
				wantSuccess(clientBefore, clientAfter)(t, tc, res, err)
				ts, ok := pop3.APOPTimestamp(res.Greeting)
				assert.True(t, ok)
				assert.Equal(t, "<1896.697170952@dbc.mtview.ca.us>", ts)
			},
		},
		{
			name:   "bare +OK greeting",
			script: "S: +OK\n" + clientCapaSTLS + clientGoAhead + clientCapaAfter,
			check: func(t *testing.T, tc *tls.Conn, res *starttls.Result, err error) {
				wantSuccess(clientBefore, clientAfter)(t, tc, res, err)
				assert.Equal(t, "", res.Greeting)
			},
		},
		{
			name:   "-ERR greeting",
			script: "S: -ERR [SYS/TEMP] too many connections\n!eof",
			check: func(t *testing.T, tc *tls.Conn, res *starttls.Result, err error) {
				wantReply(starttls.StepGreeting, starttls.ErrGreetingRejected, "", "[SYS/TEMP] too many connections")(t, tc, res, err)
				assert.Equal(t, "greeting-rejected", errkind.Of(err))
				assert.Equal(t, "[SYS/TEMP] too many connections", res.Greeting)
			},
		},
		{
			name:   "IMAP greeting on a POP3 port",
			script: "S: * OK IMAP4rev1 ready\n!eof",
			check:  wantError(starttls.StepGreeting, false, starttls.ErrProtocol),
		},
		{
			name:   "SMTP greeting on a POP3 port",
			script: "S: 220 mx.example.test ESMTP\n!eof",
			check:  wantError(starttls.StepGreeting, false, starttls.ErrProtocol),
		},
		{
			name:   "+OKAY",
			script: "S: +OKAY\n!eof",
			check:  wantError(starttls.StepGreeting, false, starttls.ErrProtocol),
		},
		{
			name:   "empty line",
			script: "S: \"\\r\\n\"\n!eof",
			check:  wantError(starttls.StepGreeting, false, starttls.ErrProtocol),
		},
		{
			name: "multi-line junk after the greeting, same write",
			script: `
				S: +OK POP3 ready
				S+ +OK Capability list follows
				S+ STLS
				S+ .
				!eof
			`,
			check: func(t *testing.T, tc *tls.Conn, res *starttls.Result, err error) {
				wantError(starttls.StepGreeting, false, starttls.ErrProtocol)(t, tc, res, err)
				assert.Contains(t, err.Error(), "sent with the greeting")
				assert.Nil(t, res.Before, "CAPA never sent")
			},
		},
		{
			name: "binary junk after the greeting, same write",
			script: `
				S: +OK POP3 ready
				S+ "\x16\x03\x01\x00\x05hello"
				!eof
			`,
			check: wantError(starttls.StepGreeting, false, starttls.ErrProtocol),
		},
		{
			name:      "greeting over the line bound",
			script:    "S: +OK " + strings.Repeat("x", starttls.DefaultMaxLineLength) + "\n",
			tcp:       true,
			peerFails: true, // the peer may still be writing when the client hangs up
			check:     wantError(starttls.StepGreeting, false, starttls.ErrTooLarge),
		},
	})
}

func TestEscapedPeerText(t *testing.T) {
	const evil = `\x1b[2J\x1b]0;owned\x07\r\x00\u202e`
	wantEscaped := func(inner func(*testing.T, *tls.Conn, *starttls.Result, error)) func(*testing.T, *tls.Conn, *starttls.Result, error) {
		return func(t *testing.T, tc *tls.Conn, res *starttls.Result, err error) {
			inner(t, tc, res, err)
			msg := err.Error()
			assert.NotContains(t, msg, "\x1b")
			assert.NotContains(t, msg, "\u202e")
			assert.Contains(t, msg, `\x1b[2J`, "escaped, not dropped: %s", msg)
		}
	}
	runClientCases(t, []clientCase{
		{
			name:   "-ERR greeting",
			script: `S: "-ERR ` + evil + `\r\n"` + "\n!eof",
			check: wantEscaped(func(t *testing.T, tc *tls.Conn, res *starttls.Result, err error) {
				wantError(starttls.StepGreeting, false, starttls.ErrGreetingRejected)(t, tc, res, err)
				assert.NotContains(t, res.Greeting, "\x1b")
			}),
		},
		{
			name:   "garbage greeting",
			script: `S: "` + evil + ` +OK\r\n"` + "\n!eof",
			check:  wantEscaped(wantError(starttls.StepGreeting, false, starttls.ErrProtocol)),
		},
		{
			name:   "+OK greeting with escapes, then stripped",
			script: `S: "+OK ` + evil + `\r\n"` + "\nC: CAPA\nS: +OK\nS: USER\nS: .\n!eof",
			check: func(t *testing.T, tc *tls.Conn, res *starttls.Result, err error) {
				wantError(starttls.StepDiscover, false, starttls.ErrNotOffered)(t, tc, res, err)
				assert.Equal(t, `\x1b[2J\x1b]0;owned\x07\r\x00\u202e`, res.Greeting)
			},
		},
		{
			name:   "CAPA status garbage",
			script: clientGreeting + "\nC: CAPA\n" + `S: "` + evil + `\r\n"` + "\n!eof",
			check:  wantEscaped(wantError(starttls.StepDiscover, false, starttls.ErrProtocol)),
		},
		{
			name:   "CAPA line unstuffed",
			script: clientGreeting + "\nC: CAPA\nS: +OK\n" + `S: ".` + evil + `\r\n"` + "\n!eof",
			check:  wantEscaped(wantError(starttls.StepDiscover, false, starttls.ErrProtocol)),
		},
		{
			name:   "CAPA line with CR and NUL",
			script: clientGreeting + "\nC: CAPA\nS: +OK\n" + `S: "STLS` + evil + `\r\n"` + "\nS: .\n!eof",
			check:  wantEscaped(wantError(starttls.StepDiscover, false, starttls.ErrProtocol)),
		},
		{
			name:   "STLS -ERR",
			script: clientGreeting + clientCapaSTLS + "C: STLS\n" + `S: "-ERR ` + evil + `\r\n"` + "\n!eof",
			check:  wantEscaped(wantError(starttls.StepStartTLS, false, starttls.ErrRefused)),
		},
		{
			name:   "STLS garbage",
			script: clientGreeting + clientCapaSTLS + "C: STLS\n" + `S: "+` + evil + `\r\n"` + "\n!eof",
			check:  wantEscaped(wantError(starttls.StepStartTLS, false, starttls.ErrProtocol)),
		},
	})
}

func TestInjection(t *testing.T) {
	wantInjected := func(t *testing.T, tc *tls.Conn, res *starttls.Result, err error) {
		wantError(starttls.StepStartTLS, false, starttls.ErrInjectedData)(t, tc, res, err)
		assert.Equal(t, "injected-data", errkind.Of(err))
		assert.Nil(t, res.After)
	}
	runClientCases(t, []clientCase{
		{
			name: "fake CAPA list behind the +OK",
			script: clientGreeting + clientCapaSTLS + `
				C: STLS
				S: +OK Begin TLS negotiation
				S+ +OK Capability list follows
				S+ USER
				S+ SASL PLAIN LOGIN
				S+ .
				!eof
			`,
			check: wantInjected,
		},
		{
			name: "unsolicited CAPA reply behind the CAPA reply",
			script: clientGreeting + `
				C: CAPA
				S: +OK
				S+ STLS
				S+ .
				S+ +OK
				!eof
			`,
			check: wantInjected,
		},
		{
			name: "fake CAPA behind the +OK, one byte per write",
			script: clientGreeting + clientCapaSTLS + `
				C: STLS
				!trickle
				S: +OK Begin TLS negotiation
				S+ +OK
				S+ USER
				S+ .
				!hold
			`,
			// Byte by byte, the junk may still be on its way when the
			// go-ahead line ends: then the handshake reads it as TLS and
			// fails. Either way there is no TLS.
			tcp:       true,
			peerFails: true, // the peer may still be writing when the client hangs up
			check: func(t *testing.T, tc *tls.Conn, res *starttls.Result, err error) {
				require.Error(t, err)
				if !errors.Is(err, starttls.ErrInjectedData) {
					require.ErrorIs(t, err, starttls.ErrHandshake)
				}
				assert.False(t, res.TLS)
			},
		},
	})
}

func TestBounds(t *testing.T) {
	unterminated := func(n int) string {
		var b strings.Builder
		b.WriteString(clientGreeting + "\nC: CAPA\nS: +OK\n")
		for i := 0; i < n; i++ {
			b.WriteString("S: X-CAP-" + strings.Repeat("A", i%7) + "\n")
		}
		return b.String()
	}
	runClientCases(t, []clientCase{
		{
			name:   "CAPA without terminator until the default bound",
			script: unterminated(starttls.DefaultMaxResponseLines) + "!eof",
			check: func(t *testing.T, tc *tls.Conn, res *starttls.Result, err error) {
				wantError(starttls.StepDiscover, false, starttls.ErrTooLarge)(t, tc, res, err)
				assert.Equal(t, "too-large", errkind.Of(err))
			},
		},
		{
			name:   "CAPA without terminator until a configured bound",
			script: unterminated(10) + "!eof",
			opts:   pop3.Options{Conn: &starttls.Options{MaxResponseLines: 10}},
			check:  wantError(starttls.StepDiscover, false, starttls.ErrTooLarge),
		},
		{
			name:   "CAPA at the configured bound, terminator included",
			script: unterminated(9) + "S: STLS\nS: .\n" + clientGoAhead + clientCapaAfter,
			opts:   pop3.Options{Conn: &starttls.Options{MaxResponseLines: 11}},
			check: func(t *testing.T, tc *tls.Conn, res *starttls.Result, err error) {
				require.NoError(t, err)
				assert.Equal(t, 10, res.Before.Len())
			},
		},
		{
			name:      "CAPA line over the line bound",
			script:    clientGreeting + "\nC: CAPA\nS: +OK\nS: X-" + strings.Repeat("A", starttls.DefaultMaxLineLength) + "\n",
			tcp:       true,
			peerFails: true, // the peer may still be writing when the client hangs up
			check:     wantError(starttls.StepDiscover, false, starttls.ErrTooLarge),
		},
		{
			name:   "CAPA after TLS without terminator",
			script: clientGreeting + clientCapaSTLS + clientGoAhead + strings.TrimPrefix(unterminated(10), clientGreeting+"\n") + "!eof",
			opts:   pop3.Options{Conn: &starttls.Options{MaxResponseLines: 10}},
			check:  wantError(starttls.StepRediscover, true, starttls.ErrTooLarge),
		},
	})
}

func selfSignedServer(*scripttest.PKI) *tls.Config {
	cert, err := tlsconf.SelfSigned(scripttest.TestName)
	if err != nil {
		panic(err)
	}
	return scripttest.ServerWith(cert)
}

func wantCertificateError(t *testing.T, tc *tls.Conn, res *starttls.Result, err error) {
	wantError(starttls.StepHandshake, false, starttls.ErrHandshake)(t, tc, res, err)
	var verr *tls.CertificateVerificationError
	require.ErrorAs(t, err, &verr)
	assert.Equal(t, "certificate", errkind.Of(err))
	assert.Nil(t, res.After)
}

// TestImplicitRefusals: POP3's refusals inside implicit TLS. (The
// implicit mode itself is a case of the conformance suite.)
func TestImplicitRefusals(t *testing.T) {
	runClientCases(t, []clientCase{
		{
			name:   "-ERR greeting inside TLS",
			script: "!tls\nS: -ERR [SYS/TEMP] busy\n!eof",
			opts:   pop3.Options{Mode: starttls.Implicit},
			check:  wantError(starttls.StepGreeting, true, starttls.ErrGreetingRejected),
		},
		{
			name:   "CAPA -ERR inside TLS is a refusal",
			script: "!tls\n" + clientGreeting + "\nC: CAPA\nS: -ERR no\n!eof",
			opts:   pop3.Options{Mode: starttls.Implicit},
			check:  wantError(starttls.StepRediscover, true, starttls.ErrRefused),
		},
	})
}
