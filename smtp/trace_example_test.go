package smtp_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// Hooks on the context follow an upgrade step by step, in the manner of
// net/http/httptrace; Result.Timings has each step's duration.
func ExampleUpgrade_trace() {
	conn, roots, wait := startExampleServer(true)
	defer wait()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx = starttls.WithClientTrace(ctx, &starttls.ClientTrace{
		CapabilitiesDiscovered: func(inTLS bool, caps *starttls.Capabilities, err error) {
			fmt.Println("capabilities, inside TLS:", inTLS, caps.List())
		},
		PolicyDecided: func(offered bool, d starttls.Decision) { fmt.Println("offered:", offered, "decision:", d) },
		HandshakeDone: func(state tls.ConnectionState, err error) {
			fmt.Println("handshake:", tls.VersionName(state.Version), "resumed:", state.DidResume, err)
		},
	})
	tc, res, err := smtp.Upgrade(ctx, conn, &smtp.Options{TLSConfig: tlsconf.Client("mx.example.test", roots)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tc.Close()
	fmt.Println("handshake timed:", res.Timings.Handshake > 0)
	// Output:
	// capabilities, inside TLS: false [PIPELINING SIZE 10240000 STARTTLS]
	// offered: true decision: upgrade
	// handshake: TLS 1.3 resumed: false <nil>
	// capabilities, inside TLS: true [SIZE 52428800 AUTH PLAIN LOGIN]
	// handshake timed: true
}

// With a logger, each upgrade is one Info record (the steps at Debug, the
// redacted transcript below that). Time, elapsed and cipher are left out
// here only to keep the output stable.
func ExampleUpgrade_logger() {
	conn, roots, wait := startExampleServer(true)
	defer wait()

	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "elapsed", "cipher", "remote":
				return slog.Attr{}
			}
			return a
		},
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tc, _, err := smtp.Upgrade(ctx, conn, &smtp.Options{TLSConfig: tlsconf.Client("mx.example.test", roots), Logger: logger})
	if err != nil {
		return
	}
	tc.Close()
	// Output:
	// level=INFO msg="starttls upgrade" protocol=smtp mode=starttls policy=required tls_version="TLS 1.3" resumed=false server_name=mx.example.test outcome=tls
}
