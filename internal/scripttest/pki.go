package scripttest

import (
	"crypto/tls"
	"testing"

	"github.com/tlsup/tlsup/tlsconf"
)

// TestName is the name on the certificate of a [PKI]'s server config.
const TestName = "mx.example.test"

// PKI is a throwaway CA with a server certificate for TestName, "localhost"
// and 127.0.0.1, for tests.
type PKI struct {
	// CA is the throwaway CA that signed Cert; clients trust its pool.
	CA *tlsconf.CA
	// Cert is the server certificate.
	Cert tls.Certificate
}

// NewPKI makes a fresh PKI or fails the test.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	ca, err := tlsconf.NewCA("tlsup test CA")
	if err != nil {
		t.Fatalf("scripttest: %v", err)
	}
	cert, err := ca.Issue(TestName, "localhost", "127.0.0.1")
	if err != nil {
		t.Fatalf("scripttest: %v", err)
	}
	return &PKI{CA: ca, Cert: cert}
}

// Server returns a fresh server config presenting the PKI's certificate.
func (p *PKI) Server() *tls.Config { return tlsconf.Server(p.Cert) }

// Client returns a fresh verifying client config for name that trusts only
// the PKI's CA.
func (p *PKI) Client(name string) *tls.Config { return tlsconf.Client(name, p.CA.Pool()) }

// ServerWith returns a server config presenting cert (for certificate
// fault tests).
func ServerWith(cert tls.Certificate) *tls.Config { return tlsconf.Server(cert) }
