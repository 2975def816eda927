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
func quickStart(addr string, roots *x509.CertPool, policy starttls.Policy) error {
	// README:begin
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tlsConn, res, err := smtp.Dial(ctx, "tcp", addr, &smtp.Options{
		TLSConfig: tlsconf.Client("localhost", roots), // roots nil: the system's
		Policy:    policy,                             // zero: starttls.Required
	})
	if err != nil {
		return err // conn closed; errors.Is(err, starttls.ErrNotOffered) etc. say why
	}
	defer tlsConn.Close() // safe under every policy
	if res.Plaintext {
		// Opportunistic only: STARTTLS was not offered
		fmt.Println("plaintext:", res.Before.List())
		return nil
	}
	fmt.Println(tls.VersionName(res.State.Version), res.After.List())
	return nil
	// README:end
}

// Example runs the README's quick start against the library's own
// TLS-first SMTP front on 127.0.0.1.
func Example() {
	addr, roots, stop := startServer()
	defer stop()
	if err := quickStart(addr, roots, starttls.Required); err != nil {
		log.Fatal(err)
	}
	// Output:
	// TLS 1.3 [PIPELINING 8BITMIME ENHANCEDSTATUSCODES AUTH PLAIN]
}

// Example_opportunistic runs the README's quick start under Opportunistic
// against a server that offers no STARTTLS: the session continues in
// plaintext, loudly, and the deferred Close does not panic.
func Example_opportunistic() {
	addr, stop := startPlainServer()
	defer stop()
	if err := quickStart(addr, nil, starttls.Opportunistic); err != nil {
		log.Fatal(err)
	}
	// Output:
	// plaintext: [PIPELINING 8BITMIME]
}

// TestReadmeQuickStartPolicies runs the README's quick start under every
// policy against a server with STARTTLS and one without: it never panics,
// and it fails exactly where the policy says.
func TestReadmeQuickStartPolicies(t *testing.T) {
	tests := []struct {
		policy  starttls.Policy
		tls     bool
		wantErr error // nil: success
	}{
		{starttls.Required, true, nil},
		{starttls.Always, true, nil},
		{starttls.Opportunistic, true, nil},
		{starttls.Required, false, starttls.ErrNotOffered},
		{starttls.Always, false, starttls.ErrRefused},
		{starttls.Opportunistic, false, nil},
	}
	for _, tt := range tests {
		name := tt.policy.String() + "/plaintext server"
		if tt.tls {
			name = tt.policy.String() + "/tls server"
		}
		t.Run(name, func(t *testing.T) {
			var err error
			if tt.tls {
				addr, roots, stop := startServer()
				defer stop()
				err = quickStart(addr, roots, tt.policy)
			} else {
				addr, stop := startPlainServer()
				defer stop()
				err = quickStart(addr, nil, tt.policy)
			}
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			var e *starttls.Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, tt.wantErr, e.Kind, "Kind agrees with errors.Is")
		})
	}
}

// startPlainServer serves one SMTP session without STARTTLS: greeting,
// EHLO, then 502 to anything until QUIT or a hang-up.
func startPlainServer() (addr string, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		c := starttls.NewConn(conn, nil)
		c.WriteLine("220 localhost ESMTP no TLS here")
		for range 10 {
			line, err := c.ReadLine()
			if err != nil {
				return
			}
			switch {
			case strings.HasPrefix(strings.ToUpper(string(line)), "EHLO"):
				smtp.WriteReply(c, 250, "localhost", "PIPELINING", "8BITMIME")
			case strings.EqualFold(string(line), "QUIT"):
				c.WriteLine("221 bye")
				return
			default:
				c.WriteLine("502 5.5.1 not implemented")
			}
		}
	}()
	return ln.Addr().String(), func() {
		ln.Close()
		<-done
	}
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
