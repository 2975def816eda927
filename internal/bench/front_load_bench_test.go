package bench

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

var frontConns = flag.Int("bench.fronts", 10000, "concurrent clients of BenchmarkFrontLoad")

// BenchmarkFrontLoad serves -bench.fronts clients (10,000 by default) at
// once on one 127.0.0.1 listener with smtp.Server, the library's pre-TLS
// front, and then has every one of them upgrade with smtp.Upgrade, the
// library's client, all concurrently. The clients run in a child process
// (this test binary running TestFrontLoadClients), so that each process
// needs one file descriptor per connection and the memory measured here
// is the server's alone.
//
// While all the clients are connected and every front has sent its
// greeting and waits for a command, it measures the heap (HeapInuse) and
// the goroutine stacks (StackInuse) per connection after a GC, and does the
// same for a control run that accepts as many connections and holds them
// without a front: front-heap-B/conn and front-stack-B/conn are the
// difference, the memory one waiting pre-TLS front costs (socket buffers,
// kernel memory, excluded). Then every client upgrades and leaves; the
// benchmark fails unless every front and every client succeeded, and
// reports goroutines-left, the goroutines still running once the last
// client has left (0: nothing leaks). Run it once:
//
//	go test -run '^$' -bench FrontLoad -benchtime 1x ./internal/bench/
func BenchmarkFrontLoad(b *testing.B) {
	n := *frontConns
	exe, err := os.Executable()
	if err != nil {
		b.Skipf("no executable to run the clients: %v", err)
	}
	ca, err := tlsconf.NewCA("bench CA")
	if err != nil {
		b.Fatal(err)
	}
	cert, err := ca.Issue("mx.example.test")
	if err != nil {
		b.Fatal(err)
	}
	caFile := filepath.Join(b.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o600); err != nil {
		b.Fatal(err)
	}
	srv := &smtp.Server{Options: starttls.ServerOptions{
		TLSConfig:        tlsconf.Server(cert),
		Hostname:         "mx.example.test",
		HandshakeTimeout: 2 * time.Minute,
		IdleTimeout:      5 * time.Minute,
		PreTLSTimeout:    10 * time.Minute,
	}}
	run := func(front bool) loadResult {
		return frontLoad(b, n, front, srv, func(addr string) *exec.Cmd {
			cmd := exec.Command(exe, "-test.run=^TestFrontLoadClients$", "-test.bench=^$")
			cmd.Env = append(os.Environ(), "TLSUP_FRONTLOAD="+strings.Join([]string{addr, strconv.Itoa(n), strconv.FormatBool(front), caFile}, ","))
			cmd.Stderr = os.Stderr
			return cmd
		})
	}
	for b.Loop() {
		baseGoroutines := runtime.NumGoroutine()
		control := run(false)
		load := run(true)
		b.ReportMetric(load.heap, "heap-B/conn")
		b.ReportMetric(load.stack, "stack-B/conn")
		b.ReportMetric(load.heap-control.heap, "front-heap-B/conn")
		b.ReportMetric(load.stack-control.stack, "front-stack-B/conn")
		b.ReportMetric(load.goroutines-control.goroutines, "goroutines/conn")
		left := 0
		for range 100 { // the last conns close a moment after their goroutines report
			if left = runtime.NumGoroutine() - baseGoroutines; left <= 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		b.ReportMetric(float64(max(left, 0)), "goroutines-left")
		if left > 0 {
			b.Errorf("%d goroutines left after every client left", left)
		}
	}
}

// loadResult is one frontLoad's memory per connection while all were held.
type loadResult struct {
	heap, stack, goroutines float64
}

// frontLoad has the child process that newClients starts connect n
// clients to a fresh listener. Without front it holds the accepted conns
// (the control); with it each conn runs srv.Serve, and once every front
// waits for a command, every client upgrades.
func frontLoad(b *testing.B, n int, front bool, srv *smtp.Server, newClients func(addr string) *exec.Cmd) loadResult {
	b.Helper()
	b.StopTimer()
	var before, during runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	goroutinesBefore := runtime.NumGoroutine()
	b.StartTimer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	var waiting, served sync.WaitGroup // fronts waiting for a command; fronts done
	waiting.Add(n)
	var frontErrs atomic.Int64
	var firstErr atomic.Value
	held := make([]net.Conn, 0, n) // the control's accepted conns
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for range n {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			if !front {
				held = append(held, conn)
				waiting.Done()
				continue
			}
			served.Add(1)
			go func() {
				defer served.Done()
				tc, err := srv.Serve(ctx, &firstRead{Conn: conn, waiting: &waiting})
				if err != nil {
					frontErrs.Add(1)
					firstErr.CompareAndSwap(nil, err)
					return
				}
				// The caller's loop after TLS: the fresh EHLO, until the
				// client leaves.
				defer tc.Close()
				for {
					if _, err := tc.ReadLine(); err != nil {
						return
					}
					if smtp.WriteReply(tc, 250, "mx.example.test", "8BITMIME") != nil {
						return
					}
				}
			}()
		}
	}()

	cmd := newClients(ln.Addr().String())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Process.Kill() // a no-op once it has exited
	reports := make(chan string, 2)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if r, ok := strings.CutPrefix(sc.Text(), "frontload: "); ok {
				reports <- r
			}
		}
		close(reports)
	}()
	report := func() string {
		select {
		case r, ok := <-reports:
			if !ok {
				b.Fatal("the client process ended without a report")
			}
			return r
		case <-ctx.Done():
			b.Fatal("the client process did not report in time")
		}
		return ""
	}
	if r := report(); r != "connected" {
		b.Fatalf("client process: %s", r)
	}
	waiting.Wait()
	<-accepted
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&during)
	goroutines := runtime.NumGoroutine() - goroutinesBefore
	b.StartTimer()

	io.WriteString(stdin, "go\n")
	r := report()
	for _, c := range held {
		c.Close()
	}
	served.Wait()
	if err := cmd.Wait(); err != nil {
		b.Fatalf("client process: %v", err)
	}
	if f := frontErrs.Load(); f > 0 || r != "done 0" {
		b.Fatalf("%d of %d fronts failed (first: %v); clients: %s", f, n, firstErr.Load(), r)
	}
	return loadResult{
		heap:       float64(int64(during.HeapInuse)-int64(before.HeapInuse)) / float64(n),
		stack:      float64(int64(during.StackInuse)-int64(before.StackInuse)) / float64(n),
		goroutines: float64(goroutines) / float64(n),
	}
}

// TestFrontLoadClients is the client process of BenchmarkFrontLoad, run
// only when TLSUP_FRONTLOAD is set ("addr,n,upgrade,ca.pem"): it connects
// n clients, reports "connected", waits for "go" on stdin, then upgrades
// them all at once with smtp.Upgrade (or, without upgrade, closes them)
// and reports "done <failures> [first error]".
func TestFrontLoadClients(t *testing.T) {
	env := os.Getenv("TLSUP_FRONTLOAD")
	if env == "" {
		t.Skip("the client process of BenchmarkFrontLoad")
	}
	parts := strings.Split(env, ",")
	if len(parts) != 4 {
		t.Fatalf("TLSUP_FRONTLOAD=%q", env)
	}
	addr, upgrade, caFile := parts[0], parts[2] == "true", parts[3]
	n, err := strconv.Atoi(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	roots, err := tlsconf.LoadRoots(caFile)
	if err != nil {
		t.Fatal(err)
	}
	conns, err := dialAll(addr, n)
	if err != nil {
		fmt.Printf("frontload: dial: %v\n", err)
		return
	}
	fmt.Println("frontload: connected")
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	if line != "go\n" {
		t.Fatalf("got %q on stdin", line)
	}
	if !upgrade {
		for _, c := range conns {
			c.Close()
		}
		fmt.Println("frontload: done 0")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	opts := &smtp.Options{TLSConfig: tlsconf.Client("mx.example.test", roots)}
	var wg sync.WaitGroup
	var failed atomic.Int64
	var first atomic.Value
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tc, _, err := smtp.Upgrade(ctx, c, opts)
			if err != nil {
				failed.Add(1)
				first.CompareAndSwap(nil, err)
				return
			}
			tc.Close()
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		fmt.Printf("frontload: done %d %v\n", f, first.Load())
		return
	}
	fmt.Println("frontload: done 0")
}

// dialAll opens n connections to addr, a few dials at a time.
func dialAll(addr string, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				c, err := net.Dial("tcp", addr)
				if err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return nil, err
	}
	return conns, nil
}

// firstRead reports its first Read: the front has written its greeting and
// waits for a command.
type firstRead struct {
	net.Conn
	once    sync.Once
	waiting *sync.WaitGroup
}

func (c *firstRead) Read(p []byte) (int, error) {
	c.once.Do(c.waiting.Done)
	return c.Conn.Read(p)
}
