package tlsup_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// quickStart is the README's quick start, verbatim between the markers.
func quickStart(addr string, roots *x509.CertPool) {
	// README:begin
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tlsConn, res, err := smtp.Dial(ctx, "tcp", addr, &smtp.Options{
		TLSConfig: tlsconf.Client("localhost", roots), // roots nil: the system's
	})
	if err != nil {
		log.Fatal(err) // conn closed; errors.Is(err, starttls.ErrNotOffered) etc. say why
	}
	defer tlsConn.Close()
	fmt.Println(tls.VersionName(res.State.Version), res.After.List())
	// README:end
}

// Example runs the README's quick start against the library's own
// TLS-first SMTP front on 127.0.0.1.
func Example() {
	addr, roots, stop := startServer()
	defer stop()
	quickStart(addr, roots)
	// Output:
	// TLS 1.3 [PIPELINING 8BITMIME ENHANCEDSTATUSCODES AUTH PLAIN]
}

// startServer serves one SMTP session: the library's pre-TLS front, then a
// fresh EHLO answered inside TLS.
func startServer() (addr string, roots *x509.CertPool, stop func()) {
	ca, err := tlsconf.NewCA("readme CA")
	if err != nil {
		panic(err)
	}
	cert, err := ca.Issue("localhost", "127.0.0.1")
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		srv := &smtp.Server{Options: starttls.ServerOptions{TLSConfig: tlsconf.Server(cert)}}
		tc, err := srv.Serve(ctx, conn)
		if err != nil {
			return
		}
		defer tc.Close()
		if _, err := tc.ReadLine(); err != nil { // the client's fresh EHLO
			return
		}
		caps := smtp.Capabilities(&smtp.CapabilityOptions{TLS: true, Mechanisms: []string{"PLAIN"}})
		smtp.WriteReply(tc, 250, append([]string{"localhost"}, caps.List()...)...)
		tc.ReadLine() // until the client hangs up
	}()
	return ln.Addr().String(), ca.Pool(), func() {
		ln.Close()
		cancel()
		<-done
	}
}

// TestReadmeQuickStart keeps the README's snippet identical to the code the
// Example runs, so that the README cannot show code that does not compile.
func TestReadmeQuickStart(t *testing.T) {
	src, err := os.ReadFile("readme_test.go")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(src), "\t// README:begin\n")
	require.True(t, ok)
	body, _, ok := strings.Cut(rest, "\t// README:end\n")
	require.True(t, ok)
	var snippet strings.Builder
	for _, line := range strings.SplitAfter(body, "\n") {
		snippet.WriteString(strings.TrimPrefix(line, "\t"))
	}
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	require.Contains(t, string(readme), snippet.String(), "README quick start differs from readme_test.go's quickStart")
}
