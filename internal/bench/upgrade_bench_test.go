package bench

import (
	"context"
	"crypto/tls"
	"net"
	netsmtp "net/smtp"
	"testing"

	"github.com/tlsup/tlsup/imap"
	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/pop3"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
)

func smtpUpgrade(ctx context.Context, conn net.Conn, cfg *tls.Config) (*starttls.Result, error) {
	_, res, err := smtp.Upgrade(ctx, conn, &smtp.Options{TLSConfig: cfg})
	return res, err
}

func imapUpgrade(ctx context.Context, conn net.Conn, cfg *tls.Config) (*starttls.Result, error) {
	_, res, err := imap.Upgrade(ctx, conn, &imap.Options{TLSConfig: cfg})
	return res, err
}

func pop3Upgrade(ctx context.Context, conn net.Conn, cfg *tls.Config) (*starttls.Result, error) {
	_, res, err := pop3.Upgrade(ctx, conn, &pop3.Options{TLSConfig: cfg})
	return res, err
}

// netSMTP is the standard library's client: Dial (here NewClient on a conn
// dialled the same way as every other variant), Hello, StartTLS (EHLO,
// STARTTLS, handshake, EHLO) and Extension, which needs the EHLO inside
// TLS. The raw conn is closed at the end, as for the others.
func netSMTP(addr string, cfg *tls.Config) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	c, err := netsmtp.NewClient(conn, scripttest.TestName)
	if err != nil {
		return err
	}
	if err := c.Hello("localhost"); err != nil {
		return err
	}
	if err := c.StartTLS(cfg); err != nil {
		return err
	}
	c.Extension("AUTH")
	return nil
}

// benchContext is the caller's context of the library variants: one that
// can be cancelled, as a real caller's is, so that the context watch is
// measured, made once so that its own cost is not.
func benchContext(b *testing.B) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	return ctx
}

// runClient times client against the server at addr, one connection per
// iteration.
func runClient(b *testing.B, addr string, cfg *tls.Config, client func(string, *tls.Config) error) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		if err := client(addr, cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// runParallel is runClient under b.RunParallel.
func runParallel(b *testing.B, addr string, cfg *tls.Config, client func(string, *tls.Config) error) {
	b.Helper()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := client(addr, cfg); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRawTLS is the floor: TCP connect on loopback, a full TLS 1.3
// handshake (X25519, ECDSA P-256, no resumption) and one round trip.
func BenchmarkRawTLS(b *testing.B) {
	tp := newTLSPair(b)
	p := startPeer(b, floorServer(tp.server))
	runClient(b, p.addr, tp.client, rawTLS)
}

// BenchmarkSMTP compares the SMTP client upgrades against the same minimal
// server: a hand-written client with no checks, the library, net/smtp.
func BenchmarkSMTP(b *testing.B) {
	tp := newTLSPair(b)
	p := startPeer(b, smtpServer.serve(tp.server))
	ctx := benchContext(b)
	b.Run("Minimal", func(b *testing.B) { runClient(b, p.addr, tp.client, minimalSMTP) })
	b.Run("Library", func(b *testing.B) { runClient(b, p.addr, tp.client, libraryClient(ctx, smtpUpgrade)) })
	b.Run("NetSMTP", func(b *testing.B) { runClient(b, p.addr, tp.client, netSMTP) })
}

// BenchmarkIMAP compares the IMAP client upgrades.
func BenchmarkIMAP(b *testing.B) {
	tp := newTLSPair(b)
	p := startPeer(b, imapServer.serve(tp.server))
	ctx := benchContext(b)
	b.Run("Minimal", func(b *testing.B) { runClient(b, p.addr, tp.client, minimalIMAP) })
	b.Run("Library", func(b *testing.B) { runClient(b, p.addr, tp.client, libraryClient(ctx, imapUpgrade)) })
}

// BenchmarkPOP3 compares the POP3 client upgrades.
func BenchmarkPOP3(b *testing.B) {
	tp := newTLSPair(b)
	p := startPeer(b, pop3Server.serve(tp.server))
	ctx := benchContext(b)
	b.Run("Minimal", func(b *testing.B) { runClient(b, p.addr, tp.client, minimalPOP3) })
	b.Run("Library", func(b *testing.B) { runClient(b, p.addr, tp.client, libraryClient(ctx, pop3Upgrade)) })
}

// BenchmarkServer compares the server side with the same minimal SMTP
// client: the raw TLS floor server, the minimal hand-written STARTTLS
// server, that server with the transition done by starttls.ServerUpgrade,
// and the library's smtp.Server front.
func BenchmarkServer(b *testing.B) {
	tp := newTLSPair(b)
	raw := startPeer(b, floorServer(tp.server))
	minimal := startPeer(b, smtpServer.serve(tp.server))
	upgrade := startPeer(b, serverUpgradeServer(tp.server))
	front := startPeer(b, frontServer(tp.server))
	b.Run("RawTLS", func(b *testing.B) { runClient(b, raw.addr, tp.client, rawTLS) })
	b.Run("Minimal", func(b *testing.B) { runClient(b, minimal.addr, tp.client, minimalSMTP) })
	b.Run("ServerUpgrade", func(b *testing.B) { runClient(b, upgrade.addr, tp.client, minimalSMTP) })
	b.Run("Front", func(b *testing.B) { runClient(b, front.addr, tp.client, minimalSMTP) })
}

// BenchmarkParallel runs the floor and the SMTP upgrades under
// b.RunParallel (GOMAXPROCS goroutines), to compare how they scale.
func BenchmarkParallel(b *testing.B) {
	tp := newTLSPair(b)
	raw := startPeer(b, floorServer(tp.server))
	p := startPeer(b, smtpServer.serve(tp.server))
	ctx := benchContext(b)
	b.Run("RawTLS", func(b *testing.B) { runParallel(b, raw.addr, tp.client, rawTLS) })
	b.Run("SMTPMinimal", func(b *testing.B) { runParallel(b, p.addr, tp.client, minimalSMTP) })
	b.Run("SMTPLibrary", func(b *testing.B) { runParallel(b, p.addr, tp.client, libraryClient(ctx, smtpUpgrade)) })
}
