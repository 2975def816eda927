package starttls_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/proxy"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
)

// recorder is a ClientTrace that notes each hook it sees, with a prefix.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *recorder) trace(prefix string) *starttls.ClientTrace {
	return &starttls.ClientTrace{
		ConnectDone:  func(network, addr string, err error) { r.add("%sconnect %v", prefix, err) },
		GreetingRead: func(text string, err error) { r.add("%sgreeting %q %v", prefix, text, err) },
		CapabilitiesDiscovered: func(inTLS bool, caps *starttls.Capabilities, err error) {
			r.add("%scapabilities tls=%v %v %v", prefix, inTLS, caps.List(), err)
		},
		PolicyDecided:  func(offered bool, d starttls.Decision) { r.add("%spolicy offered=%v %s", prefix, offered, d) },
		StartTLSStart:  func() { r.add("%sstarttls", prefix) },
		GoAheadRead:    func(err error) { r.add("%sgo-ahead %v", prefix, err) },
		HandshakeStart: func() { r.add("%shandshake", prefix) },
		HandshakeDone: func(state tls.ConnectionState, err error) {
			r.add("%shandshake done %s resumed=%v %v", prefix, tls.VersionName(state.Version), state.DidResume, err)
		},
		UpgradeDone: func(res *starttls.Result, err error) { r.add("%sdone tls=%v %v", prefix, res != nil && res.TLS, err) },
	}
}

func TestClientTrace(t *testing.T) {
	pki := scripttest.NewPKI(t)
	tests := []struct {
		name   string
		script string
		policy starttls.Policy
		want   []string
	}{
		{"upgrade", toyGreet + toyCapsTLS + toyGo + toyAfter, starttls.Required, []string{
			`greeting "toy ready" <nil>`,
			`capabilities tls=false [PIPELINING STARTTLS] <nil>`,
			`policy offered=true upgrade`,
			`starttls`,
			`go-ahead <nil>`,
			`handshake`,
			`handshake done TLS 1.3 resumed=false <nil>`,
			`capabilities tls=true [AUTH PLAIN] <nil>`,
			`done tls=true <nil>`,
		}},
		{"plaintext", toyGreet + toyCapsNoTLS, starttls.Opportunistic, []string{
			`greeting "toy ready" <nil>`,
			`capabilities tls=false [PIPELINING XSTARTTLS] <nil>`,
			`policy offered=false plaintext`,
			`done tls=false <nil>`,
		}},
		{"not offered", toyGreet + toyCapsNoTLS + toyNotStarted, starttls.Required, []string{
			`greeting "toy ready" <nil>`,
			`capabilities tls=false [PIPELINING XSTARTTLS] <nil>`,
			`policy offered=false fail`,
			`done tls=false toy: discover: not offered`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, peer := scripttest.Pipe(t, tt.script, &scripttest.Options{TLSConfig: pki.Server()})
			var r recorder
			// Two traces compose: the later one's hooks run first.
			ctx := starttls.WithClientTrace(background(t, 5*time.Second), r.trace("first: "))
			ctx = starttls.WithClientTrace(ctx, r.trace(""))
			tc, _, err := starttls.Upgrade(ctx, raw, &toy{}, &starttls.Config{TLSConfig: pki.Client(scripttest.TestName), Policy: tt.policy})
			if err == nil {
				tc.Close()
			}
			require.NoError(t, peer.Wait())
			var want []string
			for _, w := range tt.want {
				want = append(want, w, "first: "+w)
			}
			assert.Equal(t, want, r.events)
		})
	}
}

func TestContextClientTrace(t *testing.T) {
	ctx := context.Background()
	assert.Nil(t, starttls.ContextClientTrace(ctx))
	assert.Equal(t, ctx, starttls.WithClientTrace(ctx, nil))
	trace := &starttls.ClientTrace{}
	assert.Same(t, trace, starttls.ContextClientTrace(starttls.WithClientTrace(ctx, trace)))
}

// TestTimings: the steps that ran have a duration, the others none.
func TestTimings(t *testing.T) {
	pki := scripttest.NewPKI(t)
	raw, peer := scripttest.Pipe(t, toyGreet+toyCapsTLS+toyGo+toyAfter, &scripttest.Options{TLSConfig: pki.Server()})
	tc, res, err := starttls.Upgrade(background(t, 5*time.Second), raw, &toy{}, &starttls.Config{TLSConfig: pki.Client(scripttest.TestName)})
	require.NoError(t, err)
	tc.Close()
	require.NoError(t, peer.Wait())
	tm := res.Timings
	assert.Zero(t, tm.Connect, "Upgrade connects nothing")
	for name, d := range map[string]time.Duration{"greeting": tm.Greeting, "discovery": tm.Discovery,
		"starttls": tm.StartTLS, "handshake": tm.Handshake, "rediscovery": tm.Rediscovery} {
		assert.Positive(t, d, name)
	}
	assert.False(t, res.Resumed)
}

// TestLogger: one Info record per upgrade with the facts an operator asks
// first, the steps at Debug, the transcript below.
func TestLogger(t *testing.T) {
	pki := scripttest.NewPKI(t)
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug, starttls.LevelTranscript} {
		t.Run(level.String(), func(t *testing.T) {
			raw, peer := scripttest.Pipe(t, toyGreet+toyCapsTLS+toyGo+toyAfter, &scripttest.Options{TLSConfig: pki.Server()})
			var buf bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level}))
			tc, _, err := starttls.Upgrade(background(t, 5*time.Second), raw, &toy{}, &starttls.Config{
				TLSConfig: pki.Client(scripttest.TestName), Logger: logger,
			})
			require.NoError(t, err)
			tc.Close()
			require.NoError(t, peer.Wait())
			out := buf.String()
			var info []string
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, "level=INFO") {
					info = append(info, line)
				}
			}
			require.Len(t, info, 1, "one Info record per upgrade:\n%s", out)
			for _, attr := range []string{`msg="starttls upgrade"`, "protocol=toy", "mode=starttls", "policy=required",
				`tls_version="TLS 1.3"`, "cipher=TLS_", "resumed=false", "server_name=mx.example.test", "elapsed=", "outcome=tls"} {
				assert.Contains(t, info[0], attr)
			}
			assert.Equal(t, level <= slog.LevelDebug, strings.Contains(out, `msg="starttls handshake done"`), "steps at Debug")
			assert.Equal(t, level <= starttls.LevelTranscript, strings.Contains(out, `line="C: GO"`), "transcript below Debug")
		})
	}
}

// TestLoggerError: a failure is logged once at Info with its step.
func TestLoggerError(t *testing.T) {
	pki := scripttest.NewPKI(t)
	raw, peer := scripttest.Pipe(t, toyGreet+toyCapsNoTLS+toyNotStarted, &scripttest.Options{TLSConfig: pki.Server()})
	var buf bytes.Buffer
	_, _, err := starttls.Upgrade(background(t, 5*time.Second), raw, &toy{}, &starttls.Config{
		TLSConfig: pki.Client(scripttest.TestName), Logger: slog.New(slog.NewTextHandler(&buf, nil)),
	})
	require.ErrorIs(t, err, starttls.ErrNotOffered)
	require.NoError(t, peer.Wait())
	assert.Contains(t, buf.String(), "outcome=error step=discover")
	assert.Equal(t, 1, strings.Count(buf.String(), "\n"))
}

// TestNoTraceAllocatesNothing: without hooks, tracing costs a context
// lookup and nothing else.
func TestNoTraceAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		starttls.TraceDispatchForTest(ctx)
	})
	assert.Zero(t, allocs)
}

// BenchmarkTraceDispatch measures what every hook of one upgrade costs
// with no trace attached (the zero cost) and with one.
func BenchmarkTraceDispatch(b *testing.B) {
	traced := starttls.WithClientTrace(context.Background(), &starttls.ClientTrace{HandshakeStart: func() {}})
	for _, bc := range []struct {
		name string
		ctx  context.Context
	}{{"none", context.Background()}, {"one", traced}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				starttls.TraceDispatchForTest(bc.ctx)
			}
		})
	}
}

// TestDialThroughSOCKS5: Dial takes a dialer; through a SOCKS5 proxy the
// bytes take the route, while the name verified is the host given to
// Dial, never the proxy's.
func TestDialThroughSOCKS5(t *testing.T) {
	pki := scripttest.NewPKI(t)
	addr, peer := scripttest.Listen(t, toyGreet+toyCapsTLS+toyGo+toyAfter, &scripttest.Options{TLSConfig: pki.Server()})
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	socks, targets := startSOCKS5(t, addr)
	d, err := proxy.SOCKS5("tcp", socks, nil, proxy.Direct)
	require.NoError(t, err)
	cd, ok := d.(proxy.ContextDialer)
	require.True(t, ok)
	var r recorder
	ctx := starttls.WithClientTrace(background(t, 5*time.Second), r.trace(""))
	tc, res, err := starttls.Dial(ctx, "tcp", net.JoinHostPort(scripttest.TestName, port), &toy{},
		&starttls.Config{Dialer: cd, TLSConfig: &tls.Config{RootCAs: pki.CA.Pool(), MinVersion: tls.VersionTLS12}})
	require.NoError(t, err)
	tc.Close()
	require.NoError(t, peer.Wait())
	assert.Equal(t, scripttest.TestName, res.State.ServerName, "the name dialled, verified")
	assert.Equal(t, []string{net.JoinHostPort(scripttest.TestName, port)}, targets(), "the proxy was asked for the name, unresolved")
	assert.Positive(t, res.Timings.Connect)
	assert.Equal(t, "connect <nil>", r.events[0])
}

// startSOCKS5 serves SOCKS5 (RFC 1928: no authentication, CONNECT) on
// 127.0.0.1 for one client, connecting every request to upstream, and
// returns its address and the targets it was asked for.
func startSOCKS5(t *testing.T, upstream string) (string, func() []string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var targets []string
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 262)
		// Greeting: version, methods; we choose "no authentication".
		if _, err := io.ReadFull(conn, buf[:2]); err != nil {
			return
		}
		if _, err := io.ReadFull(conn, buf[:buf[1]]); err != nil {
			return
		}
		conn.Write([]byte{5, 0})
		// Request: version, CONNECT, reserved, address type.
		if _, err := io.ReadFull(conn, buf[:4]); err != nil || buf[1] != 1 {
			return
		}
		var host string
		switch buf[3] {
		case 1:
			io.ReadFull(conn, buf[:4])
			host = net.IP(buf[:4]).String()
		case 3:
			io.ReadFull(conn, buf[:1])
			n := int(buf[0])
			io.ReadFull(conn, buf[:n])
			host = string(buf[:n])
		default:
			return
		}
		io.ReadFull(conn, buf[:2])
		port := binary.BigEndian.Uint16(buf[:2])
		mu.Lock()
		targets = append(targets, net.JoinHostPort(host, fmt.Sprint(port)))
		mu.Unlock()
		up, err := net.Dial("tcp", upstream)
		if err != nil {
			conn.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
			return
		}
		defer up.Close()
		conn.Write([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 0})
		conn.SetDeadline(time.Time{})
		go func() {
			io.Copy(up, conn)
			up.Close()
		}()
		io.Copy(conn, up)
	}()
	return ln.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), targets...)
	}
}
