package starttls

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// deadlineRecorder is a net.Conn that only records its deadlines; any other
// method panics (nil embedded conn).
type deadlineRecorder struct {
	net.Conn
	mu   sync.Mutex
	last time.Time
	n    int
	set  chan time.Time
}

func (d *deadlineRecorder) SetDeadline(t time.Time) error {
	d.mu.Lock()
	d.last, d.n = t, d.n+1
	d.mu.Unlock()
	select {
	case d.set <- t:
	default:
	}
	return nil
}

func (d *deadlineRecorder) deadline() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

// TestWatchSetDeadlineKeepsAbort: once ctx has aborted the watch, a later
// setDeadline (the front's handshake deadline) does not lift the abort;
// before that it replaces the deadline; after release it does nothing.
func TestWatchSetDeadlineKeepsAbort(t *testing.T) {
	conn := &deadlineRecorder{set: make(chan time.Time, 8)}
	ctx, cancel := context.WithCancel(context.Background())
	var w watch
	w.start(ctx, conn)
	later := time.Now().Add(time.Hour)
	w.setDeadline(later)
	assert.True(t, conn.deadline().Equal(later))
	<-conn.set
	cancel()
	select {
	case d := <-conn.set:
		require.True(t, d.Equal(aLongTimeAgo), "abort set %v", d)
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not reach the conn")
	}
	w.setDeadline(later)
	assert.True(t, conn.deadline().Equal(aLongTimeAgo), "setDeadline after abort left %v", conn.deadline())
	w.release()
	assert.True(t, conn.deadline().IsZero())
	w.setDeadline(later)
	assert.True(t, conn.deadline().IsZero(), "setDeadline after release set %v", conn.deadline())
}

// TestStepErrorLimit: a limit that has passed reads as ctx's deadline, as
// it would through context.WithDeadline; one still ahead adds nothing;
// ctx's own error comes first.
func TestStepErrorLimit(t *testing.T) {
	timeout := os.ErrDeadlineExceeded
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		limit time.Time
		err   error
		want  []error
		not   []error
	}{
		{"limit passed", context.Background(), time.Now().Add(-time.Millisecond), timeout,
			[]error{context.DeadlineExceeded, os.ErrDeadlineExceeded}, nil},
		{"limit passed, other error", context.Background(), time.Now().Add(-time.Millisecond), io.EOF,
			[]error{context.DeadlineExceeded, io.ErrUnexpectedEOF}, nil},
		{"limit ahead", context.Background(), time.Now().Add(time.Hour), timeout,
			[]error{os.ErrDeadlineExceeded}, []error{context.DeadlineExceeded}},
		{"ctx cancelled", cancelled, time.Now().Add(time.Hour), timeout,
			[]error{context.Canceled, os.ErrDeadlineExceeded}, []error{context.DeadlineExceeded}},
		{"no limit", context.Background(), time.Time{}, timeout,
			[]error{os.ErrDeadlineExceeded}, []error{context.DeadlineExceeded}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := stepErrorLimit(tt.ctx, tt.limit, "toy", StepHandshake, ErrHandshake, tt.err)
			var e *Error
			require.True(t, errors.As(err, &e))
			assert.Equal(t, StepHandshake, e.Step)
			assert.ErrorIs(t, err, ErrHandshake)
			for _, w := range tt.want {
				assert.ErrorIs(t, err, w)
			}
			for _, n := range tt.not {
				assert.NotErrorIs(t, err, n)
			}
		})
	}
}
