package starttls_test

import (
	"context"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/internal/servertest"
	"github.com/tlsup/tlsup/starttls"
)

// toyDialogue is a minimal protocol front: it greets, answers NOOP and
// QUIT, starts TLS on STARTTLS and refuses anything else.
type toyDialogue struct{}

func (toyDialogue) Protocol() string { return "toy" }

func (toyDialogue) Greeting() []string { return []string{"OK toy ready"} }

func (toyDialogue) Command(_ context.Context, _ *starttls.Conn, line []byte) (starttls.Reply, error) {
	switch string(line) {
	case "NOOP":
		return starttls.Reply{Lines: []string{"OK"}}, nil
	case "QUIT":
		return starttls.Reply{Lines: []string{"BYE", "OK QUIT"}, Close: starttls.ErrQuit}, nil
	case "STARTTLS":
		return starttls.Reply{GoAhead: "OK begin TLS", Refusal: "NO pipelining"}, nil
	}
	return starttls.Reply{Lines: []string{"NO tls first"}, Refused: true}, nil
}

func (toyDialogue) Farewell(reason starttls.CloseReason) []string {
	switch reason {
	case starttls.CloseTooLong:
		return []string{"BYE line too long"}
	case starttls.CloseIdle:
		return []string{"BYE idle"}
	}
	return []string{"BYE too many errors"}
}

// toyClient plays script as the client of a toy front over loopback TCP.
func toyClient(t *testing.T, pki *scripttest.PKI, script string) (net.Conn, *scripttest.Peer) {
	return scripttest.TCP(t, script, &scripttest.Options{
		Role: scripttest.Client, TLSConfig: pki.Client(scripttest.TestName), Timeout: 3 * time.Second,
	})
}

func toyServe(ctx context.Context, conn net.Conn, opts *starttls.ServerOptions) (*starttls.Conn, error) {
	return starttls.Serve(ctx, conn, toyDialogue{}, opts)
}

func TestServe(t *testing.T) {
	pki := scripttest.NewPKI(t)
	tests := []struct {
		name   string
		script string
		opts   starttls.ServerOptions
		noTLS  bool          // leave TLSConfig nil
		ctx    time.Duration // zero: 5 s
		want   []error       // matched with errors.Is; none: success
		step   starttls.Step
		text   string // in the error message
	}{
		{
			name:   "upgrade",
			script: "S: OK toy ready\nC: NOOP\nS: OK\nC: HELP\nS: NO tls first\nC: STARTTLS\nS: OK begin TLS\n!tls\nC: CAPS\n",
		},
		{
			name:   "quit",
			script: "S: OK toy ready\nC: QUIT\nS: BYE\nS: OK QUIT\n!eof\n",
			want:   []error{starttls.ErrQuit},
			step:   starttls.StepCommand,
		},
		{
			name:   "too many errors",
			script: "S: OK toy ready\nC: A\nS: NO tls first\nC: B\nS: NO tls first\nC: C\nS: BYE too many errors\n!eof\n",
			opts:   starttls.ServerOptions{MaxErrors: 2},
			want:   []error{starttls.ErrProtocol},
			step:   starttls.StepCommand,
			text:   "more than 2 refused commands before tls",
		},
		{
			name:   "noop is not refused",
			script: "S: OK toy ready\nC: A\nS: NO tls first\nC: NOOP\nS: OK\nC: NOOP\nS: OK\nC: QUIT\nS: BYE\nS: OK QUIT\n!eof\n",
			opts:   starttls.ServerOptions{MaxErrors: 1},
			want:   []error{starttls.ErrQuit},
			step:   starttls.StepCommand,
		},
		{
			name:   "line too long",
			script: "S: OK toy ready\nC: 0123456789012345678901234567890123456789\nS: BYE line too long\n!eof\n",
			opts:   starttls.ServerOptions{Conn: &starttls.Options{MaxLineLength: 16}},
			want:   []error{starttls.ErrTooLarge},
			step:   starttls.StepCommand,
		},
		{
			name:   "idle",
			script: "S: OK toy ready\nS: BYE idle\n!eof\n",
			opts:   starttls.ServerOptions{IdleTimeout: 100 * time.Millisecond},
			want:   []error{os.ErrDeadlineExceeded},
			step:   starttls.StepCommand,
		},
		{
			name: "ctx deadline is not idle",
			// !eof: a BYE idle written here would fail the script.
			script: "S: OK toy ready\n!eof\n",
			ctx:    200 * time.Millisecond,
			want:   []error{context.DeadlineExceeded, os.ErrDeadlineExceeded},
			step:   starttls.StepCommand,
		},
		{
			name:   "client hangs up",
			script: "S: OK toy ready\nC: NOOP\nS: OK\n!close\n",
			want:   []error{io.ErrUnexpectedEOF},
			step:   starttls.StepCommand,
		},
		{
			name:   "pipelined behind starttls",
			script: "S: OK toy ready\nC: STARTTLS\nC+ NOOP\nS: NO pipelining\n!eof\n",
			want:   []error{starttls.ErrInjectedData},
			step:   starttls.StepStartTLS,
		},
		{
			name:   "handshake timeout",
			script: "S: OK toy ready\nC: STARTTLS\nS: OK begin TLS\n!hold\n",
			opts:   starttls.ServerOptions{HandshakeTimeout: 200 * time.Millisecond},
			want:   []error{starttls.ErrHandshake, context.DeadlineExceeded},
			step:   starttls.StepHandshake,
		},
		{
			name:   "pre-tls bound",
			script: "S: OK toy ready\nC: NOOP\nS: OK\n!sleep 100ms\nC: NOOP\nS: OK\n!sleep 100ms\nC: NOOP\nS: OK\nS: BYE idle\n!eof\n",
			opts:   starttls.ServerOptions{IdleTimeout: 2 * time.Second, PreTLSTimeout: 350 * time.Millisecond},
			want:   []error{os.ErrDeadlineExceeded},
			step:   starttls.StepCommand,
			text:   "pre-tls phase over 350ms",
		},
		{
			name:   "http request",
			script: "S: OK toy ready\nC: POST /x HTTP/1.1\nC: Host: mx\n!eof\n",
			want:   []error{starttls.ErrProtocol},
			step:   starttls.StepCommand,
			text:   "http request where a command belongs",
		},
		{
			name:   "http request after a command",
			script: "S: OK toy ready\nC: NOOP\nS: OK\nC: GET / HTTP/1.0\n!eof\n",
			want:   []error{starttls.ErrProtocol},
			step:   starttls.StepCommand,
		},
		{
			name:   "refusals counted once each",
			script: "S: OK toy ready\nC: A\nS: NO tls first\nC: NOOP\nS: OK\nC: B\nS: BYE too many errors\n!eof\n",
			opts:   starttls.ServerOptions{MaxErrors: 1},
			want:   []error{starttls.ErrProtocol},
			step:   starttls.StepCommand,
			text:   "more than 1 refused commands",
		},
		{
			name:   "nil TLSConfig",
			script: "!eof\n",
			noTLS:  true,
			want:   []error{starttls.ErrConfig},
			step:   starttls.StepConfig,
			text:   "nil TLSConfig",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, peer := toyClient(t, pki, tt.script)
			opts := tt.opts
			if !tt.noTLS {
				opts.TLSConfig = pki.Server()
			}
			d := tt.ctx
			if d == 0 {
				d = 5 * time.Second
			}
			tc, err := toyServe(background(t, d), raw, &opts)
			if tt.step == "" {
				require.NoError(t, err)
				defer tc.Close()
				require.NotNil(t, tc.TLS(), "the session continues over TLS")
				require.NoError(t, tc.NetConn().SetDeadline(time.Now().Add(3*time.Second)))
				line, err := tc.ReadLine()
				require.NoError(t, err)
				assert.Equal(t, "CAPS", string(line))
				require.NoError(t, peer.Wait())
				return
			}
			require.Error(t, err)
			assert.Nil(t, tc)
			var e *starttls.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, "toy", e.Protocol)
			assert.Equal(t, tt.step, e.Step, "step of %v", err)
			for _, w := range tt.want {
				assert.ErrorIs(t, err, w)
			}
			// A front's every outcome has a Kind for a switch, the first
			// sentinel wanted (the context's end before the conn's).
			assert.Equal(t, tt.want[0], e.Kind, "Kind of %v", err)
			assert.Contains(t, err.Error(), tt.text)
			assertClosed(t, raw)
			require.NoError(t, peer.Wait())
		})
	}
}

// TestServeCancel cancels ctx while the front waits for a command: the read
// is aborted at once and the error is ctx's, not the idle timeout.
func TestServeCancel(t *testing.T) {
	pki := scripttest.NewPKI(t)
	mine, theirs := net.Pipe()
	t.Cleanup(func() { mine.Close(); theirs.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		tc  *starttls.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		tc, err := toyServe(ctx, theirs, &starttls.ServerOptions{TLSConfig: pki.Server()})
		done <- result{tc, err}
	}()
	require.NoError(t, mine.SetDeadline(time.Now().Add(3*time.Second)))
	buf := make([]byte, 64)
	n, err := mine.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "OK toy ready\r\n", string(buf[:n]))
	// The greeting is read and the front is back in ReadLine (or about to
	// be: Arm checks ctx after setting the deadline).
	start := time.Now()
	cancel()
	select {
	case r := <-done:
		t.Logf("cancel to return: %v", time.Since(start))
		assert.Nil(t, r.tc)
		require.ErrorIs(t, r.err, context.Canceled)
		var e *starttls.Error
		require.ErrorAs(t, r.err, &e)
		assert.Equal(t, starttls.StepCommand, e.Step)
	case <-time.After(2 * time.Second):
		t.Fatal("cancel did not abort the front within 2 s")
	}
	// Nothing more was written (no idle BYE), and the conn is closed.
	_, err = mine.Read(buf)
	assert.ErrorIs(t, err, io.EOF)
}

// TestServeLongLineWithoutEnd: 1 MiB without a line end is cut at the
// bound, with the farewell, and never buffered whole.
func TestServeLongLineWithoutEnd(t *testing.T) {
	pki := scripttest.NewPKI(t)
	mine, theirs := net.Pipe()
	t.Cleanup(func() { mine.Close(); theirs.Close() })
	done := make(chan error, 1)
	go func() {
		_, err := toyServe(background(t, 5*time.Second), theirs, &starttls.ServerOptions{TLSConfig: pki.Server()})
		done <- err
	}()
	require.NoError(t, mine.SetDeadline(time.Now().Add(5*time.Second)))
	c := starttls.NewConn(mine, nil)
	line, err := c.ReadLine()
	require.NoError(t, err)
	require.Equal(t, "OK toy ready", string(line))
	written := make(chan int, 1)
	go func() {
		n, _ := mine.Write(make([]byte, 1<<20)) // stops when the server closes
		written <- n
	}()
	line, err = c.ReadLine()
	require.NoError(t, err)
	assert.Equal(t, "BYE line too long", string(line))
	select {
	case err := <-done:
		require.ErrorIs(t, err, starttls.ErrTooLarge)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	n := <-written
	assert.Less(t, n, 1<<20, "the server stopped reading at the bound")
}

// recorder is a Redactor that hides everything after "SECRET".
type redactingDialogue struct{ toyDialogue }

func (redactingDialogue) Redact(line []byte) (int, bool) {
	if strings.HasPrefix(string(line), "SECRET ") {
		return len("SECRET"), true
	}
	return 0, false
}

// TestServeRedactor: the dialogue's Redactor hides its credentials from the
// transcript, and one set in the options wins over it.
func TestServeRedactor(t *testing.T) {
	pki := scripttest.NewPKI(t)
	for _, tt := range []struct {
		name string
		opts *starttls.Options
		want string
	}{
		{"dialogue's", nil, "C: SECRET <redacted>"},
		{"options' win", &starttls.Options{Redactor: starttls.RedactFunc(func([]byte) (int, bool) { return 0, true })}, "C: <redacted>"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var transcript strings.Builder
			connOpts := &starttls.Options{}
			if tt.opts != nil {
				connOpts = tt.opts
			}
			connOpts.Transcript = &transcript
			raw, peer := toyClient(t, pki, "S: OK toy ready\nC: SECRET hunter2\nS: NO tls first\nC: QUIT\nS: BYE\nS: OK QUIT\n!eof\n")
			_, err := starttls.Serve(background(t, 5*time.Second), raw, redactingDialogue{}, &starttls.ServerOptions{TLSConfig: pki.Server(), Conn: connOpts})
			require.ErrorIs(t, err, starttls.ErrQuit)
			require.NoError(t, peer.Wait())
			assert.Contains(t, transcript.String(), tt.want+"\n")
			assert.NotContains(t, transcript.String(), "hunter2")
			assert.Contains(t, transcript.String(), "S: OK toy ready\n", "server role")
		})
	}
}

// TestServeDoneContext: a context already done writes nothing, not even
// the greeting.
func TestServeDoneContext(t *testing.T) {
	pki := scripttest.NewPKI(t)
	raw, peer := toyClient(t, pki, "!eof\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := toyServe(ctx, raw, &starttls.ServerOptions{TLSConfig: pki.Server()})
	require.ErrorIs(t, err, context.Canceled)
	assertClosed(t, raw)
	require.NoError(t, peer.Wait())
}

// unsafeGreeting greets with a line that would smuggle a second one.
type unsafeGreeting struct{ toyDialogue }

func (unsafeGreeting) Greeting() []string { return []string{"OK fine", "OK x\r\nNO forged"} }

func TestServeUnsafeLines(t *testing.T) {
	pki := scripttest.NewPKI(t)
	raw, peer := toyClient(t, pki, "!eof\n")
	_, err := starttls.Serve(background(t, 5*time.Second), raw, unsafeGreeting{}, &starttls.ServerOptions{TLSConfig: pki.Server()})
	require.ErrorIs(t, err, starttls.ErrUnsafeArgument)
	require.NoError(t, peer.Wait(), "no line of the greeting written")
}

func TestServeNilOptions(t *testing.T) {
	server, _ := servertest.TCPPair(t)
	_, err := starttls.Serve(context.Background(), server, toyDialogue{}, nil)
	require.ErrorIs(t, err, starttls.ErrConfig)
	assertClosed(t, server)
}

func TestIsHTTPRequest(t *testing.T) {
	for line, want := range map[string]bool{
		"GET / HTTP/1.1":              true,
		"POST /a%20b?x=1 HTTP/1.0":    true,
		"OPTIONS * HTTP/1.1":          true,
		"CONNECT mx:25 HTTP/1.1":      true,
		"GET /x y z HTTP/1.1":         true,
		"get / HTTP/1.1":              false, // methods are case-sensitive
		"GET /":                       false,
		"a1 LOGIN user HTTP/1.1":      false,
		"EHLO HTTP/1.1":               false,
		"MAIL FROM:<a@b> HTTP/1.1":    false,
		"":                            false,
		"NOOP":                        false,
		"GET":                         false,
		"GET  HTTP/2":                 true,
		"PROPFIND /dav HTTP/1.1":      true,
		"a GET / HTTP/1.1":            false,
		"HELO GET / HTTP/1.1 trailer": false,
	} {
		assert.Equal(t, want, starttls.IsHTTPRequest([]byte(line)), "%q", line)
	}
}

// FuzzServe feeds arbitrary client input, in arbitrary chunks, to the
// server loop with the toy dialogue and checks its invariants: it always
// returns a *Error naming the protocol and closes the conn; every line it
// writes before TLS is one of the dialogue's; no more than MaxErrors
// refusals are written; nothing but TLS records follows the go-ahead; an
// HTTP request as the first command gets nothing but the greeting.
func FuzzServe(f *testing.F) {
	for _, seed := range []string{
		"NOOP\r\nSTARTTLS\r\n",
		"STARTTLS\r\nNOOP\r\n",
		"A\r\nB\r\nC\r\nD\r\nE\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"NOOP\r\nPOST /x HTTP/1.0\r\n",
		"QUIT\r\nNOOP\r\n",
		strings.Repeat("x", 100) + "\r\n",
		"STARTTLS\r\n\x16\x03\x01\x00\x05hello",
		"\x00\xff\r\n\n\r",
		"",
	} {
		f.Add([]byte(seed), uint8(0))
		f.Add([]byte(seed), uint8(1))
	}
	pki := scripttest.NewPKI(f)
	tlsConfig := pki.Server()
	allowed := map[string]bool{"OK toy ready": true, "OK": true, "BYE": true, "OK QUIT": true, "NO tls first": true,
		"BYE line too long": true, "BYE idle": true, "BYE too many errors": true, "NO pipelining": true}
	const maxErrors = 3
	f.Fuzz(func(t *testing.T, input []byte, chunk uint8) {
		conn := newFakeConn(string(input), int(chunk))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tc, err := starttls.Serve(ctx, conn, toyDialogue{}, &starttls.ServerOptions{
			TLSConfig: tlsConfig, MaxErrors: maxErrors, Conn: &starttls.Options{MaxLineLength: 32}})
		require.Error(t, err, "no TLS client in fuzz input")
		require.Nil(t, tc)
		var e *starttls.Error
		require.ErrorAs(t, err, &e)
		require.Equal(t, "toy", e.Protocol)
		require.True(t, conn.Closed(), "closed on error")
		out := conn.Written()
		plain, afterGoAhead, goAhead := strings.Cut(out, "OK begin TLS\r\n")
		if goAhead && afterGoAhead != "" {
			require.Contains(t, []byte{21, 22}, afterGoAhead[0], "after the go-ahead, only TLS records: %q", afterGoAhead)
		}
		lines := strings.Split(strings.TrimSuffix(plain, "\r\n"), "\r\n")
		require.Equal(t, "OK toy ready", lines[0])
		refusals := 0
		for _, l := range lines {
			require.True(t, allowed[l], "line %q of %q", l, plain)
			if l == "NO tls first" {
				refusals++
			}
		}
		require.LessOrEqual(t, refusals, maxErrors)
		// Only a whole first line within the bound is a command; an
		// unterminated one ends in io.ErrUnexpectedEOF, a long one in
		// ErrTooLarge.
		first, _, whole := strings.Cut(string(input), "\n")
		first = strings.TrimSuffix(first, "\r")
		if whole && len(first) <= 32 && starttls.IsHTTPRequest([]byte(first)) {
			require.Equal(t, "OK toy ready\r\n", out, "no reply to an HTTP request")
			require.ErrorIs(t, err, starttls.ErrProtocol)
		}
	})
}

// slowDialogue answers SLOW only after the pre-TLS bound has passed, so
// that the bound ends the session while the reply is written, not read.
type slowDialogue struct {
	toyDialogue
	wait time.Duration
}

func (d slowDialogue) Command(ctx context.Context, c *starttls.Conn, line []byte) (starttls.Reply, error) {
	if string(line) == "SLOW" {
		time.Sleep(d.wait)
		return starttls.Reply{Lines: []string{"OK at last"}}, nil
	}
	return d.toyDialogue.Command(ctx, c, line)
}

// TestServePreTLSBoundDuringReply: the pre-TLS bound passing while a reply
// is written says so, as it does while a command is read.
func TestServePreTLSBoundDuringReply(t *testing.T) {
	pki := scripttest.NewPKI(t)
	raw, peer := toyClient(t, pki, "S: OK toy ready\nC: SLOW\n!eof\n")
	opts := &starttls.ServerOptions{TLSConfig: pki.Server(), IdleTimeout: time.Minute, PreTLSTimeout: 100 * time.Millisecond}
	tc, err := starttls.Serve(background(t, 5*time.Second), raw, slowDialogue{wait: 300 * time.Millisecond}, opts)
	require.Error(t, err)
	assert.Nil(t, tc)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	var e *starttls.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, os.ErrDeadlineExceeded, e.Kind)
	assert.Contains(t, err.Error(), "pre-tls phase over")
	assertClosed(t, raw)
	require.NoError(t, peer.Wait())
}
