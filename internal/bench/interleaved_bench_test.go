package bench

import (
	"crypto/tls"
	"testing"
	"time"
)

// variant is one client of an interleaved comparison.
type variant struct {
	name   string
	addr   string
	client func(string, *tls.Config) error
}

// runInterleaved runs every variant once per iteration, one after the
// other in a rotating order, and reports each one's mean time per connection ("<name>-ns/op")
// and its ratio to the first variant, the floor ("<name>/floor"). A load
// that comes and goes on the machine then weighs on all of them alike,
// which separate benchmarks run minutes apart cannot promise. The time is
// a metric, never an assertion.
func runInterleaved(b *testing.B, cfg *tls.Config, variants []variant) {
	b.Helper()
	total := make([]time.Duration, len(variants))
	for round := 0; b.Loop(); round++ {
		// The order rotates, so that each variant follows each other one
		// as often: a connection's teardown on the server side, still
		// running when the next one starts, weighs on all alike.
		for k := range variants {
			i := (round + k) % len(variants)
			v := variants[i]
			start := time.Now()
			if err := v.client(v.addr, cfg); err != nil {
				b.Fatalf("%s: %v", v.name, err)
			}
			total[i] += time.Since(start)
		}
	}
	for i, v := range variants {
		b.ReportMetric(float64(total[i].Nanoseconds())/float64(b.N), v.name+"-ns/op")
		if i > 0 {
			b.ReportMetric(float64(total[i])/float64(total[0]), v.name+"/floor")
		}
	}
}

// BenchmarkInterleaved compares, per protocol, the floor, the minimal
// hand-written client, the library and (for SMTP) net/smtp in one
// interleaved loop; see runInterleaved.
func BenchmarkInterleaved(b *testing.B) {
	tp := newTLSPair(b)
	floor := startPeer(b, floorServer(tp.server))
	smtpPeer := startPeer(b, smtpServer.serve(tp.server))
	imapPeer := startPeer(b, imapServer.serve(tp.server))
	pop3Peer := startPeer(b, pop3Server.serve(tp.server))
	ctx := benchContext(b)
	raw := variant{"raw", floor.addr, rawTLS}
	b.Run("SMTP", func(b *testing.B) {
		runInterleaved(b, tp.client, []variant{raw,
			{"minimal", smtpPeer.addr, minimalSMTP},
			{"library", smtpPeer.addr, libraryClient(ctx, smtpUpgrade)},
			{"netsmtp", smtpPeer.addr, netSMTP},
		})
	})
	b.Run("IMAP", func(b *testing.B) {
		runInterleaved(b, tp.client, []variant{raw,
			{"minimal", imapPeer.addr, minimalIMAP},
			{"library", imapPeer.addr, libraryClient(ctx, imapUpgrade)},
		})
	})
	b.Run("POP3", func(b *testing.B) {
		runInterleaved(b, tp.client, []variant{raw,
			{"minimal", pop3Peer.addr, minimalPOP3},
			{"library", pop3Peer.addr, libraryClient(ctx, pop3Upgrade)},
		})
	})
}
