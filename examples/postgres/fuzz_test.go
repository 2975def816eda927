package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/examples/postgres"
	"github.com/tlsup/tlsup/starttls"
)

// scriptedConn is a net.Conn whose reads return the fuzzer's bytes, split
// at the given points, and whose writes are recorded.
type scriptedConn struct {
	net.Conn
	chunks  [][]byte
	read    int
	written bytes.Buffer
}

func (c *scriptedConn) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	if len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	c.read += n
	return n, nil
}

func (c *scriptedConn) Write(p []byte) (int, error) { return c.written.Write(p) }

func split(data []byte, at byte) [][]byte {
	var chunks [][]byte
	n := int(at%7) + 1
	for len(data) > 0 {
		k := min(n, len(data))
		chunks = append(chunks, data[:k])
		data = data[k:]
	}
	return chunks
}

// FuzzStartTLS feeds any answer to the SSLRequest, in pieces: the request
// is written once and unchanged; only 'S' is a go-ahead; 'N' is
// ErrNotOffered; every error is one of the kinds; the ErrorResponse read is
// bounded (at most 5+MaxErrorLength bytes consumed beyond what the reader
// buffers); the error text has no raw control character.
func FuzzStartTLS(f *testing.F) {
	f.Add([]byte("S"), byte(0))
	f.Add([]byte("N"), byte(1))
	f.Add([]byte("SSSS"), byte(2))
	f.Add(errorResponse("SFATAL", "C0A000", "Munsupported frontend protocol 1234.5679: server supports 3.0 to 3.0"), byte(3))
	f.Add([]byte{'E', 0xff, 0xff, 0xff, 0xff}, byte(4))
	f.Add([]byte{'E', 0, 0, 0, 2}, byte(5))
	f.Add([]byte("E\x00\x00\x00\x09Mx\x1b\x00\x00"), byte(6))
	// What PostgreSQL 15 answered .ci/real-binproto.sh's servers.
	for _, name := range []string{"postgresql-15-ssl-on.bin", "postgresql-15-ssl-off.bin"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(f, err)
		f.Add(b, byte(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, at byte) {
		conn := &scriptedConn{chunks: split(bytes.Clone(data), at)}
		c := starttls.NewConn(conn, nil)
		err := postgres.Upgrader{}.StartTLS(context.Background(), c)
		require.Equal(t, postgres.SSLRequest(), conn.written.Bytes())
		if err == nil {
			require.Equal(t, byte('S'), data[0])
			return
		}
		require.False(t, len(data) > 0 && data[0] == 'S', "S refused: %v", err)
		if len(data) > 0 && data[0] == 'N' {
			require.ErrorIs(t, err, starttls.ErrNotOffered)
		}
		kinds := []error{starttls.ErrNotOffered, starttls.ErrRefused, starttls.ErrProtocol, starttls.ErrTooLarge, io.ErrUnexpectedEOF, io.EOF}
		matched := 0
		for _, k := range kinds {
			if errors.Is(err, k) {
				matched++
			}
		}
		require.Equal(t, 1, matched, "error %v matches %d kinds", err, matched)
		consumed := conn.read - c.Buffered()
		assert.LessOrEqual(t, consumed, 5+postgres.MaxErrorLength)
		assert.Equal(t, -1, starttls.IndexControl(err.Error()), "raw control in %q", err)
	})
}

// FuzzParseErrorFields: no panic; on success the fields contain no NUL and
// encode back to a body that parses to the same fields.
func FuzzParseErrorFields(f *testing.F) {
	f.Add([]byte("SFATAL\x00VFATAL\x00C0A000\x00Munsupported frontend protocol\x00Fpostmaster.c\x00L2136\x00RProcessStartupPacket\x00\x00"))
	f.Add([]byte("\x00"))
	f.Add([]byte("M\x00"))
	f.Fuzz(func(t *testing.T, body []byte) {
		fields, err := postgres.ParseErrorFields(body)
		if err != nil {
			require.ErrorIs(t, err, starttls.ErrProtocol)
			return
		}
		var again []byte
		for _, f := range []struct {
			kind  byte
			value string
		}{{'S', fields.Severity}, {'C', fields.Code}, {'M', fields.Message}} {
			require.NotContains(t, f.value, "\x00")
			again = append(append(append(again, f.kind), f.value...), 0)
		}
		again = append(again, 0)
		back, err := postgres.ParseErrorFields(again)
		require.NoError(t, err)
		require.Equal(t, fields, back)
	})
}
