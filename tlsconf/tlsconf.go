// Package tlsconf builds fresh *tls.Config values for STARTTLS clients and
// servers, and makes throwaway certificate authorities for tests and
// examples.
//
// Every constructor returns a new Config with MinVersion TLS 1.2 (RFC 8996
// retired 1.0 and 1.1; RFC 8314, Section 4.1 asks for current TLS), so a
// caller may change it without affecting anyone else. The client
// constructors map to Postfix's smtp_tls_security_level values:
//
//	Client   "secure"/"verify": the chain must verify and the name match
//	Encrypt  "encrypt": TLS is required, the certificate is not checked, but
//	         the outcome of checking it is recorded
//	DANE     "dane": the certificate must match the DNSSEC-signed TLSA
//	         records given (RFC 7672); see smtp/dane for the lookup
//
// Postfix's "may" (opportunistic) is a starttls.Policy, not a Config: use
// Client with starttls.Opportunistic.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
)

// Client returns a verifying client config for serverName, which is both
// sent as SNI and verified against the certificate (a host name or an IP
// address). roots nil means the system roots. This is Postfix's "secure"
// level, and the default a client should use.
func Client(serverName string, roots *x509.CertPool) *tls.Config {
	return &tls.Config{
		ServerName: serverName,
		RootCAs:    roots,
		MinVersion: tls.VersionTLS12,
	}
}

// Server returns a server config presenting certs.
func Server(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: append([]tls.Certificate(nil), certs...),
		MinVersion:   tls.VersionTLS12,
	}
}

// Outcome records what certificate verification would have said on a
// connection made with an [Encrypt] config.
type Outcome struct {
	mu       sync.Mutex
	done     bool
	verified bool
	err      error
}

// Result returns whether verification ran, whether it succeeded, and its
// error when it did not.
func (o *Outcome) Result() (checked, verified bool, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.done, o.verified, o.err
}

func (o *Outcome) set(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done, o.verified, o.err = true, err == nil, err
}

// Encrypt returns a client config that encrypts but does not authenticate:
// the handshake succeeds whatever certificate the server shows, and the
// returned Outcome records whether it would have verified for serverName
// against roots (nil: system roots). This is Postfix's "encrypt" level. It
// stops passive eavesdropping only; an active attacker can present any
// certificate. Never make it a default. The Outcome belongs to one
// connection: make a new config per connection.
func Encrypt(serverName string, roots *x509.CertPool) (*tls.Config, *Outcome) {
	out := &Outcome{}
	cfg := &tls.Config{
		ServerName:         serverName,
		InsecureSkipVerify: true, // verification is done below and only recorded
		MinVersion:         tls.VersionTLS12,
		VerifyConnection: func(cs tls.ConnectionState) error {
			out.set(verify(cs, serverName, roots))
			return nil
		},
	}
	return cfg, out
}

func verify(cs tls.ConnectionState, name string, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tlsconf: no peer certificate")
	}
	opts := x509.VerifyOptions{
		Roots:         roots,
		DNSName:       name,
		Intermediates: x509.NewCertPool(),
	}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(opts)
	return err
}

// LoadRoots reads a PEM file of CA certificates into a new pool. It fails
// when the file holds no certificate.
func LoadRoots(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("tlsconf: no PEM certificate in %s", path)
	}
	return pool, nil
}
