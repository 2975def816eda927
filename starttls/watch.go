package starttls

import (
	"context"
	"net"
	"sync"
	"time"
)

// aLongTimeAgo is a deadline in the past, which interrupts blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// WatchContext applies ctx to conn until the returned release function is
// called: ctx's deadline becomes conn's deadline, and ctx being cancelled
// sets a deadline in the past, which aborts any blocked Read or Write at
// once. release stops the watch, waits until the watcher can no longer touch
// conn, and clears conn's deadlines. It is the tool protocol packages use
// for their own blocking calls; [Upgrade] and [ServerUpgrade] call it
// themselves.
func WatchContext(ctx context.Context, conn net.Conn) (release func()) {
	return watchContext(ctx, conn).release
}

// watch is one WatchContext, in a single allocation (none of its own when
// it is a field of [Serve]'s loop); the core calls its methods directly.
type watch struct {
	conn     net.Conn
	stop     func() bool
	mu       sync.Mutex
	released bool
	aborted  bool
}

func watchContext(ctx context.Context, conn net.Conn) *watch {
	w := &watch{}
	w.start(ctx, conn)
	return w
}

// start begins watching ctx on conn; w is a zero watch. A ctx that is
// already done aborts conn before start returns, not later from the
// AfterFunc's goroutine: nothing can be written in between.
func (w *watch) start(ctx context.Context, conn net.Conn) {
	w.conn = conn
	if ctx.Err() != nil {
		w.aborted = true
		conn.SetDeadline(aLongTimeAgo)
		return
	}
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	if ctx.Done() != nil {
		w.stop = context.AfterFunc(ctx, w.abort)
	}
}

// abort interrupts blocked I/O on the conn, unless released.
func (w *watch) abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.released {
		w.aborted = true
		w.conn.SetDeadline(aLongTimeAgo)
	}
}

// setDeadline replaces the conn's deadline with d while the watch runs,
// unless ctx has already aborted it: under the watch's lock, an abort
// either came first and is kept, or comes later and overrides d.
func (w *watch) setDeadline(d time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.aborted && !w.released {
		w.conn.SetDeadline(d)
	}
}

func (w *watch) release() {
	if w.stop != nil {
		w.stop()
	}
	w.mu.Lock()
	w.released = true
	w.mu.Unlock()
	w.conn.SetDeadline(time.Time{})
}
