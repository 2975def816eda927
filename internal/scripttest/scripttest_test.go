package scripttest_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
)

// TestMain fails the run when a peer goroutine outlives the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(5 * time.Second)
		for {
			leaked := peerGoroutines()
			if leaked == "" {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "goroutines left running after the tests:\n%s\n", leaked)
				code = 1
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	os.Exit(code)
}

func peerGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i > 0 && strings.Contains(g, "tlsup/internal/scripttest.") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// readOnce does one Read with a bound on the wait and returns what it got.
func readOnce(t *testing.T, c net.Conn) string {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	require.NoError(t, err)
	return string(buf[:n])
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(5*time.Second)))
	_, err := io.WriteString(c, s)
	require.NoError(t, err)
}

// readEOF checks that the peer hung up.
func readEOF(t *testing.T, c net.Conn) {
	t.Helper()
	// net.Pipe refuses to set a deadline once the other end is closed,
	// which is the very case here; the Read below then returns at once.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 16))
	assert.Zero(t, n)
	assert.ErrorIs(t, err, io.EOF)
}

func TestSendAndExpect(t *testing.T) {
	conn, peer := scripttest.Pipe(t, `
		# a comment, and a blank line

		S: 220 mx.example.test ESMTP
		C: EHLO localhost
		S: 250 ok
	`, nil)
	assert.Equal(t, "220 mx.example.test ESMTP\r\n", readOnce(t, conn))
	write(t, conn, "EHLO localhost\r\n")
	assert.Equal(t, "250 ok\r\n", readOnce(t, conn))
	readEOF(t, conn) // the peer hangs up at the end of the script
	require.NoError(t, peer.Wait())
}

func TestJoinedSendIsOneWrite(t *testing.T) {
	conn, peer := scripttest.Pipe(t, `
		S: 220 ready
		C: STARTTLS
		S: 220 go ahead
		S+ 250-INJECTED
		S+ "\x16\x03"
		S: separate
	`, nil)
	assert.Equal(t, "220 ready\r\n", readOnce(t, conn))
	write(t, conn, "STARTTLS\r\n")
	// net.Pipe hands one Write to one Read (the buffer is large enough), so
	// a single Read holding all three pieces shows they were one write.
	assert.Equal(t, "220 go ahead\r\n250-INJECTED\r\n\x16\x03", readOnce(t, conn))
	assert.Equal(t, "separate\r\n", readOnce(t, conn))
	require.NoError(t, peer.Wait())
}

func TestQuotedRaw(t *testing.T) {
	conn, peer := scripttest.Pipe(t, `S: "no line end \x00\xff"`, nil)
	assert.Equal(t, "no line end \x00\xff", readOnce(t, conn))
	require.NoError(t, peer.Wait())
}

func TestTrickle(t *testing.T) {
	for _, directive := range []string{"!trickle", "!trickle 1ms"} {
		t.Run(directive, func(t *testing.T) {
			conn, peer := scripttest.Pipe(t, directive+"\nS: abc\nS+ de\n!notrickle\nS: whole", nil)
			for _, want := range []string{"a", "b", "c", "\r", "\n", "d", "e", "\r", "\n"} {
				assert.Equal(t, want, readOnce(t, conn), "one byte per write")
			}
			assert.Equal(t, "whole\r\n", readOnce(t, conn), "!notrickle: one write again")
			require.NoError(t, peer.Wait())
		})
	}
}

func TestSleep(t *testing.T) {
	conn, peer := scripttest.Pipe(t, "S: a\n!sleep 1ms\nS: b", nil)
	assert.Equal(t, "a\r\n", readOnce(t, conn))
	assert.Equal(t, "b\r\n", readOnce(t, conn))
	require.NoError(t, peer.Wait())
}

func TestCloseDirective(t *testing.T) {
	conn, peer := scripttest.Pipe(t, "S: bye\n!close", nil)
	assert.Equal(t, "bye\r\n", readOnce(t, conn))
	readEOF(t, conn)
	require.NoError(t, peer.Wait())
}

func TestEOFDirective(t *testing.T) {
	t.Run("other side closes", func(t *testing.T) {
		conn, peer := scripttest.Pipe(t, "C: QUIT\n!eof", nil)
		write(t, conn, "QUIT\r\n")
		conn.Close()
		require.NoError(t, peer.Wait())
	})
	t.Run("a line instead", func(t *testing.T) {
		conn, peer := scripttest.Pipe(t, "C: QUIT\n!eof", nil)
		write(t, conn, "QUIT\r\nNOOP\r\n")
		err := peer.Wait()
		require.Error(t, err)
		assert.Contains(t, err.Error(), "script line 2 (!eof)")
		assert.Contains(t, err.Error(), `"NOOP\r\n"`)
	})
	t.Run("a partial line instead", func(t *testing.T) {
		conn, peer := scripttest.Pipe(t, "!eof", nil)
		write(t, conn, "NO")
		conn.Close()
		err := peer.Wait()
		require.Error(t, err)
		assert.Contains(t, err.Error(), "script line 1")
	})
	t.Run("nobody closes", func(t *testing.T) {
		_, peer := scripttest.Pipe(t, "!eof", &scripttest.Options{Timeout: 50 * time.Millisecond})
		err := peer.Wait()
		require.Error(t, err)
		assert.Contains(t, err.Error(), "did not close within")
	})
}

func TestHoldDirective(t *testing.T) {
	conn, peer := scripttest.Pipe(t, "S: hello\n!hold", nil)
	assert.Equal(t, "hello\r\n", readOnce(t, conn))
	write(t, conn, "ignored\r\nalso ignored\r\npartial")
	conn.Close()
	require.NoError(t, peer.Wait())
}

func TestFailuresNameTheLine(t *testing.T) {
	tests := []struct {
		name, script, send string
		want               []string
	}{
		{"wrong line", "S: hi\n\nC: EHLO localhost", "HELO localhost\r\n",
			[]string{"script line 3 (C: EHLO localhost)", `got "HELO localhost"`}},
		{"bare lf", "C: EHLO x", "EHLO x\n", []string{"script line 1", "not ended by CRLF"}},
		{"hang-up", "S: hi\nC: EHLO x", "", []string{"script line 2", "want a line"}},
		{"extra text", "C: EHLO x", "EHLO x y\r\n", []string{"script line 1", `got "EHLO x y"`}},
		{"regexp characters are literal", "C: A.C (x)*", "ABC (x)\r\n", []string{"script line 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, peer := scripttest.Pipe(t, tt.script, nil)
			if strings.HasPrefix(tt.script, "S:") {
				readOnce(t, conn)
			}
			if tt.send != "" {
				write(t, conn, tt.send)
			} else {
				conn.Close()
			}
			err := peer.Wait()
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestExpectTimeout(t *testing.T) {
	_, peer := scripttest.Pipe(t, "C: EHLO x", &scripttest.Options{Timeout: 50 * time.Millisecond})
	err := peer.Wait()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "script line 1")
	assert.Contains(t, err.Error(), "timeout")
}

func TestCapture(t *testing.T) {
	conn, peer := scripttest.Pipe(t, `
		C: {t} CAPABILITY
		S: * CAPABILITY IMAP4rev1
		S: {t} OK done
		C: {u} STARTTLS {_}
		S: {u} OK begin, not {t}
		S: {_} {nope} stay literal
	`, nil)
	write(t, conn, "a1 CAPABILITY\r\n")
	assert.Equal(t, "* CAPABILITY IMAP4rev1\r\n", readOnce(t, conn))
	assert.Equal(t, "a1 OK done\r\n", readOnce(t, conn))
	write(t, conn, "b.2 STARTTLS whatever\r\n")
	assert.Equal(t, "b.2 OK begin, not a1\r\n", readOnce(t, conn))
	assert.Equal(t, "{_} {nope} stay literal\r\n", readOnce(t, conn))
	require.NoError(t, peer.Wait())
}

func TestCaptureNeedsAToken(t *testing.T) {
	conn, peer := scripttest.Pipe(t, "C: {t} NOOP", nil)
	write(t, conn, " NOOP\r\n")
	err := peer.Wait()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "script line 1")
}

func TestTLSServerRole(t *testing.T) {
	pki := scripttest.NewPKI(t)
	conn, peer := scripttest.Pipe(t, `
		S: ready
		C: STARTTLS
		S: go ahead
		!tls
		C: EHLO again
		S: 250 secret
	`, &scripttest.Options{TLSConfig: pki.Server()})
	r := bufio.NewReader(conn)
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "ready\r\n", line)
	write(t, conn, "STARTTLS\r\n")
	line, err = r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "go ahead\r\n", line)
	require.Zero(t, r.Buffered())
	tc := tls.Client(conn, pki.Client(scripttest.TestName))
	require.NoError(t, tc.Handshake())
	_, err = io.WriteString(tc, "EHLO again\r\n")
	require.NoError(t, err)
	line, err = bufio.NewReader(tc).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "250 secret\r\n", line)
	require.NoError(t, peer.Wait())
}

func TestTLSClientRole(t *testing.T) {
	pki := scripttest.NewPKI(t)
	conn, peer := scripttest.TCP(t, `
		S: ready
		C: STARTTLS
		S: go ahead
		!tls
		C: EHLO again
		S: 250 secret
	`, &scripttest.Options{Role: scripttest.Client, TLSConfig: pki.Client(scripttest.TestName)})
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	write(t, conn, "ready\r\n")
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "STARTTLS\r\n", line)
	write(t, conn, "go ahead\r\n")
	tc := tls.Server(conn, pki.Server())
	require.NoError(t, tc.Handshake())
	line, err = bufio.NewReader(tc).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "EHLO again\r\n", line)
	_, err = io.WriteString(tc, "250 secret\r\n")
	require.NoError(t, err)
	require.NoError(t, peer.Wait())
}

func TestTLSFailures(t *testing.T) {
	t.Run("no config", func(t *testing.T) {
		_, peer := scripttest.Pipe(t, "!tls", nil)
		err := peer.Wait()
		require.Error(t, err)
		assert.Contains(t, err.Error(), "script line 1 (!tls): no TLSConfig")
	})
	t.Run("bytes before the handshake", func(t *testing.T) {
		pki := scripttest.NewPKI(t)
		conn, peer := scripttest.Pipe(t, "C: STARTTLS\n!tls", &scripttest.Options{TLSConfig: pki.Server()})
		write(t, conn, "STARTTLS\r\nEXTRA\r\n")
		err := peer.Wait()
		require.Error(t, err)
		assert.Contains(t, err.Error(), "script line 2")
		assert.Contains(t, err.Error(), "bytes received before the handshake")
	})
	t.Run("handshake fails", func(t *testing.T) {
		pki := scripttest.NewPKI(t)
		conn, peer := scripttest.Pipe(t, "!tls", &scripttest.Options{TLSConfig: pki.Server()})
		write(t, conn, "not a client hello\r\n")
		err := peer.Wait()
		require.Error(t, err)
		assert.Contains(t, err.Error(), "script line 1 (!tls): handshake")
	})
}

func TestListen(t *testing.T) {
	t.Run("connection", func(t *testing.T) {
		addr, peer := scripttest.Listen(t, "S: hi\nC: bye", nil)
		assert.True(t, strings.HasPrefix(addr, "127.0.0.1:"), "got %s", addr)
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer conn.Close()
		assert.Equal(t, "hi\r\n", readOnce(t, conn))
		write(t, conn, "bye\r\n")
		require.NoError(t, peer.Wait())
	})
	t.Run("nobody dials", func(t *testing.T) {
		_, peer := scripttest.Listen(t, "S: hi", &scripttest.Options{Timeout: 50 * time.Millisecond})
		err := peer.Wait()
		require.Error(t, err)
		assert.Contains(t, err.Error(), "no connection within")
	})
}

func TestTCPTrickle(t *testing.T) {
	conn, peer := scripttest.TCP(t, "!trickle\nS: 220 ok", nil)
	r := bufio.NewReader(conn)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "220 ok\r\n", line)
	require.NoError(t, peer.Wait())
}

// fakeTB records what the peer reports through testing.TB, and runs the
// cleanups when asked.
type fakeTB struct {
	testing.TB
	cleanups []func()
	errors   []string
}

func (f *fakeTB) Helper()                   {}
func (f *fakeTB) Cleanup(fn func())         { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Errorf(s string, a ...any) { f.errors = append(f.errors, fmt.Sprintf(s, a...)) }

func (f *fakeTB) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
	f.cleanups = nil
}

func TestUncheckedFailureReported(t *testing.T) {
	tb := &fakeTB{TB: t}
	conn, _ := scripttest.Pipe(tb, "C: EHLO x", nil)
	write(t, conn, "HELO x\r\n")
	tb.runCleanups()
	require.Len(t, tb.errors, 1)
	assert.Contains(t, tb.errors[0], "never checked with Wait")
	assert.Contains(t, tb.errors[0], "script line 1")
}

func TestCleanupStopsAPeerMidScript(t *testing.T) {
	tb := &fakeTB{TB: t}
	_, peer := scripttest.Pipe(tb, "S: blocked until read\nC: never", nil)
	// Nobody reads: the peer is blocked in its write. Cleanup closes the
	// conn and waits for the goroutine.
	done := make(chan struct{})
	go func() {
		defer close(done)
		tb.runCleanups()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("cleanup did not stop the peer")
	}
	assert.Error(t, peer.Wait())
	assert.Len(t, tb.errors, 1, "the unchecked failure is reported")
}

func TestCleanupEndsASleep(t *testing.T) {
	tb := &fakeTB{TB: t}
	_, peer := scripttest.Pipe(tb, "!sleep 1h\nS: never sent", nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tb.runCleanups()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("cleanup waited for the sleep")
	}
	assert.NoError(t, peer.Wait(), "a script cut short by cleanup is not a failure")
	assert.Empty(t, tb.errors)
}

func TestCleanupEndsATricklePause(t *testing.T) {
	tb := &fakeTB{TB: t}
	conn, peer := scripttest.Pipe(tb, "!trickle 1h\nS: ab", nil)
	assert.Equal(t, "a", readOnce(t, conn))
	done := make(chan struct{})
	go func() {
		defer close(done)
		tb.runCleanups()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("cleanup waited for the trickle pause")
	}
	assert.Error(t, peer.Wait(), "the write was cut off")
}
