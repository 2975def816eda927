package ldap

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

	"github.com/tlsup/tlsup/starttls"
)

// FuzzReadElement: a length over the bound is ErrTooLarge and nothing past
// the header is read; an element read is within the bound and consumed
// exactly (header plus contents, not a byte more); parsing it as a
// response never panics, and a nil verdict means message 1, success.
func FuzzReadElement(f *testing.F) {
	f.Add(response(1, 0, "", OIDStartTLS))
	f.Add(response(1, 2, "unsupported extended operation", ""))
	f.Add(response(0, 52, "bye", OIDNoticeOfDisconnection))
	f.Add([]byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x30, 0x80, 0, 0})
	f.Add(append(response(1, 0, "", ""), forgedBind...))
	for _, b := range transcripts(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 1024
		r := bytes.NewReader(data)
		e, err := readElement(r, max)
		consumed := len(data) - r.Len()
		if err != nil {
			if errors.Is(err, starttls.ErrTooLarge) {
				assert.LessOrEqual(t, consumed, 2+8, "read past the length")
			}
			return
		}
		require.LessOrEqual(t, len(e.contents), max)
		header := consumed - len(e.contents)
		require.GreaterOrEqual(t, header, 2)
		require.LessOrEqual(t, header, 2+8)
		require.Equal(t, data[consumed-len(e.contents):consumed], e.contents)
		resp, err := parseResponse(e)
		if err != nil {
			require.ErrorIs(t, err, starttls.ErrProtocol)
			return
		}
		if resp.verdict() == nil {
			require.Equal(t, 1, resp.messageID)
			require.Equal(t, 0, resp.resultCode)
		}
	})
}

// scriptedConn is a net.Conn whose reads return the fuzzer's bytes in
// chunks of the given size and whose writes are recorded.
type scriptedConn struct {
	net.Conn
	data    []byte
	chunk   int
	read    int
	written bytes.Buffer
}

func (c *scriptedConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.chunk)], c.data)
	c.data = c.data[n:]
	c.read += n
	return n, nil
}

func (c *scriptedConn) Write(p []byte) (int, error) { return c.written.Write(p) }

// FuzzStartTLS runs the StartTLS step on any answer: the request is written
// once and unchanged; every error matches exactly one kind; the error text
// has no raw control character; what is consumed of the stream stays within
// the bound.
func FuzzStartTLS(f *testing.F) {
	f.Add(response(1, 0, "", OIDStartTLS), byte(0))
	f.Add(response(1, 1, "\x1b[31m", ""), byte(3))
	f.Add(response(0, 52, "bye", OIDNoticeOfDisconnection), byte(1))
	f.Add([]byte{0x30, 0x85, 0x01, 0, 0, 0, 0}, byte(2))
	for _, b := range transcripts(f) {
		f.Add(b, byte(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk byte) {
		conn := &scriptedConn{data: bytes.Clone(data), chunk: int(chunk%16) + 1}
		c := starttls.NewConn(conn, nil)
		u := &Upgrader{MaxMessageLength: 512}
		err := u.StartTLS(context.Background(), c)
		require.Equal(t, StartTLSRequest(), conn.written.Bytes())
		assert.LessOrEqual(t, conn.read-c.Buffered(), 2+8+512)
		if err == nil {
			return
		}
		kinds := []error{starttls.ErrNotOffered, starttls.ErrRefused, starttls.ErrProtocol, starttls.ErrTooLarge, io.ErrUnexpectedEOF, io.EOF}
		matched := 0
		for _, k := range kinds {
			if errors.Is(err, k) {
				matched++
			}
		}
		require.Equal(t, 1, matched, "error %v matches %d kinds", err, matched)
		assert.Equal(t, -1, starttls.IndexControl(err.Error()), "raw control in %q", err)
	})
}

// transcripts returns the StartTLS responses captured from slapd 2.5 by
// .ci/real-binproto.sh's servers (testdata/*.ber).
func transcripts(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob("testdata/*.ber")
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		out[filepath.Base(p)] = b
	}
	return out
}

// The responses slapd sent: success without a responseName, and
// protocolError from the instance without TLS.
func TestSlapdTranscripts(t *testing.T) {
	want := map[string]error{
		"slapd-2.5-starttls-success.ber": nil,
		"slapd-2.5-starttls-no-tls.ber":  starttls.ErrNotOffered,
	}
	got := transcripts(t)
	require.Len(t, got, len(want))
	for name, b := range got {
		conn := &scriptedConn{data: b, chunk: 1}
		err := (&Upgrader{}).StartTLS(context.Background(), starttls.NewConn(conn, nil))
		if want[name] == nil {
			require.NoError(t, err, name)
		} else {
			require.ErrorIs(t, err, want[name], name)
		}
	}
}
