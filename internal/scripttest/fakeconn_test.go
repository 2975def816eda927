package scripttest_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
)

func TestFakeConn(t *testing.T) {
	tests := []struct {
		name  string
		chunk int
		loop  bool
		reads []string // what successive reads of 8 bytes return
	}{
		{"all at once", 0, false, []string{"abcdef"}},
		{"chunked", 4, false, []string{"abcd", "ef"}},
		{"looped", 4, true, []string{"abcd", "ef", "abcd", "ef"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := scripttest.NewFakeConn([]byte("abcdef"))
			c.Chunk, c.Loop = tt.chunk, tt.loop
			buf := make([]byte, 8)
			for _, want := range tt.reads {
				n, err := c.Read(buf)
				require.NoError(t, err)
				assert.Equal(t, want, string(buf[:n]))
			}
			if !tt.loop {
				_, err := c.Read(buf)
				assert.ErrorIs(t, err, io.EOF)
				c.Rewind()
				n, err := c.Read(buf)
				require.NoError(t, err)
				assert.Equal(t, tt.reads[0], string(buf[:n]), "read again after Rewind")
			}
		})
	}
	t.Run("writes and close", func(t *testing.T) {
		c := scripttest.NewFakeConn(nil)
		for _, s := range []string{"EHLO x\r\n", "QUIT\r\n"} {
			_, err := c.Write([]byte(s))
			require.NoError(t, err)
		}
		assert.Equal(t, "EHLO x\r\nQUIT\r\n", c.Written())
		assert.Equal(t, 2, c.Writes())
		assert.False(t, c.Closed())
		require.NoError(t, c.Close())
		assert.True(t, c.Closed())
		_, err := c.Write([]byte("x"))
		assert.ErrorIs(t, err, net.ErrClosed)
		_, err = c.Read(make([]byte, 1))
		assert.ErrorIs(t, err, net.ErrClosed)
	})
	t.Run("deadlines and addresses", func(t *testing.T) {
		c := scripttest.NewFakeConn(nil)
		_, n := c.LastDeadline()
		assert.Zero(t, n)
		d := time.Unix(1, 0)
		require.NoError(t, c.SetDeadline(time.Time{}))
		require.NoError(t, c.SetDeadline(d))
		got, n := c.LastDeadline()
		assert.Equal(t, d, got)
		assert.Equal(t, 2, n)
		assert.Equal(t, "127.0.0.1:0", c.RemoteAddr().String())
		c.Remote = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 465}
		assert.Equal(t, "127.0.0.1:465", c.RemoteAddr().String())
	})
}
