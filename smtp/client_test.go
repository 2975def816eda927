package smtp_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/errkind"
	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
)

// The dialogue up to the STARTTLS go-ahead, shared by many scripts.
const toGoAhead = `
	S: 220 mx.example.test ESMTP ready
	C: EHLO localhost
	S: 250-mx.example.test
	S: 250-PIPELINING
	S: 250 STARTTLS
	C: STARTTLS
	S: 220 2.0.0 Ready to start TLS
`

// The dialogue inside TLS after the go-ahead, shared by many scripts.
const afterTLS = `
	!tls
	C: EHLO localhost
	S: 250-mx.example.test
	S: 250-SIZE 52428800
	S: 250 AUTH PLAIN LOGIN
`

// outcome is what one run of smtp.Upgrade against a script gave.
type outcome struct {
	tc   *tls.Conn
	res  *starttls.Result
	err  error
	peer *scripttest.Peer
}

// setup describes one run: the transport and the client's options.
type setup struct {
	tcp  bool
	opts *smtp.Options // zero: the PKI's client config for TestName
}

// upgrade runs smtp.Upgrade against script and closes the returned
// *tls.Conn at the end of the test. The caller checks the peer's verdict.
func upgrade(t *testing.T, pki *scripttest.PKI, script string, s setup) outcome {
	t.Helper()
	opts := smtp.Options{}
	if s.opts != nil {
		opts = *s.opts
	}
	if opts.TLSConfig == nil {
		opts.TLSConfig = pki.Client(scripttest.TestName)
	}
	peerOpts := &scripttest.Options{TLSConfig: pki.Server()}
	var conn net.Conn
	var peer *scripttest.Peer
	if s.tcp {
		conn, peer = scripttest.TCP(t, script, peerOpts)
	} else {
		conn, peer = scripttest.Pipe(t, script, peerOpts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tc, res, err := smtp.Upgrade(ctx, conn, &opts)
	if tc != nil {
		t.Cleanup(func() { tc.Close() })
	}
	require.NotNil(t, res, "a result is returned even on error")
	return outcome{tc: tc, res: res, err: err, peer: peer}
}

// requireFailed checks the common shape of a failed upgrade: an
// *starttls.Error, no conn, no session, the kind, and peer text escaped.
func requireFailed(t *testing.T, o outcome, kind string) {
	t.Helper()
	require.Error(t, o.err)
	var e *starttls.Error
	require.ErrorAs(t, o.err, &e, "got %T %v, want a *starttls.Error", o.err, o.err)
	assert.Nil(t, o.tc)
	assert.Nil(t, o.res.Conn, "no session conn on error")
	assert.Equal(t, kind, errkind.Of(o.err), "kind of %v", o.err)
	requireEscaped(t, o.err.Error())
}

// requireEscaped fails when s holds a control character or invalid UTF-8.
func requireEscaped(t *testing.T, s string) {
	t.Helper()
	for i := 0; i < len(s); i++ {
		require.False(t, s[i] < 0x20 || s[i] == 0x7f, "control byte %#x at %d in %q", s[i], i, s)
	}
	require.True(t, strings.ToValidUTF8(s, "?") == s, "invalid UTF-8 in %q", s)
}

func TestUpgradeLMTP(t *testing.T) {
	pki := scripttest.NewPKI(t)
	o := upgrade(t, pki, `
		S: 220 lmtp.example.test LMTP ready
		C: LHLO client.example.test
		S: 250-lmtp.example.test
		S: 250-PIPELINING
		S: 250 STARTTLS
		C: STARTTLS
		S: 220 2.0.0 go ahead
		!tls
		C: LHLO client.example.test
		S: 250-lmtp.example.test
		S: 250 ENHANCEDSTATUSCODES
	`, setup{opts: &smtp.Options{LMTP: true, LocalName: "client.example.test"}})
	require.NoError(t, o.err)
	require.NoError(t, o.peer.Wait())
	assert.Equal(t, "lmtp", o.res.Protocol)
	assert.True(t, o.res.TLS)
	assert.Equal(t, []string{"ENHANCEDSTATUSCODES"}, o.res.After.List())
}

// TestStripped: a man in the middle removes STARTTLS from the EHLO reply.
func TestStripped(t *testing.T) {
	const stripped = `
		S: 220 mx.example.test ESMTP ready
		C: EHLO localhost
		S: 250-mx.example.test
		S: 250-PIPELINING
		S: 250 SIZE 10240000
	`
	const refused = `
		S: 220 mx.example.test ESMTP ready
		C: EHLO localhost
		S: 502 5.5.2 EHLO not implemented
	`
	const quit = `
		C: QUIT
		S: 221 2.0.0 bye
	`
	for _, tc := range []struct {
		name   string
		policy starttls.Policy
		script string
	}{
		// Required: STARTTLS must not be sent, and the conn is closed.
		{"stripped/required", starttls.Required, stripped + "!eof"},
		// Always: sent anyway, which defeats the stripping.
		{"stripped/always", starttls.Always, stripped + "C: STARTTLS\nS: 220 go ahead\n" + afterTLS},
		// Opportunistic: continues in plaintext, and says so.
		{"stripped/opportunistic", starttls.Opportunistic, stripped + quit},
		// EHLO refused: no extension can have been offered.
		{"ehlo-5xx/required", starttls.Required, refused + "!eof"},
		{"ehlo-5xx/always", starttls.Always, refused + "C: STARTTLS\nS: 220 go ahead\n" + afterTLS},
		{"ehlo-5xx/opportunistic", starttls.Opportunistic, refused + quit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			o := upgrade(t, pki, tc.script, setup{opts: &smtp.Options{Policy: tc.policy}})
			assert.Equal(t, tc.policy, o.res.Policy)
			switch tc.policy {
			case starttls.Required:
				requireFailed(t, o, "not-offered")
				require.ErrorIs(t, o.err, starttls.ErrNotOffered)
				assert.False(t, o.res.TLS)
			case starttls.Always:
				require.NoError(t, o.err)
				assert.True(t, o.res.TLS)
				assert.False(t, o.res.Plaintext)
				assert.Equal(t, []string{"SIZE 52428800", "AUTH PLAIN LOGIN"}, o.res.After.List())
			case starttls.Opportunistic:
				require.NoError(t, o.err)
				assert.Nil(t, o.tc)
				assert.False(t, o.res.TLS)
				assert.True(t, o.res.Plaintext, "the result must say plaintext")
				assert.Nil(t, o.res.After)
				require.NotNil(t, o.res.Conn, "the plaintext session continues on Result.Conn")
				assert.Nil(t, o.res.Conn.TLS())
				require.NoError(t, o.res.Conn.WriteLine("QUIT"))
				r, err := smtp.ReadReply(o.res.Conn)
				require.NoError(t, err)
				assert.Equal(t, 221, r.Code)
				o.res.Conn.Close()
			}
			require.NoError(t, o.peer.Wait())
		})
	}
}

// TestOpportunisticAdvertisedThenFails: once STARTTLS is advertised, a
// failure is an error even under Opportunistic.
func TestOpportunisticAdvertisedThenFails(t *testing.T) {
	pki := scripttest.NewPKI(t)
	o := upgrade(t, pki, `
		S: 220 mx.example.test ESMTP ready
		C: EHLO localhost
		S: 250-mx.example.test
		S: 250 STARTTLS
		C: STARTTLS
		S: 454 4.7.0 TLS not available
		!eof
	`, setup{opts: &smtp.Options{Policy: starttls.Opportunistic}})
	requireFailed(t, o, "refused")
	assert.False(t, o.res.Plaintext)
	require.NoError(t, o.peer.Wait())
}

func TestStartTLSRefused(t *testing.T) {
	for _, tc := range []struct {
		reply string // as sent, Go-quoted
		code  int
		text  string
	}{
		{`"454 4.7.0 TLS not available due to temporary reason\r\n"`, 454, "4.7.0 TLS not available due to temporary reason"},
		{`"501 5.5.4 Syntax error\r\n"`, 501, "5.5.4 Syntax error"},
		{`"421 4.3.2 Service shutting down\r\n"`, 421, "4.3.2 Service shutting down"},
		{`"554 5.7.0 \x1b[31mno TLS\x1b[0m for you\r\n"`, 554, `5.7.0 \x1b[31mno TLS\x1b[0m for you`},
		{`"454-4.7.0 first line\r\n454 4.7.0 second line\r\n"`, 454, "4.7.0 first line"},
		{`"221 2.0.0 closing\r\n"`, 221, "2.0.0 closing"},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			o := upgrade(t, pki, `
				S: 220 mx.example.test ESMTP ready
				C: EHLO localhost
				S: 250-mx.example.test
				S: 250 STARTTLS
				C: STARTTLS
				S: `+tc.reply+`
				!eof
			`, setup{})
			requireFailed(t, o, "refused")
			require.ErrorIs(t, o.err, starttls.ErrRefused)
			var re *starttls.ReplyError
			require.ErrorAs(t, o.err, &re)
			assert.Equal(t, tc.code, re.Code)
			assert.Equal(t, tc.text, re.Text)
			assert.Equal(t, "STARTTLS", re.Command)
			assert.Equal(t, "smtp", re.Protocol)
			require.NoError(t, o.peer.Wait())
		})
	}
}

// TestStartTLSNotGoAhead: only 220 starts TLS.
func TestStartTLSNotGoAhead(t *testing.T) {
	for _, reply := range []string{"250 2.0.0 OK", "354 go ahead", "334 VXNlcm5hbWU6"} {
		t.Run(reply[:3], func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			script := `
				S: 220 mx.example.test ESMTP ready
				C: EHLO localhost
				S: 250-mx.example.test
				S: 250 STARTTLS
				C: STARTTLS
				S: ` + reply + `
				!eof
			`
			o := upgrade(t, pki, script, setup{})
			requireFailed(t, o, "protocol")
			require.ErrorIs(t, o.err, starttls.ErrProtocol)
			require.NoError(t, o.peer.Wait())
		})
	}
}

// TestUnsolicitedBeforeStartTLS: a reply pipelined ahead of the STARTTLS
// command could be taken as its go-ahead; STARTTLS is not sent.
func TestUnsolicitedBeforeStartTLS(t *testing.T) {
	pki := scripttest.NewPKI(t)
	o := upgrade(t, pki, `
		S: 220 mx.example.test ESMTP ready
		C: EHLO localhost
		S: 250-mx.example.test
		S: 250 STARTTLS
		S+ 220 2.0.0 Ready to start TLS
		!eof
	`, setup{})
	requireFailed(t, o, "injected-data")
	require.NoError(t, o.peer.Wait())
}

// TestStartTLSAdvertisedAfterTLS: a STARTTLS keyword inside TLS is ignored.
func TestStartTLSAdvertisedAfterTLS(t *testing.T) {
	pki := scripttest.NewPKI(t)
	o := upgrade(t, pki, toGoAhead+`
		!tls
		C: EHLO localhost
		S: 250-mx.example.test
		S: 250-STARTTLS
		S: 250 AUTH PLAIN
		!eof
	`, setup{})
	require.NoError(t, o.err)
	assert.True(t, o.res.TLS)
	assert.True(t, o.res.After.Has("STARTTLS"), "reported as sent")
	require.NotNil(t, o.tc)
	require.NoError(t, o.tc.Close())
	require.NoError(t, o.peer.Wait(), "no second STARTTLS may be sent")
}

// TestStaleCapabilities: RFC 3207, Section 4.2: nothing learned before TLS
// survives it.
func TestStaleCapabilities(t *testing.T) {
	pki := scripttest.NewPKI(t)
	o := upgrade(t, pki, `
		S: 220 mx.example.test ESMTP ready
		C: EHLO localhost
		S: 250-mx.example.test
		S: 250-SIZE 1000
		S: 250-AUTH PLAIN LOGIN CRAM-MD5
		S: 250-8BITMIME
		S: 250 STARTTLS
		C: STARTTLS
		S: 220 go ahead
		!tls
		C: EHLO localhost
		S: 250-mx.example.test
		S: 250-SIZE 52428800
		S: 250 AUTH SCRAM-SHA-256
	`, setup{})
	require.NoError(t, o.err)
	require.NoError(t, o.peer.Wait())
	size, ok := o.res.After.Get("size")
	require.True(t, ok)
	assert.Equal(t, "52428800", size)
	assert.Equal(t, []string{"SCRAM-SHA-256"}, o.res.After.Params("AUTH"))
	assert.False(t, o.res.After.Has("8BITMIME"))
	assert.False(t, o.res.After.Has("STARTTLS"))
	for _, e := range o.res.Before.List() {
		assert.NotContains(t, o.res.After.List(), e, "entry from before TLS found after it")
	}
	before, ok := o.res.Before.Get("SIZE")
	assert.True(t, ok)
	assert.Equal(t, "1000", before, "Before is kept for diagnosis")
}

func TestTooLarge(t *testing.T) {
	huge := strings.Repeat("x", 1<<20)
	var endless strings.Builder
	endless.WriteString("S: 220 mx.example.test ESMTP\nC: EHLO localhost\nS: 250-mx.example.test\n")
	for i := range 1500 {
		fmt.Fprintf(&endless, "S: 250-X-EXT%d\n", i)
	}
	for _, tc := range []struct {
		name   string
		script string
		conn   *starttls.Options
		tcp    bool
	}{
		{"greeting-1MiB", "S: 220 " + huge, nil, false},
		{"greeting-1MiB/tcp", "S: 220 " + huge, nil, true},
		{"greeting-1MiB-no-newline", `S: "220 ` + huge + `"`, nil, false},
		{"ehlo-line-1MiB", "S: 220 mx.example.test ESMTP\nC: EHLO localhost\nS: 250-" + huge, nil, false},
		{"endless-continuation", endless.String(), nil, false},
		{"line-over-bound", "S: 220 " + strings.Repeat("y", 65), &starttls.Options{MaxLineLength: 64}, false},
		{"lines-over-bound", `
			S: 220 mx.example.test ESMTP
			C: EHLO localhost
			S: 250-mx.example.test
			S: 250-A
			S: 250-B
			S: 250 STARTTLS
		`, &starttls.Options{MaxResponseLines: 3}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			o := upgrade(t, pki, tc.script, setup{tcp: tc.tcp, opts: &smtp.Options{Conn: tc.conn}})
			requireFailed(t, o, "too-large")
			require.ErrorIs(t, o.err, starttls.ErrTooLarge)
			o.peer.Wait() // the peer's write may fail: the client stopped reading
		})
	}
}

// TestWithinBounds: the largest line and response the bounds allow pass.
func TestWithinBounds(t *testing.T) {
	pki := scripttest.NewPKI(t)
	var script strings.Builder
	script.WriteString("S: 220 " + strings.Repeat("g", starttls.DefaultMaxLineLength-4) + "\n")
	script.WriteString("C: EHLO localhost\nS: 250-mx.example.test\n")
	for i := range starttls.DefaultMaxResponseLines - 2 {
		fmt.Fprintf(&script, "S: 250-X-EXT%d\n", i)
	}
	script.WriteString("S: 250 STARTTLS\n")
	o := upgrade(t, pki, script.String()+"C: STARTTLS\nS: 220 go\n"+afterTLS, setup{})
	require.NoError(t, o.err)
	require.NoError(t, o.peer.Wait())
	assert.Equal(t, starttls.DefaultMaxResponseLines-1, o.res.Before.Len())
}

// TestKeywordLookalikes: only the whole keyword, ASCII case folded, is
// STARTTLS.
func TestKeywordLookalikes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		entry string // Go-quoted
		is    bool
	}{
		{"nul", `"STARTTLS\x00"`, false},
		{"nul-inside", `"START\x00TLS"`, false},
		{"prefix", `"XSTARTTLS"`, false},
		{"suffix", `"STARTTLSX"`, false},
		{"long-s", `"ſTARTTLS"`, false},
		{"kelvin", `"STARTTLS\u212a"`, false},
		{"invalid-utf8", `"STARTTLS\xff"`, false},
		{"invalid-utf8-inside", `"STAR\xc0TTLS"`, false},
		{"tab", `"STARTTLS\tX"`, false},
		{"cr", `"STARTTLS\r"`, false},
		{"lower", `"starttls"`, true},
		{"mixed", `"StartTls"`, true},
		{"with-parameter", `"STARTTLS REQUIRED"`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			script := `
				S: 220 mx.example.test ESMTP
				C: EHLO localhost
				S: 250-mx.example.test
				S: "250 ` + tc.entry[1:len(tc.entry)-1] + `\r\n"
			`
			if tc.is {
				script += "C: STARTTLS\nS: 220 go\n" + afterTLS
			} else {
				script += "!eof"
			}
			o := upgrade(t, pki, script, setup{})
			if tc.is {
				require.NoError(t, o.err)
				assert.True(t, o.res.TLS)
			} else {
				requireFailed(t, o, "not-offered")
				require.ErrorIs(t, o.err, starttls.ErrNotOffered)
				assert.Equal(t, 1, o.res.Before.Len(), "the entry is kept as sent")
			}
			require.NoError(t, o.peer.Wait())
		})
	}
}

// TestMalformedReplies: replies that break RFC 5321, Section 4.2.
func TestMalformedReplies(t *testing.T) {
	const greeted = "S: 220 mx.example.test ESMTP\nC: EHLO localhost\n"
	for _, tc := range []struct {
		name, script string
		step         starttls.Step
	}{
		{"greeting-mismatched-codes", "S: 220-mx.example.test\nS: 250 ESMTP", starttls.StepGreeting},
		{"greeting-other-code", "S: 250 mx.example.test", starttls.StepGreeting},
		{"greeting-code-too-low", "S: 199 hello", starttls.StepGreeting},
		{"greeting-code-too-high", "S: 600 hello", starttls.StepGreeting},
		{"greeting-not-digits", "S: 2x0 hello", starttls.StepGreeting},
		{"greeting-short", "S: 22", starttls.StepGreeting},
		{"greeting-bad-separator", "S: 220+mx.example.test", starttls.StepGreeting},
		{"greeting-empty-line", `S: "\r\n"`, starttls.StepGreeting},
		{"greeting-banner", "S: SSH-2.0-OpenSSH_9.6", starttls.StepGreeting},
		{"ehlo-mismatched-codes", greeted + "S: 250-mx.example.test\nS: 251 STARTTLS", starttls.StepDiscover},
		{"ehlo-mismatched-4xx", greeted + "S: 250-mx.example.test\nS: 450 STARTTLS", starttls.StepDiscover},
		{"ehlo-other-2xx", greeted + "S: 220 mx.example.test", starttls.StepDiscover},
		{"ehlo-3xx", greeted + "S: 354 STARTTLS", starttls.StepDiscover},
		{"ehlo-garbage-line", greeted + "S: 250-mx.example.test\nS: STARTTLS", starttls.StepDiscover},
		{"starttls-mismatched", greeted + "S: 250-mx.example.test\nS: 250 STARTTLS\nC: STARTTLS\nS: 220-ready\nS: 250 ok", starttls.StepStartTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			o := upgrade(t, pki, tc.script+"\n!eof", setup{})
			requireFailed(t, o, "protocol")
			require.ErrorIs(t, o.err, starttls.ErrProtocol)
			var e *starttls.Error
			require.ErrorAs(t, o.err, &e)
			assert.Equal(t, tc.step, e.Step)
			require.NoError(t, o.peer.Wait())
		})
	}
}

func TestGreetingRejected(t *testing.T) {
	for _, tc := range []struct {
		script string
		code   int
		text   string
	}{
		{"S: 554 5.3.2 mx.example.test no SMTP service here", 554, "5.3.2 mx.example.test no SMTP service here"},
		{"S: 421 4.3.2 too busy", 421, "4.3.2 too busy"},
		{"S: 554-mx.example.test\nS: 554 go away", 554, "mx.example.test"},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			o := upgrade(t, pki, tc.script+"\n!eof", setup{})
			requireFailed(t, o, "greeting-rejected")
			require.ErrorIs(t, o.err, starttls.ErrGreetingRejected)
			require.NotErrorIs(t, o.err, starttls.ErrRefused)
			var re *starttls.ReplyError
			require.ErrorAs(t, o.err, &re)
			assert.Equal(t, tc.code, re.Code)
			assert.Equal(t, tc.text, re.Text)
			assert.Equal(t, tc.text, o.res.Greeting)
			require.NoError(t, o.peer.Wait())
		})
	}
}

// TestBareLF: replies whose lines end in a bare LF, before and inside TLS,
// are read as with CRLF. (A reply split one byte per write is a case of
// the conformance suite.)
func TestBareLF(t *testing.T) {
	for _, tc := range []struct{ name, script string }{
		{"bare-lf", `
			S: "220 mx.example.test ESMTP\n"
			C: EHLO localhost
			S: "250-mx.example.test\n250-PIPELINING\n250 STARTTLS\n"
			C: STARTTLS
			S: "220 go ahead\n"
			!tls
			C: EHLO localhost
			S: "250-mx.example.test\n250-SIZE 52428800\n250 AUTH PLAIN LOGIN\n"
		`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			o := upgrade(t, pki, tc.script, setup{})
			require.NoError(t, o.err)
			require.NoError(t, o.peer.Wait())
			assert.True(t, o.res.TLS)
			assert.Equal(t, "mx.example.test ESMTP", strings.TrimSuffix(o.res.Greeting, " ready"))
			assert.Equal(t, []string{"PIPELINING", "STARTTLS"}, o.res.Before.List())
			assert.Equal(t, []string{"SIZE 52428800", "AUTH PLAIN LOGIN"}, o.res.After.List())
		})
	}
}

// TestEscapedPeerText: terminal escapes in a greeting never reach an error
// string, the result or the transcript unescaped.
func TestEscapedPeerText(t *testing.T) {
	const evil = `\x1b[2J\x1b]0;pwned\x07\x1b[1;31mALERT\u202e\x9b`
	for _, tc := range []struct {
		name, script, kind string
	}{
		{"rejected", `S: "554 ` + evil + `\r\n"`, "greeting-rejected"},
		{"wrong-code", `S: "250 ` + evil + `\r\n"`, "protocol"},
		{"malformed", `S: "22` + evil + `\r\n"`, "protocol"},
		{"refused-starttls", `
			S: "220 ` + evil + `\r\n"
			C: EHLO localhost
			S: 250-mx.example.test
			S: 250 STARTTLS
			C: STARTTLS
			S: "454 ` + evil + `\r\n"
		`, "refused"},
		{"not-offered", `
			S: "220 ` + evil + `\r\n"
			C: EHLO localhost
			S: "250 ` + evil + `\r\n"
		`, "not-offered"},
		{"ehlo-garbage", `
			S: "220 ` + evil + `\r\n"
			C: EHLO localhost
			S: "250-` + evil + `\r\n` + evil + `\r\n"
		`, "protocol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			var transcript bytes.Buffer
			var mu sync.Mutex
			o := upgrade(t, pki, tc.script+"\n!eof", setup{opts: &smtp.Options{
				Conn: &starttls.Options{Transcript: lockedWriter{&mu, &transcript}},
			}})
			requireFailed(t, o, tc.kind)
			require.NoError(t, o.peer.Wait())
			requireEscaped(t, o.res.Greeting)
			mu.Lock()
			requireEscaped(t, strings.ReplaceAll(transcript.String(), "\n", " "))
			mu.Unlock()
			assert.NotContains(t, o.err.Error(), "\x1b")
			assert.NotContains(t, o.err.Error(), "\u202e")
			if tc.kind != "not-offered" {
				assert.Contains(t, o.err.Error(), `\x1b]0;pwned\x07`, "the peer text, escaped once")
				assert.NotContains(t, o.err.Error(), `\\x1b`, "escaped twice")
			}
		})
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestTranscript(t *testing.T) {
	pki := scripttest.NewPKI(t)
	var transcript bytes.Buffer
	var mu sync.Mutex
	o := upgrade(t, pki, toGoAhead+afterTLS, setup{opts: &smtp.Options{
		Conn: &starttls.Options{Transcript: lockedWriter{&mu, &transcript}},
	}})
	require.NoError(t, o.err)
	require.NoError(t, o.peer.Wait())
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, `S: 220 mx.example.test ESMTP ready
C: EHLO localhost
S: 250-mx.example.test
S: 250-PIPELINING
S: 250 STARTTLS
C: STARTTLS
S: 220 2.0.0 Ready to start TLS
-- TLS --
C: EHLO localhost
S: 250-mx.example.test
S: 250-SIZE 52428800
S: 250 AUTH PLAIN LOGIN
`, transcript.String())
}

// TestMultilineGoAhead: a multi-line 220 is still the go-ahead.
func TestMultilineGoAhead(t *testing.T) {
	pki := scripttest.NewPKI(t)
	o := upgrade(t, pki, `
		S: 220 mx.example.test ESMTP
		C: EHLO localhost
		S: 250-mx.example.test
		S: 250 STARTTLS
		C: STARTTLS
		S: 220-2.0.0 Ready
		S: 220 2.0.0 to start TLS
	`+afterTLS, setup{})
	require.NoError(t, o.err)
	require.NoError(t, o.peer.Wait())
	assert.True(t, o.res.TLS)
}

func TestMultilineGreeting(t *testing.T) {
	pki := scripttest.NewPKI(t)
	o := upgrade(t, pki, `
		S: 220-mx.example.test ESMTP Postfix
		S: 220-no UCE
		S: 220 welcome
	`+"C: EHLO localhost\nS: 250-mx.example.test\nS: 250 STARTTLS\nC: STARTTLS\nS: 220 go\n"+afterTLS, setup{})
	require.NoError(t, o.err)
	require.NoError(t, o.peer.Wait())
	assert.Equal(t, "mx.example.test ESMTP Postfix", o.res.Greeting)
}

// TestUnsafeLocalName: a local name that could smuggle a command is refused
// before anything is written.
func TestUnsafeLocalName(t *testing.T) {
	for _, name := range []string{"a\r\nMAIL FROM:<x@example.test>", "a b", "[1.2.3.4\r\n]", "[1.2.3.4", "bad\x00name"} {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			o := upgrade(t, pki, "S: 220 mx.example.test ESMTP\n!eof", setup{opts: &smtp.Options{LocalName: name}})
			require.Error(t, o.err)
			require.ErrorIs(t, o.err, starttls.ErrUnsafeArgument)
			require.NoError(t, o.peer.Wait(), "nothing may be written")
		})
	}
}

func TestLocalNames(t *testing.T) {
	for _, tc := range []struct{ name, sent string }{
		{"client.example.test", "client.example.test"},
		{"[192.0.2.1]", "[192.0.2.1]"},
		{"[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]"},
		{"bücher.example", "xn--bcher-kva.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pki := scripttest.NewPKI(t)
			o := upgrade(t, pki, `
				S: 220 mx.example.test ESMTP
				C: EHLO `+tc.sent+`
				S: 250-mx.example.test
				S: 250 STARTTLS
				C: STARTTLS
				S: 220 go
				!tls
				C: EHLO `+tc.sent+`
				S: 250 mx.example.test
			`, setup{opts: &smtp.Options{LocalName: tc.name}})
			require.NoError(t, o.err)
			require.NoError(t, o.peer.Wait())
			assert.Equal(t, 0, o.res.After.Len())
		})
	}
}
