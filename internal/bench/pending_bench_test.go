package bench

import (
	"context"
	"flag"
	"net"
	"runtime"
	"sync"
	"testing"

	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/tlsconf"
)

var pendingConns = flag.Int("bench.pending", 10000, "connections held at once by BenchmarkPending")

// holdPeer is the server end of a pending connection: it sends the SMTP
// greeting, reads the EHLO line, reports that it holds the connection, and
// then says nothing more until the conn is closed. It reads into a buffer
// on its stack (no pool, whose contents would depend on what ran before),
// so what it holds is the same in every variant.
func holdPeer(conn net.Conn, holding *sync.WaitGroup) {
	defer conn.Close()
	if _, err := conn.Write(wireSMTPGreeting); err != nil {
		holding.Done()
		return
	}
	var buf [64]byte
	_, err := readLine(conn, buf[:])
	holding.Done()
	for err == nil {
		_, err = conn.Read(buf[:]) // until closed
	}
}

// rawPending is the no-library client of a pending connection: it reads
// the greeting into a buffer on its stack, writes EHLO and blocks on a
// read, as a hand-written client waiting for the EHLO reply does.
func rawPending(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	var buf [512]byte
	if _, err := conn.Read(buf[:]); err != nil {
		return
	}
	if _, err := conn.Write(cmdEHLO); err != nil {
		return
	}
	conn.Read(buf[:])
}

// libraryPending runs smtp.Upgrade, which blocks waiting for the EHLO reply
// until the context is cancelled.
func libraryPending(cfg *smtp.Options) func(ctx context.Context, conn net.Conn) {
	return func(ctx context.Context, conn net.Conn) {
		smtp.Upgrade(ctx, conn, cfg)
	}
}

// BenchmarkPending holds -bench.pending upgrades (10,000 by default) at once,
// each stopped mid-dialogue: the peer has sent its greeting and read the
// EHLO, and never answers it. The connections are net.Pipe pairs, which need
// no file descriptors. It reports the heap and the goroutine stacks in use
// per pending connection (both ends), measured after a GC while all are
// held; the Library variant minus the Raw one is the library's own memory
// per pending connection. Each iteration sets up and tears down all the
// connections (the cancelled context ends every upgrade); ns/op is that
// whole cycle.
func BenchmarkPending(b *testing.B) {
	n := *pendingConns
	opts := &smtp.Options{TLSConfig: tlsconf.Client("mx.example.test", nil)}
	for _, v := range []struct {
		name   string
		client func(ctx context.Context, conn net.Conn)
	}{
		{"Raw", rawPending},
		{"Library", libraryPending(opts)},
	} {
		b.Run(v.name, func(b *testing.B) {
			// A first cycle grows the runtime's own tables (goroutine
			// list, scheduler) to size, so that the measured ones see
			// only the connections.
			holdPending(b, n, v.client)
			var heap, stack float64
			for b.Loop() {
				h, s := holdPending(b, n, v.client)
				heap += h
				stack += s
			}
			b.ReportMetric(heap/float64(b.N), "heap-B/conn")
			b.ReportMetric(stack/float64(b.N), "stack-B/conn")
		})
	}
}

// holdPending opens n pipes, runs client and holdPeer on each, waits until
// every peer holds its conn, measures, then cancels and waits for all the
// goroutines to end. It returns the heap and stack bytes per connection.
func holdPending(b *testing.B, n int, client func(context.Context, net.Conn)) (heap, stack float64) {
	b.StopTimer()
	var before, during runtime.MemStats
	clients := make([]net.Conn, 0, n)
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.StartTimer()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var holding, done sync.WaitGroup
	holding.Add(n)
	done.Add(2 * n)
	for range n {
		c, s := net.Pipe()
		clients = append(clients, c)
		go func() {
			defer done.Done()
			holdPeer(s, &holding)
		}()
		go func() {
			defer done.Done()
			client(ctx, c)
		}()
	}
	holding.Wait()
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&during)
	b.StartTimer()
	// Cancelling ends every library upgrade, which closes its conn; the
	// raw clients are ended by closing their ends, which also ends the
	// peers.
	cancel()
	for _, c := range clients {
		c.Close()
	}
	done.Wait()
	heap = float64(int64(during.HeapInuse)-int64(before.HeapInuse)) / float64(n)
	stack = float64(int64(during.StackInuse)-int64(before.StackInuse)) / float64(n)
	return heap, stack
}
