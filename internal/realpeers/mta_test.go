package realpeers_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/tlsup/tlsup/internal/dnstest"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/smtp/dane"
	"github.com/tlsup/tlsup/smtp/mtasts"
	"github.com/tlsup/tlsup/smtp/tlsrpt"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

const (
	mtaDomain = "mta.test"
	mtaHost   = "mx.mta.test"
)

// realMTA is what .ci/real-mta.sh passes: Postfix as the MX of mta.test.
type realMTA struct {
	addr     string // Postfix's "host:port"
	ip       string
	port     string
	ca       *x509.Certificate // the throwaway CA that signed Postfix's certificate
	caPEM    []byte
	leaf     *x509.Certificate // Postfix's certificate
	tlsprobe string
	version  string

	dns    *dnstest.Server
	sts    *httptest.Server
	stsCA  *tlsconf.CA
	policy atomic.Value // string: the MTA-STS policy served, "" for 404
	roots  *x509.CertPool
	cafile string // the MX's CA and the policy host's CA, for -cafile
}

// startRealMTA returns the Postfix started by .ci/real-mta.sh with a DNS
// server publishing mta.test and an MTA-STS policy server, or skips the
// test when TLSUP_REAL_MTA is not 1.
func startRealMTA(t *testing.T) *realMTA {
	t.Helper()
	if os.Getenv("TLSUP_REAL_MTA") != "1" {
		t.Skip("real MTA not started: run .ci/real-mta.sh (sets TLSUP_REAL_MTA=1)")
	}
	need := func(name string) string {
		v := os.Getenv(name)
		require.NotEmpty(t, v, "environment variable %s (set by .ci/real-mta.sh)", name)
		return v
	}
	m := &realMTA{addr: need("TLSUP_MTA_ADDR"), tlsprobe: os.Getenv("TLSUP_TLSPROBE"), version: os.Getenv("TLSUP_POSTFIX_VERSION")}
	var err error
	m.ip, m.port, err = net.SplitHostPort(m.addr)
	require.NoError(t, err)
	m.caPEM, err = os.ReadFile(need("TLSUP_MTA_CA"))
	require.NoError(t, err)
	m.ca = parsePEM(t, m.caPEM)
	certPEM, err := os.ReadFile(need("TLSUP_MTA_CERT"))
	require.NoError(t, err)
	m.leaf = parsePEM(t, certPEM)

	// The policy host mta-sts.mta.test, with a certificate of its own CA.
	m.stsCA, err = tlsconf.NewCA("real-mta policy host CA")
	require.NoError(t, err)
	stsCert, err := m.stsCA.Issue("mta-sts." + mtaDomain)
	require.NoError(t, err)
	m.policy.Store("")
	m.sts = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		policy := m.policy.Load().(string)
		if policy == "" || r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, policy)
	}))
	m.sts.TLS = tlsconf.Server(stsCert)
	m.sts.Config.ErrorLog = log.New(io.Discard, "", 0)
	m.sts.StartTLS()
	t.Cleanup(m.sts.Close)
	m.roots = x509.NewCertPool()
	m.roots.AddCert(m.ca)
	m.roots.AddCert(m.stsCA.Certificate())
	m.cafile = filepath.Join(t.TempDir(), "roots.pem")
	require.NoError(t, os.WriteFile(m.cafile, append(append([]byte{}, m.caPEM...), m.stsCA.CertPEM()...), 0o600))

	m.dns = dnstest.New(t)
	secure := func(rs ...dnsmessage.Resource) dnstest.Answer { return dnstest.Answer{Records: rs, Secure: true} }
	m.dns.Set(mtaDomain, dnsmessage.TypeMX, secure(dnstest.MX(10, mtaHost)))
	m.dns.Set(mtaHost, dnsmessage.TypeA, secure(dnstest.A(m.ip)...))
	m.dns.Set(mtaHost, dnsmessage.TypeAAAA, secure())
	m.dns.Set("mta-sts."+mtaDomain, dnsmessage.TypeA, secure(dnstest.A("127.0.0.1")...))
	m.dns.Set("mta-sts."+mtaDomain, dnsmessage.TypeAAAA, secure())
	m.dns.SetDefault(dnstest.Answer{RCode: dnsmessage.RCodeNameError, Secure: true})
	return m
}

func parsePEM(t *testing.T, data []byte) *x509.Certificate {
	block, _ := pem.Decode(data)
	require.NotNil(t, block, "a PEM certificate")
	c, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return c
}

// publish sets the TLSA records of the MX (nil: a secure NXDOMAIN) and the
// MTA-STS policy ("": none).
func (m *realMTA) publish(records []tlsconf.TLSA, stsMode, stsMX string) {
	if records == nil {
		m.dns.Set("_25._tcp."+mtaHost, dnstest.TypeTLSA, dnstest.Answer{RCode: dnsmessage.RCodeNameError, Secure: true})
	} else {
		var rs []dnsmessage.Resource
		for _, r := range records {
			rs = append(rs, dnstest.TLSA(r.Usage, r.Selector, r.MatchingType, r.Data))
		}
		m.dns.Set("_25._tcp."+mtaHost, dnstest.TypeTLSA, dnstest.Answer{Records: rs, Secure: true})
	}
	if stsMode == "" {
		m.dns.Set("_mta-sts."+mtaDomain, dnsmessage.TypeTXT, dnstest.Answer{RCode: dnsmessage.RCodeNameError, Secure: true})
		m.policy.Store("")
		return
	}
	m.dns.Set("_mta-sts."+mtaDomain, dnsmessage.TypeTXT, dnstest.Answer{Records: []dnsmessage.Resource{dnstest.TXT(fmt.Sprintf("v=STSv1; id=%d", time.Now().UnixNano()))}})
	m.policy.Store(fmt.Sprintf("version: STSv1\nmode: %s\nmx: %s\nmax_age: 86400\n", stsMode, stsMX))
}

func (m *realMTA) records() (ee, ta, wrong tlsconf.TLSA) {
	wrongData := make([]byte, 32)
	rand.Read(wrongData)
	return tlsconf.NewTLSA(tlsconf.UsageDANEEE, tlsconf.SelectorSPKI, tlsconf.MatchSHA256, m.leaf),
		tlsconf.NewTLSA(tlsconf.UsageDANETA, tlsconf.SelectorCert, tlsconf.MatchSHA256, m.ca),
		tlsconf.TLSA{Usage: tlsconf.UsageDANEEE, Selector: tlsconf.SelectorSPKI, MatchingType: tlsconf.MatchSHA256, Data: wrongData}
}

// TestRealMTADANE drives the library as an MTA would: look up the DANE
// policy, build the config, upgrade with Postfix, classify for TLS-RPT.
func TestRealMTADANE(t *testing.T) {
	m := startRealMTA(t)
	ee, ta, wrong := m.records()
	tests := []struct {
		name    string
		records []tlsconf.TLSA
		match   *tlsconf.TLSA
		failed  int // records that failed before the match, or all
		rpt     tlsrpt.ResultType
	}{
		{"dane-ee of postfix's key", []tlsconf.TLSA{ee}, &ee, 0, ""},
		{"dane-ta of the ca", []tlsconf.TLSA{ta}, &ta, 0, ""},
		{"wrong record", []tlsconf.TLSA{wrong}, nil, 1, tlsrpt.TLSAInvalid},
		{"wrong record, then dane-ee", []tlsconf.TLSA{wrong, ee}, &ee, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m.publish(tt.records, "", "")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			r := &dane.Resolver{Addr: m.dns.Addr}
			pol, err := r.Lookup(ctx, mtaHost, 25)
			require.NoError(t, err)
			require.True(t, pol.DANE, "secure address and TLSA: DANE applies (%s)", pol.Reason)
			cfg, result, err := pol.TLSConfig(nil)
			require.NoError(t, err)
			addr := net.JoinHostPort(pol.Addrs[0].String(), m.port)
			tlsConn, res, err := smtp.Dial(ctx, "tcp", addr, &smtp.Options{TLSConfig: cfg, Mode: starttls.StartTLS, LocalName: "client.tlsup.test"})
			if tlsConn != nil {
				defer tlsConn.Close()
			}
			matched, ok := result.Matched()
			assert.Len(t, result.Failures(), tt.failed)
			rt, reason := tlsrpt.Classify(res, err)
			assert.Equal(t, tt.rpt, rt, "tls-rpt result (%s)", reason)
			if tt.match == nil {
				require.ErrorIs(t, err, tlsconf.ErrDANEMismatch)
				require.ErrorIs(t, err, starttls.ErrHandshake)
				var de *tlsconf.DANEError
				require.ErrorAs(t, err, &de)
				assert.False(t, ok)
				d := tlsrpt.Details(tlsrpt.Session{MXHost: mtaHost, Result: res, Err: err})
				require.NotNil(t, d)
				b, _ := json.Marshal(d)
				t.Logf("failure-details: %s", b)
				return
			}
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, *tt.match, matched)
			assert.Equal(t, mtaHost, res.State.ServerName, "SNI is the TLSA base domain")
			assert.Contains(t, res.Greeting, "mx.mta.test")
			// Postfix 3.7 does not implement REQUIRETLS (RFC 8689).
			err = smtp.RequireTLSExtension(res)
			if res.After.Has("REQUIRETLS") {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, starttls.ErrNotOffered)
			}
		})
	}
}

// TestRealMTASTS fetches the policy over HTTPS and upgrades under it.
func TestRealMTASTS(t *testing.T) {
	m := startRealMTA(t)
	_, port, _ := net.SplitHostPort(m.sts.Listener.Addr().String())
	r := &dane.Resolver{Addr: m.dns.Addr}
	f := &mtasts.Fetcher{
		LookupTXT: func(ctx context.Context, name string) ([]string, error) {
			txts, _, err := r.LookupTXT(ctx, name)
			return txts, err
		},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, _ := net.SplitHostPort(addr)
			ips, _, err := r.LookupIP(ctx, host)
			if err != nil || len(ips) == 0 {
				return nil, fmt.Errorf("no address for %s: %v", host, err)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, net.JoinHostPort(ips[0].String(), port))
		},
		Roots: m.roots,
		Port:  atoi(t, port),
	}
	cache := &mtasts.Cache{Fetcher: f}
	tests := []struct {
		name    string
		pattern string
		wantErr error
		rpt     tlsrpt.ResultType
	}{
		{"mx in policy", "*.mta.test", nil, ""},
		{"mx not in policy", "mail.mta.test", mtasts.ErrMXMismatch, tlsrpt.ValidationFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m.publish(nil, "enforce", tt.pattern)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			policy, fetchErr, err := cache.Get(ctx, mtaDomain)
			require.NoError(t, err)
			require.NoError(t, fetchErr)
			cfg, _, err := policy.TLSConfig(mtaHost, m.roots)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				rt, _ := tlsrpt.Classify(nil, err)
				assert.Equal(t, tt.rpt, rt)
				return
			}
			require.NoError(t, err)
			tlsConn, res, err := smtp.Dial(ctx, "tcp", m.addr, &smtp.Options{TLSConfig: cfg, Mode: starttls.StartTLS})
			require.NoError(t, err)
			tlsConn.Close()
			assert.True(t, res.TLS)
		})
	}
}

func atoi(t *testing.T, s string) int {
	var n int
	_, err := fmt.Sscan(s, &n)
	require.NoError(t, err)
	return n
}

// TestRealMTAProbe runs the built examples/tlsprobe -mx -json against
// Postfix for each published policy.
func TestRealMTAProbe(t *testing.T) {
	m := startRealMTA(t)
	if m.tlsprobe == "" {
		t.Skip("TLSUP_TLSPROBE not set")
	}
	_, stsPort, _ := net.SplitHostPort(m.sts.Listener.Addr().String())
	ee, ta, wrong := m.records()
	tests := []struct {
		name       string
		records    []tlsconf.TLSA
		stsMode    string
		stsMX      string
		servfail   bool
		code       int
		policyType string
		policyMode string
		verified   bool
		rpt        any // nil or the tlsrpt_result string
	}{
		{"dane-ee", []tlsconf.TLSA{ee}, "", "", false, 0, "tlsa", "dane", true, nil},
		{"dane-ta", []tlsconf.TLSA{ta}, "", "", false, 0, "tlsa", "dane", true, nil},
		{"wrong record", []tlsconf.TLSA{wrong}, "", "", false, 1, "tlsa", "dane", false, "tlsa-invalid"},
		{"wrong record and dane-ee", []tlsconf.TLSA{wrong, ee}, "", "", false, 0, "tlsa", "dane", true, nil},
		{"wrong record beats sts", []tlsconf.TLSA{wrong}, "enforce", "*.mta.test", false, 1, "tlsa", "dane", false, "tlsa-invalid"},
		{"sts enforce", nil, "enforce", "*.mta.test", false, 0, "sts", "enforce", true, nil},
		{"sts enforce, mx not listed", nil, "enforce", "other.mta.test", false, 1, "sts", "enforce", false, "validation-failure"},
		{"sts testing, mx not listed", nil, "testing", "other.mta.test", false, 0, "sts", "testing", true, "validation-failure"},
		{"no policy", nil, "", "", false, 0, "no-policy-found", "none", true, nil},
		{"tlsa servfail defers", nil, "", "", true, 4, "no-policy-found", "none", false, "dnssec-invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m.publish(tt.records, tt.stsMode, tt.stsMX)
			if tt.servfail {
				m.dns.Set("_25._tcp."+mtaHost, dnstest.TypeTLSA, dnstest.Answer{RCode: dnsmessage.RCodeServerFailure})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, m.tlsprobe, "-mx", mtaDomain, "-resolver", m.dns.Addr, "-port", m.port,
				"-sts-port", stsPort, "-cafile", m.cafile, "-timeout", "10s", "-json")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else {
				require.NoError(t, err)
			}
			t.Logf("tlsprobe: %s", strings.TrimSpace(stdout.String()))
			assert.Equal(t, tt.code, code, "exit status; stderr: %s", stderr.String())
			lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
			require.Len(t, lines, 1, "one line per MX")
			var got map[string]any
			require.NoError(t, json.Unmarshal([]byte(lines[0]), &got))
			assert.Equal(t, mtaHost, got["mx"])
			assert.Equal(t, tt.policyType, got["policy_type"])
			assert.Equal(t, tt.policyMode, got["policy_mode"])
			assert.Equal(t, tt.rpt, got["tlsrpt_result"])
			if tt.code == 4 {
				assert.Equal(t, "lookup", got["step"])
				assert.Equal(t, "lookup", got["error"].(map[string]any)["kind"])
				return
			}
			if tt.code == 0 {
				assert.Equal(t, true, got["tls"])
				assert.Equal(t, tt.verified, got["verified"])
			}
		})
	}
}
