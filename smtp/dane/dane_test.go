package dane_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/tlsup/tlsup/internal/dnstest"
	"github.com/tlsup/tlsup/smtp/dane"
	"github.com/tlsup/tlsup/tlsconf"
)

const mxHost = "mx.example.test"

func newResolver(t *testing.T) (*dnstest.Server, *dane.Resolver) {
	s := dnstest.New(t)
	return s, &dane.Resolver{Addr: s.Addr, Timeout: 200 * time.Millisecond}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

var sha = make([]byte, 32)

// RFC 7672, Section 2.1 and 2.2.3: the outcome of each answer combination.
func TestLookup(t *testing.T) {
	secureA := dnstest.Answer{Records: dnstest.A("192.0.2.25"), Secure: true}
	secureNoAAAA := dnstest.Answer{Secure: true}
	tlsa := dnstest.Answer{Records: []dnsmessage.Resource{dnstest.TLSA(3, 1, 1, sha), dnstest.TLSA(1, 1, 1, sha)}, Secure: true}
	tlsaName := "_25._tcp." + mxHost
	tests := []struct {
		name       string
		a, aaaa    dnstest.Answer
		tlsa       dnstest.Answer
		wantDANE   bool
		wantReason string
		wantDefer  string // LookupError.Reason when the lookup must defer
		tlsaAsked  bool
	}{
		{"dane", secureA, secureNoAAAA, tlsa, true, "", "", true},
		{"address insecure: tlsa not asked", dnstest.Answer{Records: dnstest.A("192.0.2.25")}, secureNoAAAA, tlsa, false, "address-insecure", "", false},
		{"aaaa insecure", secureA, dnstest.Answer{}, tlsa, false, "address-insecure", "", false},
		{"tlsa insecure", secureA, secureNoAAAA, dnstest.Answer{Records: tlsa.Records}, false, "tlsa-insecure", "", true},
		{"no tlsa, proven", secureA, secureNoAAAA, dnstest.Answer{RCode: dnsmessage.RCodeNameError, Secure: true}, false, "no-tlsa", "", true},
		{"nodata tlsa", secureA, secureNoAAAA, dnstest.Answer{Secure: true}, false, "no-tlsa", "", true},
		{"tlsa servfail (bogus)", secureA, secureNoAAAA, dnstest.Answer{RCode: dnsmessage.RCodeServerFailure}, false, "", "servfail", true},
		{"tlsa timeout", secureA, secureNoAAAA, dnstest.Answer{Silent: true}, false, "", "timeout", true},
		{"tlsa refused", secureA, secureNoAAAA, dnstest.Answer{RCode: dnsmessage.RCodeRefused}, false, "", "refused", true},
		{"tlsa too short", secureA, secureNoAAAA, dnstest.Answer{Records: []dnsmessage.Resource{shortTLSA()}, Secure: true}, false, "", "malformed", true},
		{"a servfail", dnstest.Answer{RCode: dnsmessage.RCodeServerFailure}, secureNoAAAA, tlsa, false, "", "servfail", false},
		{"aaaa timeout", secureA, dnstest.Answer{Silent: true}, tlsa, false, "", "timeout", false},
		{"tlsa truncated over udp", secureA, secureNoAAAA, dnstest.Answer{Records: tlsa.Records, Secure: true, Truncate: true}, true, "", "", true},
		{"tlsa reply with another id", secureA, secureNoAAAA, dnstest.Answer{Records: tlsa.Records, Secure: true, ID: 1}, false, "", "timeout", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, r := newResolver(t)
			s.Set(mxHost, dnsmessage.TypeA, tt.a)
			s.Set(mxHost, dnsmessage.TypeAAAA, tt.aaaa)
			s.Set(tlsaName, dnstest.TypeTLSA, tt.tlsa)
			p, err := r.Lookup(ctx(t), mxHost+".", 25)
			asked := false
			for _, q := range s.Queries() {
				assert.True(t, q.AD, "AD asked for")
				assert.True(t, q.DO, "DO bit set")
				if q.Type == dnstest.TypeTLSA {
					asked = true
				}
			}
			assert.Equal(t, tt.tlsaAsked, asked, "TLSA asked")
			if tt.wantDefer != "" {
				require.ErrorIs(t, err, dane.ErrDefer)
				var le *dane.LookupError
				require.ErrorAs(t, err, &le)
				assert.Equal(t, tt.wantDefer, le.Reason)
				assert.Nil(t, p)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, mxHost, p.Host)
			assert.Equal(t, tt.wantDANE, p.DANE)
			assert.Equal(t, tt.wantReason, p.Reason)
			if tt.wantDANE {
				assert.Equal(t, []netip.Addr{netip.MustParseAddr("192.0.2.25")}, p.Addrs)
				require.Len(t, p.Records, 2)
				assert.Len(t, p.Usable(), 1, "PKIX-EE is unusable for SMTP")
				cfg, _, err := p.TLSConfig(nil)
				require.NoError(t, err)
				assert.Equal(t, mxHost, cfg.ServerName)
			} else {
				assert.Nil(t, p.Records)
			}
		})
	}
}

func shortTLSA() dnsmessage.Resource {
	r := dnstest.TLSA(3, 1, 1, nil)
	r.Body.(*dnsmessage.UnknownResource).Data = []byte{3, 1}
	return r
}

func TestTruncatedGoesToTCP(t *testing.T) {
	s, r := newResolver(t)
	s.Set(mxHost, dnsmessage.TypeA, dnstest.Answer{Records: dnstest.A("192.0.2.1", "192.0.2.2"), Secure: true, Truncate: true})
	addrs, secure, err := r.LookupIP(ctx(t), mxHost)
	require.NoError(t, err)
	assert.True(t, secure)
	assert.Len(t, addrs, 2)
	var tcp int
	for _, q := range s.Queries() {
		if q.TCP {
			tcp++
		}
	}
	assert.Equal(t, 1, tcp)
}

func TestLookupMX(t *testing.T) {
	s, r := newResolver(t)
	s.Set("example.test", dnsmessage.TypeMX, dnstest.Answer{Records: []dnsmessage.Resource{
		dnstest.MX(20, "b.example.test"), dnstest.MX(10, "A.example.test"),
	}, Secure: true})
	s.Set("insecure.test", dnsmessage.TypeMX, dnstest.Answer{Records: []dnsmessage.Resource{dnstest.MX(0, "mx.insecure.test")}})
	s.Set("null.test", dnsmessage.TypeMX, dnstest.Answer{Records: []dnsmessage.Resource{dnstest.MX(0, ".")}, Secure: true})
	s.Set("fail.test", dnsmessage.TypeMX, dnstest.Answer{RCode: dnsmessage.RCodeServerFailure})

	mxs, secure, err := r.LookupMX(ctx(t), "example.test")
	require.NoError(t, err)
	assert.True(t, secure)
	assert.Equal(t, []dane.MX{{Host: "a.example.test", Pref: 10}, {Host: "b.example.test", Pref: 20}}, mxs)

	mxs, secure, err = r.LookupMX(ctx(t), "insecure.test")
	require.NoError(t, err)
	assert.False(t, secure)
	assert.Len(t, mxs, 1)

	mxs, _, err = r.LookupMX(ctx(t), "null.test")
	require.NoError(t, err)
	assert.Equal(t, []dane.MX{{Host: "", Pref: 0}}, mxs, "null MX (RFC 7505)")

	mxs, secure, err = r.LookupMX(ctx(t), "nowhere.test")
	require.NoError(t, err, "NXDOMAIN is an answer")
	assert.Empty(t, mxs)
	assert.True(t, secure)

	_, _, err = r.LookupMX(ctx(t), "fail.test")
	require.ErrorIs(t, err, dane.ErrDefer)
	assert.Contains(t, err.Error(), "fail.test. MX: servfail")
}

func TestCNAMEInAnswer(t *testing.T) {
	s, r := newResolver(t)
	s.Set("_25._tcp."+mxHost, dnstest.TypeTLSA, dnstest.Answer{Records: []dnsmessage.Resource{
		dnstest.CNAME("_25._tcp."+mxHost, "tlsa.example.net"),
		withName(dnstest.TLSA(3, 1, 1, sha), "tlsa.example.net"),
		withName(dnstest.TLSA(2, 0, 1, sha), "elsewhere.example.net"),
	}, Secure: true})
	records, secure, err := r.LookupTLSA(ctx(t), 25, mxHost)
	require.NoError(t, err)
	assert.True(t, secure)
	require.Len(t, records, 1, "only records the CNAME chain leads to")
	assert.Equal(t, uint8(3), records[0].Usage)
}

func withName(r dnsmessage.Resource, name string) dnsmessage.Resource {
	r.Header.Name = dnstest.Name(name)
	return r
}

func TestLookupTXT(t *testing.T) {
	s, r := newResolver(t)
	s.Set("_mta-sts.example.test", dnsmessage.TypeTXT, dnstest.Answer{Records: []dnsmessage.Resource{dnstest.TXT("v=STSv1; ", "id=1")}})
	txts, secure, err := r.LookupTXT(ctx(t), "_mta-sts.example.test")
	require.NoError(t, err)
	assert.False(t, secure)
	assert.Equal(t, []string{"v=STSv1; id=1"}, txts)
}

func TestContextCancelled(t *testing.T) {
	s, r := newResolver(t)
	r.Timeout = 5 * time.Second
	s.SetDefault(dnstest.Answer{Silent: true})
	c, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, _, err := r.LookupTLSA(c, 25, mxHost)
	require.ErrorIs(t, err, dane.ErrDefer)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestUnreachableResolverDefers(t *testing.T) {
	r := &dane.Resolver{Addr: "127.0.0.1:1", Timeout: 200 * time.Millisecond}
	_, _, err := r.LookupIP(ctx(t), mxHost)
	require.ErrorIs(t, err, dane.ErrDefer)
}

func TestParseTLSA(t *testing.T) {
	r, err := dane.ParseTLSA([]byte{3, 1, 1, 0xab})
	require.NoError(t, err)
	assert.Equal(t, tlsconf.TLSA{Usage: 3, Selector: 1, MatchingType: 1, Data: []byte{0xab}}, r)
	for n := range 4 {
		_, err := dane.ParseTLSA(make([]byte, n))
		require.Error(t, err, "%d bytes", n)
	}
}

func FuzzParseTLSA(f *testing.F) {
	f.Add([]byte{3, 1, 1, 0xe3, 0xb0})
	f.Add([]byte{2, 0, 0})
	f.Fuzz(func(t *testing.T, rdata []byte) {
		r, err := dane.ParseTLSA(rdata)
		if len(rdata) < 4 {
			require.Error(t, err)
			return
		}
		require.NoError(t, err)
		// Round trip: the fields and the data are the bytes given.
		assert.Equal(t, rdata, append([]byte{r.Usage, r.Selector, r.MatchingType}, r.Data...))
		if r.Usable() == nil {
			assert.Contains(t, []uint8{2, 3}, r.Usage)
		}
	})
}

func ExampleResolver_Lookup() {
	// A validating resolver stands in: here the in-process test server.
	s, err := dnstest.Start()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	s.Set("mx.example.test", dnsmessage.TypeA, dnstest.Answer{Records: dnstest.A("192.0.2.25"), Secure: true})
	s.Set("mx.example.test", dnsmessage.TypeAAAA, dnstest.Answer{Secure: true})
	s.Set("_25._tcp.mx.example.test", dnstest.TypeTLSA, dnstest.Answer{Records: []dnsmessage.Resource{dnstest.TLSA(3, 1, 1, sha)}, Secure: true})

	r := &dane.Resolver{Addr: s.Addr}
	var p *dane.Policy
	p, err = r.Lookup(context.Background(), "mx.example.test", 25)
	switch {
	case errors.Is(err, dane.ErrDefer):
		fmt.Println("defer delivery:", err)
	case err != nil:
		fmt.Println("error:", err)
	case !p.DANE:
		fmt.Println("no DANE:", p.Reason)
	default:
		fmt.Println("DANE:", p.Records[0].Usage, p.Records[0].Selector, p.Records[0].MatchingType, "at", p.Addrs)
	}
	// Output:
	// DANE: 3 1 1 at [192.0.2.25]
}

// RFC 7672, Section 2.2.3: an MX host that is an alias; the TLSA base
// domain is the CNAME target first, then the MX host.
func TestLookupCNAME(t *testing.T) {
	alias := func() dnstest.Answer {
		return dnstest.Answer{Secure: true, Records: []dnsmessage.Resource{
			dnstest.CNAME(mxHost, "real.example.net"),
			withName(dnstest.A("192.0.2.7")[0], "real.example.net"),
		}}
	}
	tlsa := dnstest.Answer{Records: []dnsmessage.Resource{dnstest.TLSA(3, 1, 1, sha)}, Secure: true}
	none := dnstest.Answer{RCode: dnsmessage.RCodeNameError, Secure: true}
	tests := []struct {
		name           string
		atTarget, atMX dnstest.Answer
		wantBase       string
		wantDefer      bool
		wantDANE       bool
		wantServerName string
	}{
		{"records at the target", tlsa, none, "real.example.net", false, true, "real.example.net"},
		{"records at the mx host only", none, tlsa, mxHost, false, true, mxHost},
		{"insecure at the target, records at the mx host", dnstest.Answer{Records: tlsa.Records}, tlsa, mxHost, false, true, mxHost},
		{"none anywhere", none, none, "", false, false, ""},
		{"servfail at the target", dnstest.Answer{RCode: dnsmessage.RCodeServerFailure}, tlsa, "", true, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, r := newResolver(t)
			s.Set(mxHost, dnsmessage.TypeA, alias())
			s.Set(mxHost, dnsmessage.TypeAAAA, dnstest.Answer{Secure: true, Records: []dnsmessage.Resource{dnstest.CNAME(mxHost, "real.example.net")}})
			s.Set("_25._tcp.real.example.net", dnstest.TypeTLSA, tt.atTarget)
			s.Set("_25._tcp."+mxHost, dnstest.TypeTLSA, tt.atMX)
			p, err := r.Lookup(ctx(t), mxHost, 25)
			if tt.wantDefer {
				require.ErrorIs(t, err, dane.ErrDefer)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, []netip.Addr{netip.MustParseAddr("192.0.2.7")}, p.Addrs)
			assert.Equal(t, tt.wantDANE, p.DANE)
			assert.Equal(t, tt.wantBase, p.BaseDomain)
			if !tt.wantDANE {
				return
			}
			cfg, _, err := p.TLSConfig(nil)
			require.NoError(t, err)
			assert.Equal(t, tt.wantServerName, cfg.ServerName, "SNI is the TLSA base domain")
		})
	}
}

// RFC 7672, Section 3.2.2: with records at a CNAME target, a DANE-TA
// certificate may carry the MX host name instead of the base domain.
func TestTLSConfigNames(t *testing.T) {
	ca, err := tlsconf.NewCA("ca")
	require.NoError(t, err)
	cert, err := ca.Issue(mxHost)
	require.NoError(t, err)
	cert.Certificate = append(cert.Certificate, ca.Certificate().Raw)
	p := &dane.Policy{Host: mxHost, BaseDomain: "real.example.net", DANE: true,
		Records: []tlsconf.TLSA{tlsconf.NewTLSA(2, 0, 1, ca.Certificate())}}
	cfg, result, err := p.TLSConfig(&tlsconf.DANEOptions{Names: []string{"example.test"}})
	require.NoError(t, err)
	assert.Equal(t, "real.example.net", cfg.ServerName)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tls.Server(c, tlsconf.Server(cert)).Handshake()
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	tc := tls.Client(c, cfg)
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	require.NoError(t, tc.Handshake())
	_, ok := result.Matched()
	assert.True(t, ok)
}
