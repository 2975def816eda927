package starttls_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
)

// toyServe is a minimal protocol front built on Front: it greets, answers
// NOOP and QUIT, hands STARTTLS over to Front.Upgrade and refuses anything
// else.
func toyServe(ctx context.Context, conn net.Conn, opts *starttls.ServerOptions) (tc *starttls.Conn, err error) {
	f := starttls.NewFront(ctx, conn, "toy", nil, opts)
	defer func() { f.Finish(err) }()
	if err := f.Start(); err != nil {
		return nil, err
	}
	if err := f.WriteLine("OK toy ready"); err != nil {
		return nil, err
	}
	for {
		line, err := f.ReadLine()
		if err != nil {
			switch {
			case errors.Is(err, starttls.ErrTooLarge):
				return nil, f.Leave(starttls.ErrTooLarge, err, "BYE line too long")
			case f.Idle(err):
				return nil, f.Leave(nil, err, "BYE idle")
			}
			return nil, f.Fail(nil, err)
		}
		switch string(line) {
		case "NOOP":
			err = f.WriteLine("OK")
		case "QUIT":
			return nil, f.Leave(starttls.ErrQuit, nil, "BYE", "OK QUIT")
		case "STARTTLS":
			return f.Upgrade("OK begin TLS", "NO pipelining")
		default:
			if f.Refused() {
				return nil, f.TooManyErrors("BYE too many errors")
			}
			err = f.WriteLine("NO tls first")
		}
		if err != nil {
			return nil, err
		}
	}
}

func TestFront(t *testing.T) {
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
			want:   []error{context.DeadlineExceeded},
			step:   starttls.StepHandshake,
		},
		{
			name:   "nil TLSConfig",
			script: "!eof\n",
			noTLS:  true,
			step:   starttls.StepConnect,
			text:   "nil TLSConfig",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, peer := scripttest.TCP(t, tt.script, &scripttest.Options{
				Role: scripttest.Client, TLSConfig: pki.Client(scripttest.TestName), Timeout: 3 * time.Second,
			})
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
			assert.Contains(t, err.Error(), tt.text)
			assertClosed(t, raw)
			require.NoError(t, peer.Wait())
		})
	}
}

// TestFrontCancel cancels ctx while the front waits for a command: the read
// is aborted at once and the error is ctx's, not the idle timeout.
func TestFrontCancel(t *testing.T) {
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

// TestFrontFinish: Finish stops the watch (a later cancel no longer touches
// the conn), clears the deadline, and closes the conn only on error.
func TestFrontFinish(t *testing.T) {
	for _, fail := range []bool{false, true} {
		conn := newDeadlineConn()
		ctx, cancel := context.WithCancel(context.Background())
		f := starttls.NewFront(ctx, conn, "toy", nil, nil)
		var err error
		if fail {
			err = f.Fail(starttls.ErrQuit, nil)
		}
		f.Finish(err)
		cancel()
		got, _ := conn.LastDeadline()
		assert.True(t, got.IsZero(), "deadline %v after Finish", got)
		assert.Equal(t, fail, conn.Closed(), "closed after Finish(%v)", err)
		assert.Empty(t, waitForLeaks(5*time.Second))
	}
}

func TestFrontFail(t *testing.T) {
	f := starttls.NewFront(context.Background(), newDeadlineConn(), "toy", nil, nil)
	defer f.Finish(nil)
	err := f.Fail(nil, io.EOF)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	var e *starttls.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "toy", e.Protocol)
	assert.Equal(t, starttls.StepCommand, e.Step)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g := starttls.NewFront(ctx, newDeadlineConn(), "toy", nil, nil)
	defer g.Finish(nil)
	err = g.Fail(nil, os.ErrDeadlineExceeded)
	assert.ErrorIs(t, err, context.Canceled, "ctx's error joined")
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.False(t, g.Idle(os.ErrDeadlineExceeded), "not idle once ctx ended")
	assert.ErrorIs(t, g.Arm(), context.Canceled, "Arm reports a done ctx")
	_, err = g.ReadLine()
	assert.ErrorIs(t, err, context.Canceled, "ReadLine reads nothing once ctx is done")

	err = f.Fail(starttls.ErrQuit, nil)
	assert.ErrorIs(t, err, starttls.ErrQuit)
	require.ErrorAs(t, err, &e)
	assert.NoError(t, e.Err, "no cause for a quit")
}

func TestFrontRefusedDefault(t *testing.T) {
	f := starttls.NewFront(context.Background(), newDeadlineConn(), "toy", nil, nil)
	defer f.Finish(nil)
	for i := 1; i <= starttls.DefaultMaxErrors; i++ {
		require.False(t, f.Refused(), "refused %d of %d", i, starttls.DefaultMaxErrors)
	}
	assert.True(t, f.Refused(), "one over MaxErrors")
	assert.ErrorIs(t, f.TooManyErrors(), starttls.ErrProtocol)
}
