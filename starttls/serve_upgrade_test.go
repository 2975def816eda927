package starttls_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
)

// The transition of Serve runs under the loop's own context watch
// and a deadline, not a derived context: these tests pin the bounds that a
// derived context used to give.

// TestServeUpgradeCancelInHandshake cancels ctx while the front waits for
// the client's first TLS record: the handshake is aborted at once, with
// ctx's error, although the handshake timeout is far away.
func TestServeUpgradeCancelInHandshake(t *testing.T) {
	pki := scripttest.NewPKI(t)
	mine, theirs := net.Pipe()
	t.Cleanup(func() { mine.Close(); theirs.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := toyServe(ctx, theirs, &starttls.ServerOptions{TLSConfig: pki.Server(), HandshakeTimeout: time.Minute})
		done <- err
	}()
	c := starttls.NewConn(mine, nil)
	require.NoError(t, mine.SetDeadline(time.Now().Add(5*time.Second)))
	line, err := c.ReadLine()
	require.NoError(t, err)
	require.Equal(t, "OK toy ready", string(line))
	require.NoError(t, c.WriteLine("STARTTLS"))
	line, err = c.ReadLine()
	require.NoError(t, err)
	require.Equal(t, "OK begin TLS", string(line))
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		t.Logf("cancel to return: %v", time.Since(start))
		require.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, err, starttls.ErrHandshake)
		var e *starttls.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, starttls.StepHandshake, e.Step)
	case <-time.After(2 * time.Second):
		t.Fatal("cancel did not abort the handshake within 2 s")
	}
	// The front closed its end.
	_, err = mine.Read(make([]byte, 16))
	assert.ErrorIs(t, err, io.EOF)
}

// TestServeUpgradeCtxDeadline: a ctx deadline sooner than the handshake
// timeout bounds the handshake, and the error says so.
func TestServeUpgradeCtxDeadline(t *testing.T) {
	pki := scripttest.NewPKI(t)
	raw, peer := toyClient(t, pki, "S: OK toy ready\nC: STARTTLS\nS: OK begin TLS\n!hold\n")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	type result struct {
		tc  *starttls.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		tc, err := toyServe(ctx, raw, &starttls.ServerOptions{TLSConfig: pki.Server(), HandshakeTimeout: time.Hour})
		done <- result{tc, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the handshake waited past ctx's deadline: only the hour-long handshake timeout would end it")
	}
	tc, err := r.tc, r.err
	assert.Nil(t, tc)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorIs(t, err, starttls.ErrHandshake)
	var e *starttls.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, starttls.StepHandshake, e.Step)
	assertClosed(t, raw)
	require.NoError(t, peer.Wait())
}

// TestServeUpgradeReleases: after a successful upgrade, the conn has no
// deadline left and cancelling ctx no longer touches it.
func TestServeUpgradeReleases(t *testing.T) {
	pki := scripttest.NewPKI(t)
	raw, peer := toyClient(t, pki, "S: OK toy ready\nC: STARTTLS\nS: OK begin TLS\n!tls\n!sleep 300ms\nC: CAPS\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tc, err := toyServe(ctx, raw, &starttls.ServerOptions{TLSConfig: pki.Server(), HandshakeTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	defer tc.Close()
	cancel()
	// The peer sends CAPS after 300 ms: past the handshake timeout, after
	// the cancel. Neither may cut the session the caller now owns.
	line, err := tc.ReadLine()
	require.NoError(t, err)
	assert.Equal(t, "CAPS", string(line))
	require.NoError(t, peer.Wait())
	_, err = tc.ReadLine()
	assert.ErrorIs(t, err, io.EOF)
}

// cancelling is toyDialogue cancelling ctx as it answers STARTTLS: the
// context ends between the command and the switch.
type cancelling struct {
	toyDialogue
	cancel context.CancelFunc
}

func (d cancelling) Command(ctx context.Context, c *starttls.Conn, line []byte) (starttls.Reply, error) {
	d.cancel()
	return d.toyDialogue.Command(ctx, c, line)
}

// TestServeUpgradeCtxDone: ctx ending between the STARTTLS command and the
// switch (its watch may or may not have fired yet) still ends the
// transition at once with ctx's error, however the race falls, and writes
// no go-ahead.
func TestServeUpgradeCtxDone(t *testing.T) {
	pki := scripttest.NewPKI(t)
	for i := range 20 {
		raw, peer := toyClient(t, pki, "S: OK toy ready\nC: STARTTLS\n!eof\n")
		ctx, cancel := context.WithCancel(context.Background())
		// The handshake timeout is a minute away: the error can only be the
		// cancellation's.
		tc, err := starttls.Serve(ctx, raw, cancelling{cancel: cancel}, &starttls.ServerOptions{TLSConfig: pki.Server(), HandshakeTimeout: time.Minute})
		assert.Nil(t, tc)
		require.ErrorIs(t, err, context.Canceled, "round %d", i)
		assertClosed(t, raw)
		require.NoError(t, peer.Wait())
	}
}
