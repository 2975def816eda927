package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/tlsup/tlsup/tlsconf"
)

// resumedPair is the TLS pair with session tickets on and a client session
// cache (tlsconf.SessionCache), so that every handshake after the first
// resumes.
func resumedPair(b *testing.B) (client, server *tls.Config) {
	tp := newTLSPair(b)
	server = tp.server.Clone()
	server.SessionTicketsDisabled = false
	server.SetSessionTicketKeys([][32]byte{{7}}) // one key for every peer
	return tlsconf.NewSessionCache(64).Config(tp.client), server
}

// rawTLSResumed is the floor with resumption: rawTLS that fails unless the
// handshake resumed (the first connection of a run aside).
func rawTLSResumed(first *bool) func(string, *tls.Config) error {
	return func(addr string, cfg *tls.Config) error {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		tc := tls.Client(conn, cfg)
		if err := tc.Handshake(); err != nil {
			return err
		}
		if !tc.ConnectionState().DidResume && !*first {
			return errors.New("bench: raw handshake did not resume")
		}
		*first = false
		if _, err := tc.Write(linePING); err != nil {
			return err
		}
		var buf [64]byte
		_, err = readLine(tc, buf[:])
		return err
	}
}

// libraryResumed is libraryClient that fails unless Result.Resumed says the
// session resumed (the first connection aside).
func libraryResumed(ctx context.Context, up upgradeFunc, first *bool) func(string, *tls.Config) error {
	return func(addr string, cfg *tls.Config) error {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		res, err := up(ctx, conn, cfg)
		if err != nil {
			return err
		}
		if !res.TLS || res.After.Len() == 0 || (!res.Resumed && !*first) {
			return fmt.Errorf("bench: upgrade without resumption, tls or capabilities: %+v", res)
		}
		*first = false
		return nil
	}
}

// BenchmarkInterleavedResumed is BenchmarkInterleaved's SMTP row with TLS
// session resumption on every side: the floor is a resumed raw-TLS
// handshake and one round trip; "library/minimal" is what the library adds
// to a resumed upgrade.
func BenchmarkInterleavedResumed(b *testing.B) {
	client, server := resumedPair(b)
	floor := startPeer(b, floorServer(server))
	smtpPeer := startPeer(b, smtpServer.serve(server))
	ctx := benchContext(b)
	rawFirst, libFirst := true, true
	runInterleaved(b, client, []variant{
		{"raw", floor.addr, rawTLSResumed(&rawFirst)},
		{"minimal", smtpPeer.addr, minimalSMTP},
		{"library", smtpPeer.addr, libraryResumed(ctx, smtpUpgrade, &libFirst)},
	})
}
