package starttls_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
)

// deadlineConn records SetDeadline calls and reports each on a channel.
type deadlineConn struct {
	*scripttest.FakeConn
	set chan time.Time
}

func newDeadlineConn() *deadlineConn {
	return &deadlineConn{FakeConn: scripttest.NewFakeConn(nil), set: make(chan time.Time, 16)}
}

func (d *deadlineConn) SetDeadline(t time.Time) error {
	d.FakeConn.SetDeadline(t)
	d.set <- t
	return nil
}

func TestWatchContextDeadline(t *testing.T) {
	conn := newDeadlineConn()
	deadline := time.Now().Add(time.Hour)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	release := starttls.WatchContext(ctx, conn)
	got, n := conn.LastDeadline()
	require.Equal(t, 1, n)
	assert.True(t, got.Equal(deadline), "conn deadline %v, want ctx's %v", got, deadline)
	release()
	got, n = conn.LastDeadline()
	assert.Equal(t, 2, n)
	assert.True(t, got.IsZero(), "release left deadline %v", got)
}

func TestWatchContextNeverDone(t *testing.T) {
	conn := newDeadlineConn()
	release := starttls.WatchContext(context.Background(), conn)
	_, n := conn.LastDeadline()
	assert.Zero(t, n, "no deadline without one in ctx")
	release()
	got, n := conn.LastDeadline()
	assert.Equal(t, 1, n)
	assert.True(t, got.IsZero())
}

func TestWatchContextCancel(t *testing.T) {
	conn := newDeadlineConn()
	ctx, cancel := context.WithCancel(context.Background())
	release := starttls.WatchContext(ctx, conn)
	cancel()
	select {
	case d := <-conn.set:
		assert.True(t, d.Before(time.Now()), "cancel set deadline %v, want one in the past", d)
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not reach the conn")
	}
	release()
	got, _ := conn.LastDeadline()
	assert.True(t, got.IsZero(), "release left deadline %v", got)
}

func TestWatchContextAlreadyCancelled(t *testing.T) {
	conn := newDeadlineConn()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	release := starttls.WatchContext(ctx, conn)
	select {
	case d := <-conn.set:
		assert.True(t, d.Before(time.Now()))
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled context did not reach the conn")
	}
	release()
}

// TestWatchContextReleaseRace cancels and releases at the same time, many
// times: once release has returned and the watcher goroutine is gone, the
// conn's last deadline must be the zero one.
func TestWatchContextReleaseRace(t *testing.T) {
	for range 100 {
		conn := newDeadlineConn()
		ctx, cancel := context.WithCancel(context.Background())
		release := starttls.WatchContext(ctx, conn)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); cancel() }()
		go func() { defer wg.Done(); release() }()
		wg.Wait()
		require.Empty(t, waitForLeaks(5*time.Second), "watcher still running")
		got, _ := conn.LastDeadline()
		require.True(t, got.IsZero(), "deadline %v set after release", got)
	}
}

func TestWatchContextNoLeak(t *testing.T) {
	require.Empty(t, waitForLeaks(5*time.Second), "goroutines left by earlier tests")
	var cancels []context.CancelFunc
	for range 100 {
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		release := starttls.WatchContext(ctx, newDeadlineConn())
		release()
	}
	// Released watchers never start, even when their contexts end later.
	for _, cancel := range cancels {
		cancel()
	}
	assert.Empty(t, waitForLeaks(5*time.Second))
	// And a watcher whose context ended before release is gone after it.
	ctx, cancel := context.WithCancel(context.Background())
	conn := newDeadlineConn()
	release := starttls.WatchContext(ctx, conn)
	cancel()
	<-conn.set
	release()
	assert.Empty(t, waitForLeaks(5*time.Second))
}
