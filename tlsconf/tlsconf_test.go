package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/tlsconf"
)

const name = "mx.example.test"

// handshake runs a TLS handshake between the two configs over loopback TCP
// (both sides write at once when one rejects the other, which net.Pipe
// cannot carry) and returns the client's error and state, and the server's
// error.
func handshake(t *testing.T, server, client *tls.Config) (tls.ConnectionState, error, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	serverErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			serverErr <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		tc := tls.Server(c, server)
		err = tc.Handshake()
		if err == nil {
			// Read the client's close, so that TLS 1.3 session tickets
			// and the close_notify are exchanged before returning.
			_, err = tc.Read(make([]byte, 1))
			if errors.Is(err, net.ErrClosed) || err != nil && strings.Contains(err.Error(), "EOF") {
				err = nil
			}
		}
		serverErr <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	tc := tls.Client(c, client)
	clientErr := tc.Handshake()
	state := tc.ConnectionState()
	tc.Close()
	select {
	case err := <-serverErr:
		return state, clientErr, err
	case <-time.After(10 * time.Second):
		t.Fatal("server side did not finish")
	}
	return state, clientErr, nil
}

func newCA(t *testing.T) *tlsconf.CA {
	t.Helper()
	ca, err := tlsconf.NewCA("tlsconf test CA")
	require.NoError(t, err)
	return ca
}

func issue(t *testing.T, ca *tlsconf.CA, names ...string) tls.Certificate {
	t.Helper()
	cert, err := ca.Issue(names...)
	require.NoError(t, err)
	return cert
}

func TestClient(t *testing.T) {
	ca := newCA(t)
	other := newCA(t)
	good := issue(t, ca, name, "127.0.0.1")
	expired, err := ca.IssueLeaf(tlsconf.Leaf{Names: []string{name},
		NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	require.NoError(t, err)
	notYet, err := ca.IssueLeaf(tlsconf.Leaf{Names: []string{name},
		NotBefore: time.Now().Add(24 * time.Hour), NotAfter: time.Now().Add(48 * time.Hour)})
	require.NoError(t, err)
	self, err := tlsconf.SelfSigned(name)
	require.NoError(t, err)
	tests := []struct {
		name   string
		cert   tls.Certificate
		client *tls.Config
		reason func(error) bool // nil: the handshake succeeds
	}{
		{"verifies", good, tlsconf.Client(name, ca.Pool()), nil},
		{"ip san", good, tlsconf.Client("127.0.0.1", ca.Pool()), nil},
		{"wrong host", good, tlsconf.Client("other.example.test", ca.Pool()), isHostname},
		{"wrong ip", good, tlsconf.Client("127.0.0.2", ca.Pool()), isHostname},
		{"unknown root", good, tlsconf.Client(name, other.Pool()), isUnknownAuthority},
		{"self-signed", self, tlsconf.Client(name, ca.Pool()), isUnknownAuthority},
		{"expired", expired, tlsconf.Client(name, ca.Pool()), isExpired},
		{"not yet valid", notYet, tlsconf.Client(name, ca.Pool()), isExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state, clientErr, serverErr := handshake(t, tlsconf.Server(tt.cert), tt.client)
			if tt.reason == nil {
				require.NoError(t, clientErr)
				require.NoError(t, serverErr)
				assert.True(t, state.HandshakeComplete)
				assert.GreaterOrEqual(t, state.Version, uint16(tls.VersionTLS12))
				require.NotEmpty(t, state.VerifiedChains)
				return
			}
			require.Error(t, clientErr)
			var verr *tls.CertificateVerificationError
			require.ErrorAs(t, clientErr, &verr)
			assert.True(t, tt.reason(clientErr), "wrong reason: %v", clientErr)
			assert.Error(t, serverErr, "the server sees the client's alert")
		})
	}
}

func isHostname(err error) bool {
	var h x509.HostnameError
	return errors.As(err, &h)
}

func isUnknownAuthority(err error) bool {
	var u x509.UnknownAuthorityError
	return errors.As(err, &u)
}

func isExpired(err error) bool {
	var c x509.CertificateInvalidError
	return errors.As(err, &c) && c.Reason == x509.Expired
}

func TestEncrypt(t *testing.T) {
	ca := newCA(t)
	self, err := tlsconf.SelfSigned(name)
	require.NoError(t, err)
	tests := []struct {
		name         string
		cert         tls.Certificate
		serverName   string
		roots        *x509.CertPool
		wantVerified bool
		reason       func(error) bool
	}{
		{"right CA", issue(t, ca, name), name, ca.Pool(), true, nil},
		{"right CA, ip", issue(t, ca, "127.0.0.1"), "127.0.0.1", ca.Pool(), true, nil},
		{"self-signed", self, name, ca.Pool(), false, isUnknownAuthority},
		{"wrong host", issue(t, ca, name), "other.example.test", ca.Pool(), false, isHostname},
		{"unknown root", issue(t, ca, name), name, newCA(t).Pool(), false, isUnknownAuthority},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, outcome := tlsconf.Encrypt(tt.serverName, tt.roots)
			checked, _, _ := outcome.Result()
			assert.False(t, checked, "outcome before any handshake")
			state, clientErr, serverErr := handshake(t, tlsconf.Server(tt.cert), cfg)
			require.NoError(t, clientErr, "encrypt completes the handshake whatever the certificate")
			require.NoError(t, serverErr)
			assert.True(t, state.HandshakeComplete)
			checked, verified, err := outcome.Result()
			assert.True(t, checked)
			assert.Equal(t, tt.wantVerified, verified)
			if tt.wantVerified {
				assert.NoError(t, err)
			} else {
				require.Error(t, err)
				assert.True(t, tt.reason(err), "wrong reason: %v", err)
			}
		})
	}
}

func TestEncryptNotDefault(t *testing.T) {
	// Only Encrypt skips the built-in verification; it still records it.
	cfg, _ := tlsconf.Encrypt(name, nil)
	assert.True(t, cfg.InsecureSkipVerify)
	assert.NotNil(t, cfg.VerifyConnection)
	assert.False(t, tlsconf.Client(name, nil).InsecureSkipVerify)
	assert.Nil(t, tlsconf.Client(name, nil).VerifyConnection)
}

func TestMinVersionAndFresh(t *testing.T) {
	ca := newCA(t)
	cert := issue(t, ca, name)
	constructors := map[string]func() *tls.Config{
		"Client":  func() *tls.Config { return tlsconf.Client(name, ca.Pool()) },
		"Server":  func() *tls.Config { return tlsconf.Server(cert) },
		"Encrypt": func() *tls.Config { c, _ := tlsconf.Encrypt(name, ca.Pool()); return c },
	}
	for cname, newConfig := range constructors {
		t.Run(cname, func(t *testing.T) {
			first := newConfig()
			assert.Equal(t, uint16(tls.VersionTLS12), first.MinVersion)
			first.MinVersion = tls.VersionTLS10
			first.ServerName = "mutated.example.test"
			first.Certificates = nil
			first.InsecureSkipVerify = !first.InsecureSkipVerify
			second := newConfig()
			assert.NotSame(t, first, second)
			assert.Equal(t, uint16(tls.VersionTLS12), second.MinVersion, "mutating one config changed the next")
			assert.NotEqual(t, "mutated.example.test", second.ServerName)
			assert.NotEqual(t, first.InsecureSkipVerify, second.InsecureSkipVerify)
		})
	}
	t.Run("Server copies its certificates", func(t *testing.T) {
		certs := []tls.Certificate{cert}
		cfg := tlsconf.Server(certs...)
		certs[0] = tls.Certificate{}
		require.Len(t, cfg.Certificates, 1)
		assert.NotEmpty(t, cfg.Certificates[0].Certificate)
	})
	t.Run("Encrypt outcomes are per config", func(t *testing.T) {
		_, a := tlsconf.Encrypt(name, ca.Pool())
		_, b := tlsconf.Encrypt(name, ca.Pool())
		assert.NotSame(t, a, b)
	})
	t.Run("a TLS 1.1 server is refused", func(t *testing.T) {
		server := tlsconf.Server(cert)
		server.MinVersion = tls.VersionTLS10
		server.MaxVersion = tls.VersionTLS11
		_, clientErr, _ := handshake(t, server, tlsconf.Client(name, ca.Pool()))
		require.Error(t, clientErr)
	})
}

func TestLoadRoots(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "ca.pem")
	pemBytes := ca.CertPEM()
	block, rest := pem.Decode(pemBytes)
	require.NotNil(t, block)
	assert.Equal(t, "CERTIFICATE", block.Type)
	assert.Empty(t, rest)
	parsed, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	assert.True(t, parsed.Equal(ca.Certificate()), "PEM round-trips to the CA certificate")
	require.NoError(t, os.WriteFile(path, pemBytes, 0o600))

	pool, err := tlsconf.LoadRoots(path)
	require.NoError(t, err)
	state, clientErr, serverErr := handshake(t, tlsconf.Server(issue(t, ca, name)), tlsconf.Client(name, pool))
	require.NoError(t, clientErr, "roots loaded from PEM verify the CA's leaf")
	require.NoError(t, serverErr)
	assert.True(t, state.HandshakeComplete)

	t.Run("missing file", func(t *testing.T) {
		_, err := tlsconf.LoadRoots(filepath.Join(dir, "nope.pem"))
		require.ErrorIs(t, err, os.ErrNotExist)
		assert.True(t, strings.HasPrefix(err.Error(), "tlsconf: "), "got %q", err)
	})
	t.Run("no certificate", func(t *testing.T) {
		empty := filepath.Join(dir, "empty.pem")
		require.NoError(t, os.WriteFile(empty, []byte("not a certificate\n"), 0o600))
		_, err := tlsconf.LoadRoots(empty)
		require.Error(t, err)
		assert.True(t, strings.HasPrefix(err.Error(), "tlsconf: no PEM certificate"), "got %q", err)
	})
	t.Run("two CAs in one file", func(t *testing.T) {
		second := newCA(t)
		both := filepath.Join(dir, "both.pem")
		require.NoError(t, os.WriteFile(both, append(ca.CertPEM(), second.CertPEM()...), 0o600))
		pool, err := tlsconf.LoadRoots(both)
		require.NoError(t, err)
		_, clientErr, _ := handshake(t, tlsconf.Server(issue(t, second, name)), tlsconf.Client(name, pool))
		require.NoError(t, clientErr)
	})
}

func TestCA(t *testing.T) {
	ca := newCA(t)
	root := ca.Certificate()
	assert.True(t, root.IsCA)
	assert.Equal(t, "tlsconf test CA", root.Subject.CommonName)
	assert.True(t, root.NotBefore.Before(time.Now()))
	assert.True(t, root.NotAfter.After(time.Now()))

	cert := issue(t, ca, name, "localhost", "127.0.0.1", "::1")
	leaf := cert.Leaf
	require.NotNil(t, leaf)
	assert.Equal(t, name, leaf.Subject.CommonName)
	assert.Equal(t, []string{name, "localhost"}, leaf.DNSNames)
	require.Len(t, leaf.IPAddresses, 2)
	assert.True(t, leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")))
	assert.False(t, leaf.IsCA)
	assert.Contains(t, leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	_, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "localhost"})
	require.NoError(t, err)

	other := issue(t, ca, name)
	assert.NotEqual(t, leaf.SerialNumber, other.Leaf.SerialNumber)

	_, err = ca.Issue()
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "tlsconf: "))
	_, err = tlsconf.SelfSigned()
	require.Error(t, err)

	self, err := tlsconf.SelfSigned(name)
	require.NoError(t, err)
	_, err = self.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: name})
	require.Error(t, err, "a self-signed leaf does not chain to the CA")
}
