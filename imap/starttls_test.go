package imap_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/imap"
	"github.com/tlsup/tlsup/internal/errkind"
	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
)

// Script pieces shared by many cases.
const (
	greeting = `
		S: * OK IMAP4rev2 server ready
	`
	// capsStartTLS answers the pre-TLS CAPABILITY with STARTTLS offered.
	capsStartTLS = `
		C: {t} CAPABILITY
		S: * CAPABILITY IMAP4rev2 IMAP4rev1 STARTTLS LOGINDISABLED
		S: {t} OK CAPABILITY completed
	`
	startTLSCmd = `
		C: {s} STARTTLS
	`
	goAhead = startTLSCmd + `
		S: {s} OK Begin TLS negotiation now
	`
	// afterTLS is the handshake and the fresh CAPABILITY inside TLS.
	afterTLS = `
		!tls
		C: {u} CAPABILITY
		S: * CAPABILITY IMAP4rev2 IMAP4rev1 AUTH=PLAIN AUTH=SCRAM-SHA-256
		S: {u} OK CAPABILITY completed
	`
)

var (
	beforeList = []string{"IMAP4rev2", "IMAP4rev1", "STARTTLS", "LOGINDISABLED"}
	afterList  = []string{"IMAP4rev2", "IMAP4rev1", "AUTH=PLAIN", "AUTH=SCRAM-SHA-256"}
)

// setup describes one run of imap.Upgrade against a script.
type setup struct {
	pipe    bool                    // net.Pipe instead of loopback TCP
	server  *tls.Config             // zero: the PKI's server config
	opts    *imap.Options           // zero: the PKI's client config for TestName
	timeout time.Duration           // zero: 5 s
	wrap    func(net.Conn) net.Conn // optional wrapper of the client's conn
}

type outcome struct {
	tc         *tls.Conn
	res        *starttls.Result
	err        error
	peer       *scripttest.Peer
	transcript *bytes.Buffer
}

// upgrade runs imap.Upgrade against script with a transcript, and closes
// the returned *tls.Conn at the end of the test. The caller reads the peer's
// verdict.
func upgrade(t *testing.T, pki *scripttest.PKI, script string, s setup) outcome {
	t.Helper()
	if s.server == nil {
		s.server = pki.Server()
	}
	opts := imap.Options{}
	if s.opts != nil {
		opts = *s.opts
	}
	if opts.TLSConfig == nil {
		opts.TLSConfig = pki.Client(scripttest.TestName)
	}
	var transcript bytes.Buffer
	if opts.Conn == nil {
		opts.Conn = &starttls.Options{Transcript: &transcript}
	}
	if s.timeout == 0 {
		s.timeout = 5 * time.Second
	}
	peerOpts := &scripttest.Options{TLSConfig: s.server}
	var conn net.Conn
	var peer *scripttest.Peer
	if s.pipe {
		conn, peer = scripttest.Pipe(t, script, peerOpts)
	} else {
		conn, peer = scripttest.TCP(t, script, peerOpts)
	}
	if s.wrap != nil {
		conn = s.wrap(conn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	tc, res, err := imap.Upgrade(ctx, conn, &opts)
	if tc != nil {
		t.Cleanup(func() { tc.Close() })
	}
	require.NotNil(t, res, "a result even on error")
	return outcome{tc: tc, res: res, err: err, peer: peer, transcript: &transcript}
}

func TestPositiveControl(t *testing.T) {
	pki := scripttest.NewPKI(t)
	for _, pipe := range []bool{false, true} {
		t.Run(fmt.Sprintf("pipe=%v", pipe), func(t *testing.T) {
			o := upgrade(t, pki, greeting+capsStartTLS+goAhead+afterTLS+"!eof", setup{pipe: pipe})
			require.NoError(t, o.err)
			require.NotNil(t, o.tc)
			assert.True(t, o.res.TLS)
			assert.False(t, o.res.Plaintext)
			assert.Equal(t, starttls.StartTLS, o.res.Mode)
			assert.Equal(t, "IMAP4rev2 server ready", o.res.Greeting)
			assert.Equal(t, beforeList, o.res.Before.List())
			assert.Equal(t, afterList, o.res.After.List())
			assert.Equal(t, scripttest.TestName, o.res.State.ServerName)
			require.NotNil(t, o.res.Conn)
			assert.NotNil(t, o.res.Conn.TLS())
			o.tc.Close()
			require.NoError(t, o.peer.Wait())

			// Three commands, three different tags; the TLS mark after
			// STARTTLS.
			var tags []string
			for _, m := range regexp.MustCompile(`(?m)^C: (\S+) `).FindAllStringSubmatch(o.transcript.String(), -1) {
				tags = append(tags, m[1])
			}
			require.Len(t, tags, 3, "transcript:\n%s", o.transcript)
			assert.NotEqual(t, tags[0], tags[1])
			assert.NotEqual(t, tags[1], tags[2])
			assert.NotEqual(t, tags[0], tags[2])
			for _, tag := range tags {
				assert.True(t, imap.ValidTag(tag), "tag %q", tag)
			}
			assert.Contains(t, o.transcript.String(), " STARTTLS\nS: "+tags[1]+" OK Begin TLS negotiation now\n-- TLS --\nC: "+tags[2]+" CAPABILITY\n")
		})
	}
}

// failCase is one transcript expected to fail.
type failCase struct {
	name    string
	script  string
	opts    *imap.Options
	timeout time.Duration
	server  *tls.Config
	want    []error // every one must match with errors.Is
	kind    string  // starttls.Kind of the error
	// peerFails: the client hangs up while the peer still writes or
	// handshakes, so the peer's own verdict is not checked.
	peerFails bool
	tls       bool // Result.TLS expected
	check     func(t *testing.T, o outcome)
}

func runFailCases(t *testing.T, pki *scripttest.PKI, cases []failCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := upgrade(t, pki, c.script, setup{opts: c.opts, timeout: c.timeout, server: c.server})
			require.Error(t, o.err)
			assert.Nil(t, o.tc)
			assert.Nil(t, o.res.Conn)
			for _, want := range c.want {
				require.ErrorIs(t, o.err, want, "got %v", o.err)
			}
			assert.Equal(t, c.kind, errkind.Of(o.err), "error: %v", o.err)
			assert.Equal(t, c.tls, o.res.TLS)
			assert.NotContains(t, o.err.Error(), "\x1b")
			assert.NotContains(t, o.err.Error(), "\x00")
			peerErr := o.peer.Wait()
			if !c.peerFails {
				require.NoError(t, peerErr)
			}
			if c.check != nil {
				c.check(t, o)
			}
		})
	}
}

func replyError(t *testing.T, err error, status, command, text string) {
	t.Helper()
	var re *starttls.ReplyError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "imap", re.Protocol)
	assert.Equal(t, status, re.Status)
	assert.Equal(t, command, re.Command)
	assert.Equal(t, text, re.Text)
}

func TestStripping(t *testing.T) {
	pki := scripttest.NewPKI(t)
	stripped := greeting + `
		C: {t} CAPABILITY
		S: * CAPABILITY IMAP4rev2 LOGINDISABLED
		S: {t} OK CAPABILITY completed
	`
	t.Run("required", func(t *testing.T) {
		// STARTTLS is not sent: the next thing the peer sees is the close.
		o := upgrade(t, pki, stripped+"!eof", setup{})
		require.ErrorIs(t, o.err, starttls.ErrNotOffered)
		assert.Equal(t, "not-offered", errkind.Of(o.err))
		assert.Equal(t, []string{"IMAP4rev2", "LOGINDISABLED"}, o.res.Before.List())
		require.NoError(t, o.peer.Wait())
	})
	t.Run("required greeting caps", func(t *testing.T) {
		o := upgrade(t, pki, "S: * OK [CAPABILITY IMAP4rev1 LOGINDISABLED] ready\n!eof", setup{})
		require.ErrorIs(t, o.err, starttls.ErrNotOffered)
		require.NoError(t, o.peer.Wait())
	})
	for _, name := range []string{"XSTARTTLS", "STARTTLSX", "STARTTLS=1", "START-TLS"} {
		t.Run("look-alike "+name, func(t *testing.T) {
			o := upgrade(t, pki, greeting+`
				C: {t} CAPABILITY
				S: * CAPABILITY IMAP4rev1 `+name+`
				S: {t} OK done
				!eof`, setup{})
			require.ErrorIs(t, o.err, starttls.ErrNotOffered)
			require.NoError(t, o.peer.Wait())
		})
	}
	t.Run("always", func(t *testing.T) {
		o := upgrade(t, pki, stripped+goAhead+afterTLS, setup{opts: &imap.Options{Policy: starttls.Always}})
		require.NoError(t, o.err)
		assert.True(t, o.res.TLS)
		assert.Equal(t, afterList, o.res.After.List())
		require.NoError(t, o.peer.Wait())
	})
	t.Run("opportunistic", func(t *testing.T) {
		o := upgrade(t, pki, stripped+`
			C: {n} NOOP
			S: {n} OK NOOP completed
		`, setup{opts: &imap.Options{Policy: starttls.Opportunistic}})
		require.NoError(t, o.err)
		assert.Nil(t, o.tc)
		assert.False(t, o.res.TLS)
		assert.True(t, o.res.Plaintext)
		require.NotNil(t, o.res.Conn)
		assert.Nil(t, o.res.Conn.TLS())
		// The session goes on in plaintext on Result.Conn.
		require.NoError(t, o.res.Conn.WriteLine("n1 NOOP"))
		line, err := o.res.Conn.ReadLine()
		require.NoError(t, err)
		assert.Equal(t, "n1 OK NOOP completed", string(line))
		o.res.Conn.Close()
		require.NoError(t, o.peer.Wait())
	})
	t.Run("capability refused", func(t *testing.T) {
		// NO to CAPABILITY: nothing offered, so not-offered under
		// Required and STARTTLS is never sent.
		o := upgrade(t, pki, greeting+`
			C: {t} CAPABILITY
			S: {t} NO not now
			!eof`, setup{})
		require.ErrorIs(t, o.err, starttls.ErrNotOffered)
		require.NoError(t, o.peer.Wait())
	})
	t.Run("capability refused always", func(t *testing.T) {
		o := upgrade(t, pki, greeting+`
			C: {t} CAPABILITY
			S: {t} BAD what
		`+goAhead+afterTLS, setup{opts: &imap.Options{Policy: starttls.Always}})
		require.NoError(t, o.err)
		assert.Equal(t, afterList, o.res.After.List())
		require.NoError(t, o.peer.Wait())
	})
}

func TestStartTLSReplies(t *testing.T) {
	pki := scripttest.NewPKI(t)
	pre := greeting + capsStartTLS + startTLSCmd
	runFailCases(t, pki, []failCase{
		{
			name:   "NO",
			script: pre + "S: {s} NO [UNAVAILABLE] TLS not available now\n!eof",
			want:   []error{starttls.ErrRefused}, kind: "refused",
			check: func(t *testing.T, o outcome) {
				replyError(t, o.err, "NO", "STARTTLS", "[UNAVAILABLE] TLS not available now")
			},
		},
		{
			name:   "BAD",
			script: pre + "S: {s} bad Unknown command\n!eof",
			want:   []error{starttls.ErrRefused}, kind: "refused",
			check: func(t *testing.T, o outcome) { replyError(t, o.err, "BAD", "STARTTLS", "Unknown command") },
		},
		{
			name:   "NO opportunistic",
			script: pre + "S: {s} NO no tls for you\n!eof",
			opts:   &imap.Options{Policy: starttls.Opportunistic},
			want:   []error{starttls.ErrRefused}, kind: "refused",
		},
		{
			name:   "BYE",
			script: pre + "S: * BYE shutting down\n!eof",
			want:   []error{starttls.ErrRefused}, kind: "refused",
			check: func(t *testing.T, o outcome) { replyError(t, o.err, "BYE", "STARTTLS", "shutting down") },
		},
		{
			name:   "continuation",
			script: pre + "S: + go ahead\n!eof",
			want:   []error{starttls.ErrProtocol}, kind: "protocol",
		},
		{
			name:   "bare continuation",
			script: pre + "S: +\n!eof",
			want:   []error{starttls.ErrProtocol}, kind: "protocol",
		},
		{
			name:   "wrong tag",
			script: pre + "S: A0002 OK Begin TLS negotiation now\n!eof",
			want:   []error{starttls.ErrProtocol}, kind: "protocol",
		},
		{
			name:   "wrong tag then right tag",
			script: pre + "S: {s}x OK Begin TLS negotiation now\nS+ {s} OK Begin TLS negotiation now\n!eof",
			want:   []error{starttls.ErrProtocol}, kind: "protocol",
		},
		{
			name:   "tagged PREAUTH",
			script: pre + "S: {s} PREAUTH hello\n!eof",
			want:   []error{starttls.ErrProtocol}, kind: "protocol",
		},
		{
			name:   "untagged OK only",
			script: pre + "S: * OK Begin TLS negotiation now\n!close",
			want:   []error{io.ErrUnexpectedEOF}, kind: "closed",
		},
		{
			name:   "garbage",
			script: pre + "S: 220 Ready to start TLS\n!eof",
			want:   []error{starttls.ErrProtocol}, kind: "protocol",
		},
		{
			name:   "empty line",
			script: pre + "S: \"\\r\\n\"\n!eof",
			want:   []error{starttls.ErrProtocol}, kind: "protocol",
		},
	})
	t.Run("OK without text, any case", func(t *testing.T) {
		o := upgrade(t, pki, pre+"S: {s} ok\n"+afterTLS, setup{})
		require.NoError(t, o.err)
		require.NoError(t, o.peer.Wait())
	})
}

func TestTaggedOKBeforeTheCommand(t *testing.T) {
	pki := scripttest.NewPKI(t)
	runFailCases(t, pki, []failCase{
		{
			// In the greeting's write: buffered when STARTTLS is due.
			name:   "with the greeting",
			script: "S: * OK [CAPABILITY IMAP4rev1 STARTTLS] ready\nS+ t000000000000 OK Begin TLS negotiation now\n!eof",
			want:   []error{starttls.ErrInjectedData}, kind: "injected-data",
		},
		{
			name: "with the CAPABILITY completion",
			script: greeting + `
				C: {t} CAPABILITY
				S: * CAPABILITY IMAP4rev1 STARTTLS
				S: {t} OK done
				S+ {t}0 OK Begin TLS negotiation now
				!eof`,
			want: []error{starttls.ErrInjectedData}, kind: "injected-data",
		},
		{
			// Inside the CAPABILITY response: another tag is no
			// completion, whatever it says.
			name: "inside the CAPABILITY response",
			script: greeting + `
				C: {t} CAPABILITY
				S: * CAPABILITY IMAP4rev1 STARTTLS
				S+ a2 OK Begin TLS negotiation now
				S+ {t} OK done
				!eof`,
			want: []error{starttls.ErrProtocol}, kind: "protocol",
		},
	})
	t.Run("separate write", func(t *testing.T) {
		// Over TCP the forged OK may be buffered when STARTTLS is due
		// (injected data) or read as the answer to it (a foreign tag):
		// either way it never counts as the go-ahead.
		o := upgrade(t, pki, `
			S: * OK [CAPABILITY IMAP4rev1 STARTTLS] ready
			S: t000000000000 OK Begin TLS negotiation now
			!hold`, setup{})
		require.Error(t, o.err)
		assert.False(t, o.res.TLS)
		kind := errkind.Of(o.err)
		assert.True(t, kind == "injected-data" || kind == "protocol", "kind %q: %v", kind, o.err)
		require.NoError(t, o.peer.Wait())
	})
}

func TestGreeting(t *testing.T) {
	pki := scripttest.NewPKI(t)
	runFailCases(t, pki, []failCase{
		{
			name:   "PREAUTH with STARTTLS",
			script: "S: * PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] logged in as joe\n!eof",
			want:   []error{starttls.ErrPreauth}, kind: "preauth",
			check: func(t *testing.T, o outcome) {
				replyError(t, o.err, "PREAUTH", "", "[CAPABILITY IMAP4rev1 STARTTLS] logged in as joe")
			},
		},
		{
			name:   "PREAUTH without STARTTLS",
			script: "S: * PREAUTH IMAP4rev2 server logged in as Smith\n!eof",
			want:   []error{starttls.ErrPreauth}, kind: "preauth",
		},
		{
			name:   "PREAUTH opportunistic",
			script: "S: * preauth hello\n!eof",
			opts:   &imap.Options{Policy: starttls.Opportunistic},
			want:   []error{starttls.ErrPreauth}, kind: "preauth",
		},
		{
			name:   "PREAUTH always",
			script: "S: * PREAUTH hello\n!eof",
			opts:   &imap.Options{Policy: starttls.Always},
			want:   []error{starttls.ErrPreauth}, kind: "preauth",
		},
		{
			name:   "BYE",
			script: "S: * BYE [UNAVAILABLE] too many connections\n!eof",
			want:   []error{starttls.ErrGreetingRejected}, kind: "greeting-rejected",
			check: func(t *testing.T, o outcome) {
				replyError(t, o.err, "BYE", "", "[UNAVAILABLE] too many connections")
			},
		},
		{
			name:   "BYE with escapes",
			script: `S: "* BYE \x1b[31mgo away\x00\r\n"` + "\n!eof",
			want:   []error{starttls.ErrGreetingRejected}, kind: "greeting-rejected",
			check: func(t *testing.T, o outcome) {
				replyError(t, o.err, "BYE", "", `\x1b[31mgo away\x00`)
			},
		},
		{name: "NO", script: "S: * NO go away\n!eof", want: []error{starttls.ErrProtocol}, kind: "protocol"},
		{name: "BAD", script: "S: * BAD huh\n!eof", want: []error{starttls.ErrProtocol}, kind: "protocol"},
		{name: "tagged", script: "S: a1 OK ready\n!eof", want: []error{starttls.ErrProtocol}, kind: "protocol"},
		{name: "continuation", script: "S: + ready\n!eof", want: []error{starttls.ErrProtocol}, kind: "protocol"},
		{name: "SMTP", script: "S: 220 mx.example.test ESMTP\n!eof", want: []error{starttls.ErrProtocol}, kind: "protocol"},
		{name: "POP3", script: "S: +OK POP3 ready\n!eof", want: []error{starttls.ErrProtocol}, kind: "protocol"},
		{name: "HTTP", script: "S: HTTP/1.1 400 Bad Request\n!eof", want: []error{starttls.ErrProtocol}, kind: "protocol"},
		{name: "star only", script: "S: *\n!eof", want: []error{starttls.ErrProtocol}, kind: "protocol"},
		{name: "empty", script: "S: \"\\r\\n\"\n!eof", want: []error{starttls.ErrProtocol}, kind: "protocol"},
		{name: "data", script: "S: * CAPABILITY IMAP4rev1 STARTTLS\n!eof", want: []error{starttls.ErrProtocol}, kind: "protocol"},
		{name: "data with literal", script: "S: * 1 FETCH (BODY[] {5}\n!eof", want: []error{starttls.ErrProtocol}, kind: "protocol"},
		{name: "unterminated code", script: "S: * OK [CAPABILITY IMAP4rev1 STARTTLS ready\n!eof", want: []error{starttls.ErrProtocol}, kind: "protocol"},
		{name: "NUL in code atom", script: `S: "* OK [CAPABILITY IMAP4rev1 STARTTLS\x00] ready\r\n"` + "\n!eof", want: []error{starttls.ErrProtocol}, kind: "protocol"},
		{name: "8-bit in code atom", script: `S: "* OK [CAPABILITY IMAP4rev1 \xc5\xbfTARTTLS] ready\r\n"` + "\n!eof", want: []error{starttls.ErrProtocol}, kind: "protocol"},
		{name: "binary", script: `S: "\x16\x03\x01\x00\x05hello\r\n"` + "\n!eof", want: []error{starttls.ErrProtocol}, kind: "protocol"},
	})
	t.Run("greeting capabilities", func(t *testing.T) {
		// The greeting's list decides; no CAPABILITY before TLS.
		o := upgrade(t, pki, `
			S: * OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ STARTTLS LOGINDISABLED] Dovecot ready.
		`+goAhead+afterTLS, setup{})
		require.NoError(t, o.err)
		assert.Equal(t, "[CAPABILITY IMAP4rev1 SASL-IR LITERAL+ STARTTLS LOGINDISABLED] Dovecot ready.", o.res.Greeting)
		assert.Equal(t, []string{"IMAP4rev1", "SASL-IR", "LITERAL+", "STARTTLS", "LOGINDISABLED"}, o.res.Before.List())
		assert.Equal(t, afterList, o.res.After.List())
		require.NoError(t, o.peer.Wait())
	})
	t.Run("greeting with other code", func(t *testing.T) {
		o := upgrade(t, pki, "S: * OK [ALERT] read this\n"+capsStartTLS+goAhead+afterTLS, setup{})
		require.NoError(t, o.err)
		assert.Equal(t, beforeList, o.res.Before.List())
		require.NoError(t, o.peer.Wait())
	})
	t.Run("lower case", func(t *testing.T) {
		o := upgrade(t, pki, `
			S: * ok [capability imap4rev1 starttls] hi
		`+goAhead+afterTLS, setup{})
		require.NoError(t, o.err)
		assert.Equal(t, []string{"imap4rev1", "starttls"}, o.res.Before.List())
		require.NoError(t, o.peer.Wait())
	})
	t.Run("split one byte per write", func(t *testing.T) {
		for _, pipe := range []bool{false, true} {
			o := upgrade(t, pki, "!trickle\n"+greeting+capsStartTLS+goAhead+"!notrickle\n"+afterTLS, setup{pipe: pipe})
			require.NoError(t, o.err)
			assert.Equal(t, beforeList, o.res.Before.List())
			assert.Equal(t, afterList, o.res.After.List())
			require.NoError(t, o.peer.Wait())
		}
	})
}

func TestUntaggedNoise(t *testing.T) {
	pki := scripttest.NewPKI(t)
	// A literal holding lines that would end the command, or break the
	// parser, were they read as lines.
	body := "+ go ahead\r\n{t} OK forged\r\n* BYE\r\nx"
	noise := fmt.Sprintf(`
		S: * OK [ALERT] System shutdown in 10 minutes
		S: * 172 EXISTS
		S: * 1 RECENT
		S: * LIST (\Noselect) "/" ~/Mail/foo
		S: * LIST () "/" {8}
		S+ "foo\r\nbar"
		S+ "\r\n"
		S: * STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)
		S: * 12 FETCH (FLAGS (\Seen) BODY[] {%d}
		S+ %q
		S+ )
		S: * 13 FETCH (BINARY[] ~{4}
		S+ "\x00\xff\r\n"
		S+  UID 7 BODY[HEADER] {0+}
		S+ )
		S: * NO [REFERRAL IMAP://user;AUTH=*@SERVER2/] Remote Server
		S: * OK [REFERRAL imap://elsewhere.example/] go there
	`, len(body), body)
	t.Run("before the CAPABILITY completion", func(t *testing.T) {
		o := upgrade(t, pki, greeting+`
			C: {t} CAPABILITY
		`+noise+`
			S: * CAPABILITY IMAP4rev2 STARTTLS
			S: {t} OK done
		`+goAhead+afterTLS, setup{})
		require.NoError(t, o.err)
		assert.Equal(t, []string{"IMAP4rev2", "STARTTLS"}, o.res.Before.List())
		assert.Equal(t, "IMAP4rev2 server ready", o.res.Greeting)
		assert.Equal(t, afterList, o.res.After.List())
		require.NoError(t, o.peer.Wait())
	})
	t.Run("before the STARTTLS OK", func(t *testing.T) {
		o := upgrade(t, pki, greeting+capsStartTLS+startTLSCmd+noise+`
			S: * CAPABILITY IMAP4rev2 AUTH=PLAIN STARTTLS
			S: {s} OK Begin TLS negotiation now
		`+afterTLS, setup{})
		require.NoError(t, o.err)
		assert.Equal(t, beforeList, o.res.Before.List())
		assert.Equal(t, afterList, o.res.After.List())
		require.NoError(t, o.peer.Wait())
	})
	t.Run("after TLS", func(t *testing.T) {
		o := upgrade(t, pki, greeting+capsStartTLS+goAhead+`
			!tls
			C: {u} CAPABILITY
		`+noise+`
			S: * CAPABILITY IMAP4rev2 AUTH=PLAIN
			S: {u} OK done
		`, setup{})
		require.NoError(t, o.err)
		assert.Equal(t, []string{"IMAP4rev2", "AUTH=PLAIN"}, o.res.After.List())
		require.NoError(t, o.peer.Wait())
	})
	t.Run("unsolicited CAPABILITY before TLS not carried over", func(t *testing.T) {
		o := upgrade(t, pki, greeting+capsStartTLS+startTLSCmd+`
			S: * CAPABILITY IMAP4rev2 AUTH=PLAIN AUTH=LOGIN X-FORGED
			S: {s} OK Begin TLS negotiation now
			!tls
			C: {u} CAPABILITY
			S: * CAPABILITY IMAP4rev2 AUTH=SCRAM-SHA-256
			S: {u} OK done
		`, setup{})
		require.NoError(t, o.err)
		assert.Equal(t, []string{"IMAP4rev2", "AUTH=SCRAM-SHA-256"}, o.res.After.List())
		assert.False(t, o.res.After.Has("AUTH=PLAIN"))
		assert.False(t, o.res.After.Has("X-FORGED"))
		require.NoError(t, o.peer.Wait())
	})
	t.Run("literal of 64 KiB", func(t *testing.T) {
		big := strings.Repeat("a\r\n", imap.DefaultMaxLiteral/3) + strings.Repeat("b", imap.DefaultMaxLiteral%3)
		o := upgrade(t, pki, greeting+`
			C: {t} CAPABILITY
			S: * 1 FETCH (BODY[] {65536}
			S+ `+fmt.Sprintf("%q", big)+`
			S+ )
			S: * CAPABILITY IMAP4rev2 STARTTLS
			S: {t} OK done
		`+goAhead+afterTLS, setup{})
		require.NoError(t, o.err)
		require.NoError(t, o.peer.Wait())
	})
}

func TestInjection(t *testing.T) {
	pki := scripttest.NewPKI(t)
	pre := greeting + capsStartTLS + goAhead
	var cases []failCase
	for _, inj := range []struct{ name, lines string }{
		{"forged capabilities and a future tag", `
			S+ * CAPABILITY IMAP4rev2 AUTH=PLAIN
			S+ t000000000003 OK CAPABILITY completed`},
		{"BYE", `
			S+ * BYE`},
	} {
		cases = append(cases, failCase{
			// !eof: no ClientHello, the conn is closed.
			name: inj.name, script: pre + inj.lines + "\n!eof",
			want: []error{starttls.ErrInjectedData}, kind: "injected-data",
		})
	}
	cases = append(cases, failCase{
		name: "before STARTTLS",
		script: greeting + `
			C: {t} CAPABILITY
			S: * CAPABILITY IMAP4rev1 STARTTLS
			S: {t} OK done
			S+ * OK noise
			!eof`,
		want: []error{starttls.ErrInjectedData}, kind: "injected-data",
	})
	runFailCases(t, pki, cases)
}

func TestCapabilitiesAcrossTLS(t *testing.T) {
	pki := scripttest.NewPKI(t)
	t.Run("caps in the STARTTLS OK discarded", func(t *testing.T) {
		o := upgrade(t, pki, greeting+capsStartTLS+startTLSCmd+`
			S: {s} OK [CAPABILITY IMAP4rev2 AUTH=PLAIN X-FORGED] Begin TLS negotiation now
			!tls
			C: {u} CAPABILITY
			S: * CAPABILITY IMAP4rev2 AUTH=SCRAM-SHA-256
			S: {u} OK done
		`, setup{})
		require.NoError(t, o.err)
		assert.Equal(t, []string{"IMAP4rev2", "AUTH=SCRAM-SHA-256"}, o.res.After.List())
		require.NoError(t, o.peer.Wait())
	})
	t.Run("greeting caps not carried over", func(t *testing.T) {
		o := upgrade(t, pki, `
			S: * OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] ready
		`+goAhead+`
			!tls
			C: {u} CAPABILITY
			S: * CAPABILITY IMAP4rev1 AUTH=GSSAPI
			S: {u} OK done
		`, setup{})
		require.NoError(t, o.err)
		assert.Equal(t, []string{"IMAP4rev1", "STARTTLS", "AUTH=PLAIN"}, o.res.Before.List())
		assert.Equal(t, []string{"IMAP4rev1", "AUTH=GSSAPI"}, o.res.After.List())
		require.NoError(t, o.peer.Wait())
	})
	t.Run("STARTTLS advertised again after TLS", func(t *testing.T) {
		// Reported as sent, and no second STARTTLS: the peer sees the
		// close next.
		o := upgrade(t, pki, greeting+capsStartTLS+goAhead+`
			!tls
			C: {u} CAPABILITY
			S: * CAPABILITY IMAP4rev2 STARTTLS AUTH=PLAIN
			S: {u} OK done
			!eof
		`, setup{})
		require.NoError(t, o.err)
		assert.Equal(t, []string{"IMAP4rev2", "STARTTLS", "AUTH=PLAIN"}, o.res.After.List())
		o.tc.Close()
		require.NoError(t, o.peer.Wait())
	})
	t.Run("several CAPABILITY responses joined", func(t *testing.T) {
		o := upgrade(t, pki, greeting+capsStartTLS+goAhead+`
			!tls
			C: {u} CAPABILITY
			S: * CAPABILITY IMAP4rev2
			S: * CAPABILITY AUTH=PLAIN
			S: {u} OK done
		`, setup{})
		require.NoError(t, o.err)
		assert.Equal(t, []string{"IMAP4rev2", "AUTH=PLAIN"}, o.res.After.List())
		require.NoError(t, o.peer.Wait())
	})
	runFailCases(t, pki, []failCase{
		{
			name: "only a code in the CAPABILITY OK after TLS",
			script: greeting + capsStartTLS + goAhead + `
				!tls
				C: {u} CAPABILITY
				S: {u} OK [CAPABILITY IMAP4rev2 AUTH=PLAIN] done
				!eof`,
			want: []error{starttls.ErrProtocol}, kind: "protocol", tls: true,
		},
		{
			name: "CAPABILITY refused after TLS",
			script: greeting + capsStartTLS + goAhead + `
				!tls
				C: {u} CAPABILITY
				S: {u} NO sorry
				!eof`,
			want: []error{starttls.ErrRefused}, kind: "refused", tls: true,
		},
		{
			name: "continuation to CAPABILITY",
			script: greeting + `
				C: {t} CAPABILITY
				S: + more
				!eof`,
			want: []error{starttls.ErrProtocol}, kind: "protocol",
		},
		{
			name: "CAPABILITY with a literal",
			script: greeting + `
				C: {t} CAPABILITY
				S: * CAPABILITY IMAP4rev1 {8}
				S+ "STARTTLS"
				S+ "\r\n"
				S: {t} OK done
				!eof`,
			want: []error{starttls.ErrProtocol}, kind: "protocol",
		},
		{
			name: "NUL in an atom",
			script: greeting + `
				C: {t} CAPABILITY
				S: "* CAPABILITY IMAP4rev1 STARTTLS\x00\r\n"
				S: {t} OK done
				!eof`,
			want: []error{starttls.ErrProtocol}, kind: "protocol",
		},
		{
			name: "long s look-alike",
			script: greeting + `
				C: {t} CAPABILITY
				S: "* CAPABILITY IMAP4rev1 \u017fTARTTLS\r\n"
				S: {t} OK done
				!eof`,
			want: []error{starttls.ErrProtocol}, kind: "protocol",
		},
		{
			name: "invalid UTF-8 in an atom",
			script: greeting + `
				C: {t} CAPABILITY
				S: "* CAPABILITY IMAP4rev1 STARTTLS\xff\r\n"
				S: {t} OK done
				!eof`,
			want: []error{starttls.ErrProtocol}, kind: "protocol",
		},
		{
			name: "tab in the list",
			script: greeting + `
				C: {t} CAPABILITY
				S: "* CAPABILITY IMAP4rev1\tSTARTTLS\r\n"
				S: {t} OK done
				!eof`,
			want: []error{starttls.ErrProtocol}, kind: "protocol",
		},
	})
}

func TestBounds(t *testing.T) {
	pki := scripttest.NewPKI(t)
	many := strings.Repeat("X-ATOM-", 1)
	var long strings.Builder
	for long.Len() < 3900 {
		fmt.Fprintf(&long, " %s%d", many, long.Len())
	}
	t.Run("long list within the bound", func(t *testing.T) {
		o := upgrade(t, pki, greeting+`
			C: {t} CAPABILITY
			S: * CAPABILITY IMAP4rev2`+long.String()+` STARTTLS
			S: {t} OK done
		`+goAhead+afterTLS, setup{})
		require.NoError(t, o.err)
		assert.Greater(t, o.res.Before.Len(), 300)
		assert.True(t, o.res.Before.Has("STARTTLS"))
		require.NoError(t, o.peer.Wait())
	})
	mib := strings.Repeat(" X-ATOM", 1<<20/7)
	var endless strings.Builder
	for range starttls.DefaultMaxResponseLines + 1 {
		endless.WriteString("S+ * OK still here\n")
	}
	runFailCases(t, pki, []failCase{
		{
			name:   "1 MiB capability line",
			script: greeting + "C: {t} CAPABILITY\nS: * CAPABILITY IMAP4rev2" + mib + " STARTTLS\n!hold",
			want:   []error{starttls.ErrTooLarge}, kind: "too-large", peerFails: true,
		},
		{
			name:   "1 MiB greeting",
			script: "S: * OK [CAPABILITY IMAP4rev2" + mib + " STARTTLS] hi\n!hold",
			want:   []error{starttls.ErrTooLarge}, kind: "too-large", peerFails: true,
		},
		{
			name:   "endless untagged responses",
			script: greeting + "C: {t} CAPABILITY\nS: * OK start\n" + endless.String() + "!hold",
			want:   []error{starttls.ErrTooLarge}, kind: "too-large", peerFails: true,
		},
		{
			name:   "literal of 4 GiB",
			script: greeting + "C: {t} CAPABILITY\nS: * 1 FETCH (BODY[] {4294967296}\n!eof",
			want:   []error{starttls.ErrTooLarge}, kind: "too-large",
		},
		{
			name:   "literal of 64 KiB and one",
			script: greeting + "C: {t} CAPABILITY\nS: * 1 FETCH (BODY[] {65537}\n!eof",
			want:   []error{starttls.ErrTooLarge}, kind: "too-large",
		},
		{
			name:   "binary literal of 100 digits",
			script: greeting + "C: {t} CAPABILITY\nS: * 1 FETCH (BINARY[] ~{" + strings.Repeat("9", 100) + "}\n!eof",
			want:   []error{starttls.ErrTooLarge}, kind: "too-large",
		},
		{
			name:   "huge literal before the STARTTLS OK",
			script: greeting + capsStartTLS + startTLSCmd + "S: * 1 FETCH (BODY[] {99999999+}\n!eof",
			want:   []error{starttls.ErrTooLarge}, kind: "too-large",
		},
		{
			name:   "literal over a lowered bound",
			script: greeting + "C: {t} CAPABILITY\nS: * LIST () \"/\" {11}\n!eof",
			opts:   &imap.Options{MaxLiteral: 10},
			want:   []error{starttls.ErrTooLarge}, kind: "too-large",
		},
	})
}

// TestHangUpAndSilenceInLiteral: a hang-up or silence inside a literal,
// which IMAP alone has. (Hang-up and silence at each step are cases of the
// conformance suite.)
func TestHangUpAndSilenceInLiteral(t *testing.T) {
	pki := scripttest.NewPKI(t)
	runFailCases(t, pki, []failCase{
		{
			name: "hang-up inside a literal",
			script: greeting + `
				C: {t} CAPABILITY
				S: * 1 FETCH (BODY[] {100}
				S+ "abc"
				!close`,
			want: []error{io.ErrUnexpectedEOF}, kind: "closed",
		},
		{
			name: "silence inside a literal",
			script: greeting + `
				C: {t} CAPABILITY
				S: * 1 FETCH (BODY[] {100}
				S+ "abc"
				!hold`,
			timeout: 300 * time.Millisecond,
			want:    []error{context.DeadlineExceeded}, kind: "timeout",
		},
	})
}

// portConn reports a chosen remote address, to exercise Mode Auto.
type portConn struct {
	net.Conn
	remote net.Addr
}

func (c portConn) RemoteAddr() net.Addr { return c.remote }

func TestModes(t *testing.T) {
	pki := scripttest.NewPKI(t)
	implicit := `
		!tls
		S: * OK [CAPABILITY IMAP4rev2 AUTH=PLAIN] ready
		C: {u} CAPABILITY
		S: * CAPABILITY IMAP4rev2 AUTH=PLAIN AUTH=LOGIN
		S: {u} OK done
	`
	at := func(port int) func(net.Conn) net.Conn {
		return func(c net.Conn) net.Conn {
			return portConn{c, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}}
		}
	}
	t.Run("auto 993 is implicit", func(t *testing.T) {
		o := upgrade(t, pki, implicit, setup{wrap: at(993)})
		require.NoError(t, o.err)
		assert.Equal(t, starttls.Implicit, o.res.Mode)
		assert.Nil(t, o.res.Before)
		// The greeting's list is not used: CAPABILITY is always asked.
		assert.Equal(t, []string{"IMAP4rev2", "AUTH=PLAIN", "AUTH=LOGIN"}, o.res.After.List())
		assert.Equal(t, "[CAPABILITY IMAP4rev2 AUTH=PLAIN] ready", o.res.Greeting)
		require.NoError(t, o.peer.Wait())
	})
	t.Run("implicit PREAUTH accepted", func(t *testing.T) {
		o := upgrade(t, pki, `
			!tls
			S: * PREAUTH IMAP4rev2 server logged in as Smith
			C: {u} CAPABILITY
			S: * CAPABILITY IMAP4rev2 IDLE
			S: {u} OK done
		`, setup{opts: &imap.Options{Mode: starttls.Implicit}})
		require.NoError(t, o.err)
		assert.True(t, o.res.TLS)
		assert.Equal(t, []string{"IMAP4rev2", "IDLE"}, o.res.After.List())
		require.NoError(t, o.peer.Wait())
	})
	runFailCases(t, pki, []failCase{
		{
			name:   "implicit BYE",
			script: "!tls\nS: * BYE busy\n!eof",
			opts:   &imap.Options{Mode: starttls.Implicit},
			want:   []error{starttls.ErrGreetingRejected}, kind: "greeting-rejected", tls: true,
		},
	})
}

func TestUpgraderIdentity(t *testing.T) {
	var u imap.Upgrader
	assert.Equal(t, "imap", u.Protocol())
	assert.Equal(t, "STARTTLS", u.Keyword())
}
