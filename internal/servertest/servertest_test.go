package servertest_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/servertest"
	"github.com/tlsup/tlsup/starttls"
)

// TestServeOn: the loop runs only after a successful front, its error
// takes the front's place, and the session conn is closed after it.
func TestServeOn(t *testing.T) {
	errFront, errLoop := errors.New("front"), errors.New("loop")
	tests := []struct {
		name     string
		frontErr error
		loopErr  error
		wantErr  error
		wantLoop bool
		wantConn bool
	}{
		{"front fails", errFront, nil, errFront, false, false},
		{"loop fails", nil, errLoop, errLoop, true, true},
		{"both succeed", nil, nil, nil, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srvConn, _ := servertest.TCPPair(t)
			serve := func(ctx context.Context, conn net.Conn) (*starttls.Conn, error) {
				if tt.frontErr != nil {
					conn.Close()
					return nil, tt.frontErr
				}
				return starttls.NewConn(conn, nil), nil
			}
			looped := false
			post := func(c *starttls.Conn) error {
				looped = true
				return tt.loopErr
			}
			r := servertest.Wait(t, servertest.ServeOn(context.Background(), serve, post, srvConn))
			assert.Equal(t, tt.wantLoop, looped)
			assert.Equal(t, tt.wantConn, r.Conn != nil)
			if tt.wantErr == nil {
				require.NoError(t, r.Err)
			} else {
				require.ErrorIs(t, r.Err, tt.wantErr)
			}
			servertest.AssertClosed(t, srvConn)
		})
	}
}

// TestTCPPair: the two ends are connected both ways.
func TestTCPPair(t *testing.T) {
	server, client := servertest.TCPPair(t)
	_, err := client.Write([]byte("ping"))
	require.NoError(t, err)
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4)
	_, err = io.ReadFull(server, buf)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(buf))
	assert.NotEqual(t, server.LocalAddr().String(), client.LocalAddr().String())
}
