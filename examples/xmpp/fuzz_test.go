package xmpp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/examples/xmpp"
	"github.com/tlsup/tlsup/starttls"
)

// scriptedConn is a net.Conn whose reads return the fuzzer's bytes in
// chunks and whose writes are dropped.
type scriptedConn struct {
	net.Conn
	data  []byte
	chunk int
	read  int
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

func (c *scriptedConn) Write(p []byte) (int, error) { return len(p), nil }

// FuzzUpgraderStream runs the stream header, the features and the answer
// to STARTTLS over any server bytes. Invariants: no panic; each step
// consumes at most MaxElementSize bytes; a go-ahead ends exactly at a '>'
// (nothing behind <proceed/> consumed); every error matches exactly one
// kind and its text, the greeting and the capabilities hold no raw
// control character.
func FuzzUpgraderStream(f *testing.F) {
	f.Add([]byte(serverHead+featuresTLS+proceed), byte(3))
	f.Add([]byte(serverHead+featuresTLS+"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'></proceed>"+serverHead), byte(1))
	f.Add([]byte(serverHead+"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features><failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"), byte(7))
	f.Add([]byte("<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><stream:stream/>"), byte(5))
	f.Add([]byte(serverHead+"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"), byte(2))
	f.Add([]byte(serverHead+strings.Repeat("<a>", 20)), byte(9))
	for _, b := range transcripts(f) {
		f.Add(b, byte(13))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk byte) {
		const max = 2048
		conn := &scriptedConn{data: bytes.Clone(data), chunk: int(chunk%32) + 1}
		c := starttls.NewConn(conn, nil)
		u := &xmpp.Upgrader{Domain: "example.test", MaxElementSize: max, MaxDepth: 8}
		ctx := context.Background()
		consumed := func() int { return conn.read - c.Buffered() }

		check := func(err error) {
			kinds := []error{starttls.ErrRefused, starttls.ErrGreetingRejected, starttls.ErrProtocol, starttls.ErrTooLarge, io.ErrUnexpectedEOF}
			matched := 0
			for _, k := range kinds {
				if errors.Is(err, k) {
					matched++
				}
			}
			require.Equal(t, 1, matched, "error %v matches %d kinds", err, matched)
			assert.Equal(t, -1, starttls.IndexControl(err.Error()), "raw control in %q", err)
		}
		g, err := u.Greet(ctx, c)
		require.LessOrEqual(t, consumed(), max)
		if err != nil {
			check(err)
			return
		}
		require.Equal(t, -1, starttls.IndexControl(g.Text))
		before := consumed()
		caps, err := u.Discover(ctx, c)
		require.LessOrEqual(t, consumed()-before, max)
		if err != nil {
			check(err)
			return
		}
		for _, e := range caps.List() {
			require.Equal(t, -1, starttls.IndexControl(e), "entry %q", e)
		}
		before = consumed()
		err = u.StartTLS(ctx, c)
		require.LessOrEqual(t, consumed()-before, max)
		if err != nil {
			check(err)
			return
		}
		n := consumed()
		require.Positive(t, n)
		require.Equal(t, byte('>'), data[n-1], "go-ahead not ending at '>': %q", data[:n])
		require.Contains(t, string(data[before:n]), "proceed")
	})
}

// transcripts returns what Prosody 0.12 sent to .ci/real-binproto.sh's
// probes (testdata/*.xml): its stream header and features, then its answer
// to <starttls/>.
func transcripts(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob("testdata/*.xml")
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

func TestProsodyTranscripts(t *testing.T) {
	tests := map[string]struct {
		from     string
		features []string
		err      error
	}{
		"prosody-0.12-offered.xml":            {"xmpp.tlsup.test", []string{"mechanisms SCRAM-SHA-1 SCRAM-SHA-256", "starttls"}, nil},
		"prosody-0.12-required.xml":           {"required.tlsup.test", []string{"starttls required"}, nil},
		"prosody-0.12-not-offered-always.xml": {"notls.tlsup.test", []string{"mechanisms SCRAM-SHA-1 SCRAM-SHA-256"}, starttls.ErrRefused},
	}
	got := transcripts(t)
	require.Len(t, got, len(tests))
	for name, data := range got {
		tt := tests[name]
		conn := &scriptedConn{data: data, chunk: 64}
		c := starttls.NewConn(conn, nil)
		u := &xmpp.Upgrader{Domain: tt.from}
		g, err := u.Greet(context.Background(), c)
		require.NoError(t, err, name)
		assert.Equal(t, tt.from, g.Text)
		caps, err := u.Discover(context.Background(), c)
		require.NoError(t, err, name)
		assert.Equal(t, tt.features, caps.List(), name)
		err = u.StartTLS(context.Background(), c)
		if tt.err == nil {
			require.NoError(t, err, name)
			assert.Zero(t, c.Buffered(), "nothing read behind <proceed/>")
		} else {
			require.ErrorIs(t, err, tt.err, name)
		}
	}
}
