package tlsconf_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/tlsconf"
)

// daneHandshake runs one TLS handshake over loopback TCP with the server sending
// chain, reads the server's first byte (so that a TLS 1.3 ticket arrives),
// and returns the client's state and error.
func daneHandshake(t *testing.T, chain tls.Certificate, client *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	cc, sc := tcpPair(t)
	t.Cleanup(func() { cc.Close(); sc.Close() })
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := tls.Server(sc, tlsconf.Server(chain))
		if s.Handshake() == nil {
			s.Write([]byte("x"))
		}
		sc.Close() // not s.Close: close_notify on a pipe nobody reads waits 5 s
	}()
	c := tls.Client(cc, client)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	err := c.Handshake()
	if err == nil {
		_, err = io.ReadFull(c, make([]byte, 1))
	}
	state := c.ConnectionState()
	cc.Close()
	<-done
	return state, err
}

// tcpPair returns the two ends of a loopback TCP connection: unlike
// net.Pipe it buffers, so a client aborting a TLS 1.3 handshake does not
// wait for a server blocked writing its flight.
func tcpPair(t testing.TB) (client, server net.Conn) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	server = <-accepted
	require.NotNil(t, server)
	return client, server
}

func newCert(t *testing.T, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert, key
}

func caTemplate(name string) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

func leafTemplate(notAfter time.Time, names ...string) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: names[0]},
		DNSNames:    names,
		NotBefore:   time.Now().Add(-2 * time.Hour),
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
}

// chainOf makes a tls.Certificate sending leaf and then the rest.
func chainOf(leaf *x509.Certificate, key *ecdsa.PrivateKey, rest ...*x509.Certificate) tls.Certificate {
	c := tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
	for _, r := range rest {
		c.Certificate = append(c.Certificate, r.Raw)
	}
	return c
}

func TestDANE(t *testing.T) {
	root, rootKey := newCert(t, caTemplate("root"), nil, nil)
	inter, interKey := newCert(t, caTemplate("intermediate"), root, rootKey)
	other, _ := newCert(t, caTemplate("unrelated"), nil, nil)
	good := time.Now().Add(time.Hour)
	leaf, leafKey := newCert(t, leafTemplate(good, "mx.example.test"), inter, interKey)
	expired, expiredKey := newCert(t, leafTemplate(time.Now().Add(-time.Hour), "mx.example.test"), inter, interKey)
	wrongName, wrongNameKey := newCert(t, leafTemplate(good, "other.example.test"), inter, interKey)
	wildcard, wildcardKey := newCert(t, leafTemplate(good, "*.example.test"), inter, interKey)

	ee := func(sel, mt uint8, c *x509.Certificate) tlsconf.TLSA { return tlsconf.NewTLSA(3, sel, mt, c) }
	ta := func(sel, mt uint8, c *x509.Certificate) tlsconf.TLSA { return tlsconf.NewTLSA(2, sel, mt, c) }

	tests := []struct {
		name    string
		chain   tls.Certificate
		records []tlsconf.TLSA
		names   []string
		match   int   // index of the record that must match, -1 none
		wantErr error // with errors.Is, when match is -1
	}{
		// RFC 7672, Section 3.1.1: DANE-EE, every selector and matching type.
		{"ee cert full", chainOf(leaf, leafKey, inter), []tlsconf.TLSA{ee(0, 0, leaf)}, nil, 0, nil},
		{"ee cert sha256", chainOf(leaf, leafKey, inter), []tlsconf.TLSA{ee(0, 1, leaf)}, nil, 0, nil},
		{"ee cert sha512", chainOf(leaf, leafKey, inter), []tlsconf.TLSA{ee(0, 2, leaf)}, nil, 0, nil},
		{"ee spki full", chainOf(leaf, leafKey), []tlsconf.TLSA{ee(1, 0, leaf)}, nil, 0, nil},
		{"ee spki sha256", chainOf(leaf, leafKey), []tlsconf.TLSA{ee(1, 1, leaf)}, nil, 0, nil},
		{"ee spki sha512", chainOf(leaf, leafKey), []tlsconf.TLSA{ee(1, 2, leaf)}, nil, 0, nil},
		// RFC 7672, Section 3.1.1: names and dates are not checked for DANE-EE.
		{"ee expired", chainOf(expired, expiredKey), []tlsconf.TLSA{ee(1, 1, expired)}, nil, 0, nil},
		{"ee wrong name", chainOf(wrongName, wrongNameKey), []tlsconf.TLSA{ee(1, 1, wrongName)}, nil, 0, nil},
		{"ee mismatch", chainOf(leaf, leafKey), []tlsconf.TLSA{ee(1, 1, wrongName)}, nil, -1, tlsconf.ErrDANEMismatch},
		{"ee of the ca is not ee", chainOf(leaf, leafKey, inter), []tlsconf.TLSA{ee(0, 1, inter)}, nil, -1, tlsconf.ErrDANEMismatch},
		// RFC 7672, Section 3.1.2: DANE-TA.
		{"ta intermediate", chainOf(leaf, leafKey, inter), []tlsconf.TLSA{ta(0, 1, inter)}, nil, 0, nil},
		{"ta intermediate spki", chainOf(leaf, leafKey, inter), []tlsconf.TLSA{ta(1, 2, inter)}, nil, 0, nil},
		{"ta root", chainOf(leaf, leafKey, inter, root), []tlsconf.TLSA{ta(0, 1, root)}, nil, 0, nil},
		{"ta not sent", chainOf(leaf, leafKey, inter), []tlsconf.TLSA{ta(0, 1, root)}, nil, -1, tlsconf.ErrDANEMismatch},
		// RFC 7671, Section 5.2.2: the chain stops at the anchor; what follows it is not consulted.
		{"ta stops at anchor", chainOf(leaf, leafKey, inter, other), []tlsconf.TLSA{ta(0, 1, inter)}, nil, 0, nil},
		{"ta of the leaf itself", chainOf(leaf, leafKey, inter), []tlsconf.TLSA{ta(0, 1, leaf)}, nil, -1, tlsconf.ErrDANEMismatch},
		{"ta of an unrelated ca", chainOf(leaf, leafKey, inter, other), []tlsconf.TLSA{ta(0, 1, other)}, nil, -1, tlsconf.ErrDANEMismatch},
		// RFC 7672, Section 3.2: names and dates count for DANE-TA.
		{"ta expired leaf", chainOf(expired, expiredKey, inter), []tlsconf.TLSA{ta(0, 1, inter)}, nil, -1, tlsconf.ErrDANEMismatch},
		{"ta wrong name", chainOf(wrongName, wrongNameKey, inter), []tlsconf.TLSA{ta(0, 1, inter)}, nil, -1, tlsconf.ErrDANEMismatch},
		{"ta other allowed name", chainOf(wrongName, wrongNameKey, inter), []tlsconf.TLSA{ta(0, 1, inter)}, []string{"other.example.test"}, 0, nil},
		{"ta wildcard", chainOf(wildcard, wildcardKey, inter), []tlsconf.TLSA{ta(0, 1, inter)}, nil, 0, nil},
		// Several records: the first that matches wins, earlier ones are failures.
		{"second matches", chainOf(leaf, leafKey, inter), []tlsconf.TLSA{ee(1, 1, wrongName), ta(0, 1, inter)}, nil, 1, nil},
		// RFC 7671, Section 9: a SHA2-512 record retires SHA2-256 for its usage and selector.
		{"sha256 ignored beside sha512", chainOf(leaf, leafKey), []tlsconf.TLSA{ee(1, 1, leaf), ee(1, 2, wrongName)}, nil, -1, tlsconf.ErrDANEMismatch},
		{"sha256 kept beside sha512 of another selector", chainOf(leaf, leafKey), []tlsconf.TLSA{ee(1, 2, wrongName), ee(0, 1, leaf)}, nil, 1, nil},
		{"unusable then usable", chainOf(leaf, leafKey, inter), []tlsconf.TLSA{tlsconf.NewTLSA(1, 1, 1, leaf), ee(1, 1, leaf)}, nil, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, res, err := tlsconf.DANE("mx.example.test", tt.records, &tlsconf.DANEOptions{Names: tt.names})
			require.NoError(t, err)
			assert.Equal(t, "mx.example.test", cfg.ServerName, "SNI is the TLSA base domain")
			assert.True(t, cfg.InsecureSkipVerify)
			require.NotNil(t, cfg.VerifyConnection)
			_, err = daneHandshake(t, tt.chain, cfg)
			require.True(t, res.Checked())
			matched, ok := res.Matched()
			if tt.match < 0 {
				require.ErrorIs(t, err, tt.wantErr)
				var de *tlsconf.DANEError
				require.ErrorAs(t, err, &de)
				assert.Len(t, de.Failures, len(tt.records), "one failure per record")
				assert.False(t, ok)
				assert.Len(t, res.Failures(), len(tt.records))
				return
			}
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, tt.records[tt.match], matched)
			assert.Len(t, res.Failures(), tt.match, "the records before the match failed")
		})
	}
}

func TestDANEFailureReasons(t *testing.T) {
	root, rootKey := newCert(t, caTemplate("root"), nil, nil)
	expired, expiredKey := newCert(t, leafTemplate(time.Now().Add(-time.Hour), "mx.example.test"), root, rootKey)
	wrong, wrongKey := newCert(t, leafTemplate(time.Now().Add(time.Hour), "other.example.test"), root, rootKey)

	cfg, res, err := tlsconf.DANE("mx.example.test", []tlsconf.TLSA{tlsconf.NewTLSA(2, 0, 1, root)}, nil)
	require.NoError(t, err)
	_, err = daneHandshake(t, chainOf(expired, expiredKey, root), cfg)
	var invalid x509.CertificateInvalidError
	require.ErrorAs(t, err, &invalid)
	assert.Equal(t, x509.Expired, invalid.Reason)
	require.Len(t, res.Failures(), 1)

	cfg, _, err = tlsconf.DANE("mx.example.test", []tlsconf.TLSA{tlsconf.NewTLSA(2, 0, 1, root)}, nil)
	require.NoError(t, err)
	_, err = daneHandshake(t, chainOf(wrong, wrongKey, root), cfg)
	var host x509.HostnameError
	require.ErrorAs(t, err, &host)
	assert.Contains(t, err.Error(), "2 0 1: ")

	// DANEOptions.Time: the dates are checked at that time.
	good, goodKey := newCert(t, leafTemplate(time.Now().Add(time.Hour), "mx.example.test"), root, rootKey)
	later := func() time.Time { return time.Now().Add(48 * time.Hour) }
	cfg, _, err = tlsconf.DANE("mx.example.test", []tlsconf.TLSA{tlsconf.NewTLSA(2, 0, 1, root)}, &tlsconf.DANEOptions{Time: later})
	require.NoError(t, err)
	_, err = daneHandshake(t, chainOf(good, goodKey, root), cfg)
	require.ErrorAs(t, err, &invalid)
	assert.Equal(t, x509.Expired, invalid.Reason)
}

func TestDANENoUsableRecords(t *testing.T) {
	ca, err := tlsconf.NewCA("ca")
	require.NoError(t, err)
	c := ca.Certificate()
	tests := []struct {
		name    string
		records []tlsconf.TLSA
	}{
		{"none", nil},
		{"pkix-ta", []tlsconf.TLSA{tlsconf.NewTLSA(0, 0, 1, c)}},
		{"pkix-ee", []tlsconf.TLSA{tlsconf.NewTLSA(1, 1, 1, c)}},
		{"usage 4", []tlsconf.TLSA{tlsconf.NewTLSA(4, 1, 1, c)}},
		{"selector 2", []tlsconf.TLSA{{Usage: 3, Selector: 2, MatchingType: 1, Data: make([]byte, 32)}}},
		{"matching type 3", []tlsconf.TLSA{{Usage: 3, Selector: 1, MatchingType: 3, Data: make([]byte, 32)}}},
		{"short sha256", []tlsconf.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: make([]byte, 31)}}},
		{"sha512 of sha256 length", []tlsconf.TLSA{{Usage: 3, Selector: 1, MatchingType: 2, Data: make([]byte, 32)}}},
		{"empty full", []tlsconf.TLSA{{Usage: 2, Selector: 0, MatchingType: 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, res, err := tlsconf.DANE("mx.example.test", tt.records, nil)
			require.ErrorIs(t, err, tlsconf.ErrNoUsableRecords)
			assert.Nil(t, cfg, "no config that would accept anything")
			assert.Nil(t, res)
			for _, r := range tt.records {
				require.ErrorIs(t, r.Usable(), tlsconf.ErrUnusableRecord)
			}
		})
	}
	_, _, err = tlsconf.DANE("", []tlsconf.TLSA{tlsconf.NewTLSA(3, 1, 1, c)}, nil)
	require.Error(t, err)
}

// countingCache records the keys asked for.
type countingCache struct {
	tls.ClientSessionCache
	gets, puts []string
}

func (c *countingCache) Get(key string) (*tls.ClientSessionState, bool) {
	c.gets = append(c.gets, key)
	return c.ClientSessionCache.Get(key)
}

func (c *countingCache) Put(key string, cs *tls.ClientSessionState) {
	c.puts = append(c.puts, key)
	c.ClientSessionCache.Put(key, cs)
}

func TestDANEResumption(t *testing.T) {
	ca, err := tlsconf.NewCA("ca")
	require.NoError(t, err)
	cert, err := ca.Issue("mx.example.test")
	require.NoError(t, err)
	other, err := ca.Issue("mx.example.test")
	require.NoError(t, err)
	good := []tlsconf.TLSA{tlsconf.NewTLSA(3, 1, 1, cert.Leaf)}
	changed := []tlsconf.TLSA{tlsconf.NewTLSA(3, 1, 1, other.Leaf)}
	shared := &countingCache{ClientSessionCache: tls.NewLRUClientSessionCache(8)}
	// The server must issue tickets with a stable key across handshakes.
	serverCfg := tlsconf.Server(cert)
	serverCfg.SetSessionTicketKeys([][32]byte{{1}})

	dial := func(records []tlsconf.TLSA) (tls.ConnectionState, *tlsconf.DANEResult, error) {
		cfg, res, err := tlsconf.DANE("mx.example.test", records, &tlsconf.DANEOptions{SessionCache: shared})
		require.NoError(t, err)
		cc, sc := tcpPair(t)
		defer cc.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			s := tls.Server(sc, serverCfg)
			if s.Handshake() == nil {
				s.Write([]byte("x"))
			}
			s.Close()
		}()
		c := tls.Client(cc, cfg)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		err = c.Handshake()
		if err == nil {
			_, err = io.ReadFull(c, make([]byte, 1))
		}
		state := c.ConnectionState()
		c.Close()
		cc.Close()
		<-done
		return state, res, err
	}

	state, res, err := dial(good)
	require.NoError(t, err)
	assert.False(t, state.DidResume)
	assert.True(t, res.Checked())
	require.NotEmpty(t, shared.puts, "a ticket was stored")

	state, res, err = dial(good)
	require.NoError(t, err)
	assert.True(t, state.DidResume, "same records: resumed")
	_, ok := res.Matched()
	assert.True(t, ok, "VerifyConnection ran on the resumed session")

	// Another record set never sees the first set's sessions.
	state, res, err = dial(changed)
	require.ErrorIs(t, err, tlsconf.ErrDANEMismatch)
	assert.False(t, state.DidResume)
	assert.True(t, res.Checked())
	require.Len(t, shared.gets, 3)
	assert.Equal(t, shared.gets[0], shared.gets[1])
	assert.NotEqual(t, shared.gets[0], shared.gets[2], "keys differ by record set")
}

func TestTLSAString(t *testing.T) {
	r := tlsconf.TLSA{Usage: 3, Selector: 1, MatchingType: 1, Data: []byte{0xab, 0x01}}
	assert.Equal(t, "3 1 1 ab01", r.String())
}

func ExampleDANE() {
	ca, _ := tlsconf.NewCA("example CA")
	cert, _ := ca.Issue("mx.example.test")
	// What the zone publishes at _25._tcp.mx.example.test, DNSSEC-signed:
	// the server's key (DANE-EE) and, as a wrong record, the CA as DANE-EE.
	records := []tlsconf.TLSA{
		tlsconf.NewTLSA(tlsconf.UsageDANEEE, tlsconf.SelectorCert, tlsconf.MatchSHA256, ca.Certificate()),
		tlsconf.NewTLSA(tlsconf.UsageDANEEE, tlsconf.SelectorSPKI, tlsconf.MatchSHA256, cert.Leaf),
	}
	cfg, result, err := tlsconf.DANE("mx.example.test", records, nil)
	if errors.Is(err, tlsconf.ErrNoUsableRecords) {
		fmt.Println("TLS required, but nothing to authenticate with")
		return
	}

	cc, sc := net.Pipe()
	go func() {
		s := tls.Server(sc, tlsconf.Server(cert))
		s.Handshake()
		sc.Close()
	}()
	c := tls.Client(cc, cfg)
	if err := c.Handshake(); err != nil {
		fmt.Println("handshake:", err)
		return
	}
	cc.Close()
	matched, _ := result.Matched()
	fmt.Println("matched usage", matched.Usage, "selector", matched.Selector)
	for _, f := range result.Failures() {
		fmt.Printf("failed %d %d %d: %v\n", f.Record.Usage, f.Record.Selector, f.Record.MatchingType, f.Err)
	}
	// Output:
	// matched usage 3 selector 1
	// failed 3 0 1: certificate does not match
}
