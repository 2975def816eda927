package starttls_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tlsup/tlsup/internal/scripttest"
)

// TestMain fails the run when a goroutine of this module is still running
// after every test has finished: a watcher, a fake peer or a server loop
// that nobody stopped.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := waitForLeaks(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines left running after the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// moduleGoroutines returns the stacks of the goroutines, other than the
// caller's, that run or were started by code of this module.
func moduleGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 { // the caller
			continue
		}
		if strings.Contains(g, "github.com/tlsup/tlsup") && !strings.Contains(g, "testing.tRunner") {
			out = append(out, g)
		}
	}
	return out
}

// waitForLeaks polls until no module goroutine is left or the bound passes,
// and returns the stacks left then.
func waitForLeaks(bound time.Duration) string {
	deadline := time.Now().Add(bound)
	for {
		gs := moduleGoroutines()
		if len(gs) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(gs, "\n\n")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newFakeConn returns the shared fake conn reading in, chunk bytes at a
// time (0: all at once).
func newFakeConn(in string, chunk int) *scripttest.FakeConn {
	c := scripttest.NewFakeConn([]byte(in))
	c.Chunk = chunk
	return c
}

// syncBuffer is a transcript safe for writes from another goroutine.
type syncBuffer = scripttest.SyncBuffer

// hasControl reports whether s holds a byte below 0x20 or DEL.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}
