package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/tlsup/tlsup/internal/dnstest"
	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/tlsconf"
)

const (
	mxDomain = "example.test"
	mxName   = "mx.example.test"
)

// mxLine is one decoded JSON line of -mx -json.
type mxLine struct {
	MX           *string    `json:"mx"`
	PolicyType   string     `json:"policy_type"`
	PolicyMode   string     `json:"policy_mode"`
	TLSRPTResult *string    `json:"tlsrpt_result"`
	TLSRPTReason *string    `json:"tlsrpt_reason"`
	Step         *string    `json:"step"`
	TLS          bool       `json:"tls"`
	Verified     *bool      `json:"verified"`
	Error        *errorInfo `json:"error"`
	Address      string     `json:"address"`
}

// mxWorld is a domain published by an in-process DNS server, with an
// in-process MTA-STS policy server.
type mxWorld struct {
	dns     *dnstest.Server
	ca      *tlsconf.CA
	caFile  string
	cert    tls.Certificate // mx.example.test, from ca
	sts     *httptest.Server
	policy  atomic.Value // string served as the policy; "" for 404
	stsPort string
}

func newMXWorld(t *testing.T) *mxWorld {
	w := &mxWorld{dns: dnstest.New(t)}
	var err error
	w.ca, err = tlsconf.NewCA("mx test CA")
	require.NoError(t, err)
	w.cert, err = w.ca.Issue(mxName)
	require.NoError(t, err)
	w.caFile = filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(w.caFile, w.ca.CertPEM(), 0o600))
	stsCert, err := w.ca.Issue("mta-sts." + mxDomain)
	require.NoError(t, err)
	w.sts = httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		policy, _ := w.policy.Load().(string)
		if policy == "" || r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(rw, r)
			return
		}
		rw.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(rw, policy)
	}))
	w.sts.TLS = tlsconf.Server(stsCert)
	w.sts.Config.ErrorLog = log.New(io.Discard, "", 0)
	w.sts.StartTLS()
	t.Cleanup(w.sts.Close)
	_, w.stsPort, _ = net.SplitHostPort(w.sts.Listener.Addr().String())

	secure := func(rs ...dnsmessage.Resource) dnstest.Answer { return dnstest.Answer{Records: rs, Secure: true} }
	w.dns.Set(mxDomain, dnsmessage.TypeMX, secure(dnstest.MX(10, mxName)))
	w.dns.Set(mxName, dnsmessage.TypeA, secure(dnstest.A("127.0.0.1")...))
	w.dns.Set(mxName, dnsmessage.TypeAAAA, secure())
	w.dns.Set("mta-sts."+mxDomain, dnsmessage.TypeA, secure(dnstest.A("127.0.0.1")...))
	w.dns.Set("mta-sts."+mxDomain, dnsmessage.TypeAAAA, secure())
	return w
}

func (w *mxWorld) tlsa(a dnstest.Answer) { w.dns.Set("_25._tcp."+mxName, dnstest.TypeTLSA, a) }

func (w *mxWorld) stsPolicy(mode, mx string) {
	w.dns.Set("_mta-sts."+mxDomain, dnsmessage.TypeTXT, dnstest.Answer{Records: []dnsmessage.Resource{dnstest.TXT("v=STSv1; id=1")}})
	w.policy.Store(fmt.Sprintf("version: STSv1\nmode: %s\nmx: %s\nmax_age: 86400\n", mode, mx))
}

// probe runs tlsprobe -mx against the world and an MX at mxAddr.
func (w *mxWorld) probe(t *testing.T, mxAddr string, extra ...string) ([]mxLine, int, string) {
	_, port, _ := net.SplitHostPort(mxAddr)
	args := append([]string{"-mx", mxDomain, "-resolver", w.dns.Addr, "-port", port, "-sts-port", w.stsPort,
		"-cafile", w.caFile, "-timeout", "3s", "-json"}, extra...)
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := run(ctx, args, &stdout, &stderr)
	var lines []mxLine
	dec := json.NewDecoder(&stdout)
	for dec.More() {
		var l mxLine
		require.NoError(t, dec.Decode(&l))
		lines = append(lines, l)
	}
	return lines, code, stderr.String()
}

const (
	mxGreet = "S: 220 mx.example.test ESMTP\nC: EHLO localhost\nS: 250-mx.example.test\nS: 250 STARTTLS\nC: STARTTLS\nS: 220 go ahead\n"
	mxTLS   = mxGreet + "!tls\nC: EHLO localhost\nS: 250-mx.example.test\nS: 250 SIZE 1000\n"
	noTLS   = "S: 220 mx.example.test ESMTP\nC: EHLO localhost\nS: 250 mx.example.test\n"
)

func ptr(s string) *string { return &s }

// The contract's "MTA policy" section, one row per rule.
func TestMXPolicy(t *testing.T) {
	ca, err := tlsconf.NewCA("unrelated CA")
	require.NoError(t, err)
	otherCert, err := ca.Issue(mxName)
	require.NoError(t, err)

	tests := []struct {
		name       string
		setup      func(w *mxWorld)
		script     string
		serverCert func(w *mxWorld) tls.Certificate
		// serverConfig, when set, replaces the server's TLS config.
		serverConfig func(w *mxWorld) *tls.Config
		noConnect    bool
		code         int
		want         mxLine
	}{
		{
			name: "dane-ee matches",
			setup: func(w *mxWorld) {
				w.tlsa(dnstest.Answer{Records: []dnsmessage.Resource{tlsaOf(tlsconf.NewTLSA(3, 1, 1, w.cert.Leaf))}, Secure: true})
			},
			script: mxTLS, code: 0,
			want: mxLine{PolicyType: "tlsa", PolicyMode: "dane", TLS: true, Verified: ptrBool(true)},
		},
		{
			name: "dane-ta of the ca matches",
			setup: func(w *mxWorld) {
				w.tlsa(dnstest.Answer{Records: []dnsmessage.Resource{tlsaOf(tlsconf.NewTLSA(2, 0, 1, w.ca.Certificate()))}, Secure: true})
			},
			serverCert: func(w *mxWorld) tls.Certificate {
				c := w.cert
				c.Certificate = append(c.Certificate[:1:1], w.ca.Certificate().Raw)
				return c
			},
			script: mxTLS, code: 0,
			want: mxLine{PolicyType: "tlsa", PolicyMode: "dane", TLS: true, Verified: ptrBool(true)},
		},
		{
			name: "dane record mismatch",
			setup: func(w *mxWorld) {
				w.tlsa(dnstest.Answer{Records: []dnsmessage.Resource{tlsaOf(tlsconf.NewTLSA(3, 1, 1, otherCert.Leaf))}, Secure: true})
			},
			script: mxGreet + "!tls\n", code: 1,
			want: mxLine{PolicyType: "tlsa", PolicyMode: "dane", Verified: ptrBool(false), TLSRPTResult: ptr("tlsa-invalid"),
				TLSRPTReason: ptr("no-tlsa-match"), Error: &errorInfo{Kind: "certificate"}, Step: ptr("handshake")},
		},
		{
			name: "dane wins over sts",
			setup: func(w *mxWorld) {
				w.tlsa(dnstest.Answer{Records: []dnsmessage.Resource{tlsaOf(tlsconf.NewTLSA(3, 1, 1, w.cert.Leaf))}, Secure: true})
				w.stsPolicy("enforce", "other.example.test")
			},
			script: mxTLS, code: 0,
			want: mxLine{PolicyType: "tlsa", PolicyMode: "dane", TLS: true, Verified: ptrBool(true)},
		},
		{
			name:      "tlsa servfail defers",
			setup:     func(w *mxWorld) { w.tlsa(dnstest.Answer{RCode: dnsmessage.RCodeServerFailure}) },
			noConnect: true, code: 4,
			want: mxLine{PolicyType: "no-policy-found", PolicyMode: "none", Step: ptr("lookup"), Error: &errorInfo{Kind: "lookup"},
				TLSRPTResult: ptr("dnssec-invalid"), TLSRPTReason: ptr("dns-servfail")},
		},
		{
			name: "address servfail defers",
			setup: func(w *mxWorld) {
				w.dns.Set(mxName, dnsmessage.TypeAAAA, dnstest.Answer{RCode: dnsmessage.RCodeServerFailure})
			},
			noConnect: true, code: 4,
			want: mxLine{PolicyType: "no-policy-found", PolicyMode: "none", Step: ptr("lookup"), Error: &errorInfo{Kind: "lookup"},
				TLSRPTResult: ptr("dnssec-invalid"), TLSRPTReason: ptr("dns-servfail")},
		},
		{
			name: "insecure tlsa: no dane",
			setup: func(w *mxWorld) {
				w.tlsa(dnstest.Answer{Records: []dnsmessage.Resource{tlsaOf(tlsconf.NewTLSA(3, 1, 1, otherCert.Leaf))}})
			},
			script: mxTLS, code: 0,
			want: mxLine{PolicyType: "no-policy-found", PolicyMode: "none", TLS: true, Verified: ptrBool(true)},
		},
		{
			name: "insecure address: no dane",
			setup: func(w *mxWorld) {
				w.dns.Set(mxName, dnsmessage.TypeA, dnstest.Answer{Records: dnstest.A("127.0.0.1")})
				w.tlsa(dnstest.Answer{Records: []dnsmessage.Resource{tlsaOf(tlsconf.NewTLSA(3, 1, 1, otherCert.Leaf))}, Secure: true})
			},
			script: mxTLS, code: 0,
			want: mxLine{PolicyType: "no-policy-found", PolicyMode: "none", TLS: true, Verified: ptrBool(true)},
		},
		{
			name: "insecure mx: no dane",
			setup: func(w *mxWorld) {
				w.dns.Set(mxDomain, dnsmessage.TypeMX, dnstest.Answer{Records: []dnsmessage.Resource{dnstest.MX(10, mxName)}})
				w.tlsa(dnstest.Answer{Records: []dnsmessage.Resource{tlsaOf(tlsconf.NewTLSA(3, 1, 1, otherCert.Leaf))}, Secure: true})
			},
			script: mxTLS, code: 0,
			want: mxLine{PolicyType: "no-policy-found", PolicyMode: "none", TLS: true, Verified: ptrBool(true)},
		},
		{
			name: "only unusable tlsa: tls stays required",
			setup: func(w *mxWorld) {
				w.tlsa(dnstest.Answer{Records: []dnsmessage.Resource{tlsaOf(tlsconf.NewTLSA(1, 1, 1, w.cert.Leaf))}, Secure: true})
			},
			script: noTLS, code: 1,
			want: mxLine{PolicyType: "no-policy-found", PolicyMode: "none", Error: &errorInfo{Kind: "not-offered"},
				TLSRPTResult: ptr("starttls-not-supported"), Step: ptr("discover")},
		},
		{
			name: "only unusable tlsa: unauthenticated tls passes, reported",
			setup: func(w *mxWorld) {
				w.tlsa(dnstest.Answer{Records: []dnsmessage.Resource{tlsaOf(tlsconf.NewTLSA(1, 1, 1, w.cert.Leaf))}, Secure: true})
			},
			serverCert: func(*mxWorld) tls.Certificate { return otherCert },
			script:     mxTLS, code: 0,
			want: mxLine{PolicyType: "no-policy-found", PolicyMode: "none", TLS: true, Verified: ptrBool(false),
				TLSRPTResult: ptr("tlsa-invalid"), TLSRPTReason: ptr("no-usable-tlsa")},
		},
		{
			name:   "sts enforce",
			setup:  func(w *mxWorld) { w.stsPolicy("enforce", "*.example.test") },
			script: mxTLS, code: 0,
			want: mxLine{PolicyType: "sts", PolicyMode: "enforce", TLS: true, Verified: ptrBool(true)},
		},
		{
			name:       "sts enforce, untrusted certificate",
			setup:      func(w *mxWorld) { w.stsPolicy("enforce", mxName) },
			serverCert: func(*mxWorld) tls.Certificate { return otherCert },
			script:     mxGreet + "!tls\n", code: 1,
			want: mxLine{PolicyType: "sts", PolicyMode: "enforce", Verified: ptrBool(false), Error: &errorInfo{Kind: "certificate"},
				TLSRPTResult: ptr("certificate-not-trusted"), Step: ptr("handshake")},
		},
		{
			name:      "sts enforce, mx not in policy",
			setup:     func(w *mxWorld) { w.stsPolicy("enforce", "mail.example.test") },
			noConnect: true, code: 1,
			want: mxLine{PolicyType: "sts", PolicyMode: "enforce", Error: &errorInfo{Kind: "certificate"}, Step: ptr("connect"),
				TLSRPTResult: ptr("validation-failure"), TLSRPTReason: ptr("mx-not-in-policy")},
		},
		{
			name:   "sts testing, starttls missing: delivered, reported",
			setup:  func(w *mxWorld) { w.stsPolicy("testing", mxName) },
			script: noTLS, code: 0,
			want: mxLine{PolicyType: "sts", PolicyMode: "testing", TLSRPTResult: ptr("starttls-not-supported")},
		},
		{
			name:       "sts testing, bad certificate: delivered, reported",
			setup:      func(w *mxWorld) { w.stsPolicy("testing", mxName) },
			serverCert: func(*mxWorld) tls.Certificate { return otherCert },
			script:     mxTLS, code: 0,
			want: mxLine{PolicyType: "sts", PolicyMode: "testing", TLS: true, Verified: ptrBool(false), TLSRPTResult: ptr("certificate-not-trusted")},
		},
		{
			name: "sts policy not fetched: as without",
			setup: func(w *mxWorld) {
				w.stsPolicy("enforce", "mail.example.test")
				w.policy.Store("")
			},
			script: mxTLS, code: 0,
			want: mxLine{PolicyType: "no-policy-found", PolicyMode: "none", TLS: true, Verified: ptrBool(true), TLSRPTResult: ptr("sts-policy-fetch-error")},
		},
		{
			name: "tls 1.3 alert on the first read counts as the handshake",
			setup: func(w *mxWorld) {
				w.tlsa(dnstest.Answer{Records: []dnsmessage.Resource{tlsaOf(tlsconf.NewTLSA(3, 1, 1, w.cert.Leaf))}, Secure: true})
			},
			serverConfig: func(w *mxWorld) *tls.Config {
				cfg := tlsconf.Server(w.cert)
				cfg.MinVersion = tls.VersionTLS13
				cfg.ClientAuth = tls.RequireAnyClientCert
				return cfg
			},
			script: mxGreet + "!tls\n!hold\n", code: 1,
			want: mxLine{PolicyType: "tlsa", PolicyMode: "dane", TLS: true, Verified: ptrBool(true), Error: &errorInfo{Kind: "handshake"},
				TLSRPTResult: ptr("validation-failure"), TLSRPTReason: ptr("tls-alert-certificate-required"), Step: ptr("rediscover")},
		},
		{
			name:   "no policy, no starttls",
			script: noTLS, code: 0,
			want: mxLine{PolicyType: "no-policy-found", PolicyMode: "none"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newMXWorld(t)
			w.tlsa(dnstest.Answer{RCode: dnsmessage.RCodeNameError, Secure: true})
			if tt.setup != nil {
				tt.setup(w)
			}
			cert := w.cert
			if tt.serverCert != nil {
				cert = tt.serverCert(w)
			}
			var addr string
			var peer *scripttest.Peer
			var ln *net.TCPListener
			if tt.noConnect {
				l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
				require.NoError(t, err)
				t.Cleanup(func() { l.Close() })
				ln, addr = l, l.Addr().String()
			} else {
				serverCfg := tlsconf.Server(cert)
				if tt.serverConfig != nil {
					serverCfg = tt.serverConfig(w)
				}
				addr, peer = scripttest.Listen(t, tt.script, &scripttest.Options{TLSConfig: serverCfg, Timeout: 5 * time.Second})
			}
			lines, code, stderr := w.probe(t, addr)
			assert.Equal(t, tt.code, code, "exit status; stderr: %s", stderr)
			require.Len(t, lines, 1)
			got := lines[0]
			if tt.want.MX == nil {
				tt.want.MX = ptr(mxName)
			}
			if got.Error != nil && tt.want.Error != nil {
				tt.want.Error.Message = got.Error.Message
			}
			got.Address = ""
			assert.Equal(t, tt.want, got)
			if tt.noConnect {
				ln.SetDeadline(time.Now().Add(50 * time.Millisecond))
				c, err := ln.Accept()
				if c != nil {
					c.Close()
				}
				require.Error(t, err, "the MX must not be contacted")
			} else {
				_ = peer.Wait()
			}
		})
	}
}

func tlsaOf(r tlsconf.TLSA) dnsmessage.Resource {
	return dnstest.TLSA(r.Usage, r.Selector, r.MatchingType, r.Data)
}

func ptrBool(b bool) *bool { return &b }

func TestMXLookupFails(t *testing.T) {
	w := newMXWorld(t)
	w.dns.Set(mxDomain, dnsmessage.TypeMX, dnstest.Answer{Silent: true})
	lines, code, _ := w.probe(t, "127.0.0.1:1", "-timeout", "1s")
	assert.Equal(t, 4, code)
	require.Len(t, lines, 1)
	assert.Nil(t, lines[0].MX, "a failed MX lookup: mx null")
	assert.Equal(t, "lookup", lines[0].Error.Kind)
	assert.Equal(t, "lookup", *lines[0].Step)
}

func TestMXImplicitAndText(t *testing.T) {
	w := newMXWorld(t)
	w.dns.Set(mxDomain, dnsmessage.TypeMX, dnstest.Answer{Secure: true})
	w.dns.Set(mxDomain, dnsmessage.TypeA, dnstest.Answer{Records: dnstest.A("127.0.0.1"), Secure: true})
	cert, err := w.ca.Issue(mxDomain)
	require.NoError(t, err)
	addr, peer := scripttest.Listen(t, mxTLS, &scripttest.Options{TLSConfig: tlsconf.Server(cert)})
	_, port, _ := net.SplitHostPort(addr)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-mx", mxDomain, "-resolver", w.dns.Addr, "-port", port, "-cafile", w.caFile, "-timeout", "3s"}, &stdout, &stderr)
	assert.Equal(t, 0, code, stderr.String())
	assert.Contains(t, stdout.String(), "mx:           example.test\n", "RFC 5321, Section 5.1: the implicit MX")
	assert.Contains(t, stdout.String(), "mta policy:   no-policy-found, none\n")
	assert.Contains(t, stdout.String(), "result:       ok\n")
	require.NoError(t, peer.Wait())
}

func TestMXUsage(t *testing.T) {
	for _, args := range [][]string{
		{"-mx", ""},
		{"-mx", "example.test", "host:25"},
		{"-mx", "example.test", "-port", "0"},
		{"-mx", "example.test", "-sts-port", "70000"},
		{"-mx", "example.test", "-resolver", "nohost"},
		{"-mx", "example.test", "-protocol", "imap"},
		{"-mx", "example.test", "-timeout", "0s"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		assert.Equal(t, 2, code, "%q", args)
		assert.Empty(t, stdout.String())
	}
	assert.True(t, mxRequested([]string{"-json", "--mx=example.test"}))
	assert.False(t, mxRequested([]string{"-json", "--", "-mx"}))
	assert.False(t, mxRequested([]string{"mx.example.test:25"}))
}

// listenPair listens on 127.0.0.1 and 127.0.0.2 on one port, so that two
// MX hosts share the -port.
func listenPair(t *testing.T) (net.Listener, net.Listener, string) {
	for range 20 {
		a, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		_, port, _ := net.SplitHostPort(a.Addr().String())
		b, err := net.Listen("tcp", "127.0.0.2:"+port)
		if err == nil {
			t.Cleanup(func() { a.Close(); b.Close() })
			return a, b, port
		}
		a.Close()
	}
	t.Fatal("no port free on both 127.0.0.1 and 127.0.0.2")
	return nil, nil, ""
}

// serveOne runs script on the first connection of l.
func serveOne(t *testing.T, l net.Listener, script string, cfg *tls.Config) <-chan *scripttest.Peer {
	ch := make(chan *scripttest.Peer, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			ch <- nil
			return
		}
		ch <- scripttest.Start(t, c, script, &scripttest.Options{TLSConfig: cfg})
	}()
	return ch
}

// One line per MX, in preference order; a deferral on any wins the exit
// status over a failure, a failure over success.
func TestMXSeveralHosts(t *testing.T) {
	tests := []struct {
		name        string
		second      dnstest.Answer // TLSA of mx2
		secondReply string
		code        int
		secondKind  string
	}{
		{"both pass", dnstest.Answer{RCode: dnsmessage.RCodeNameError, Secure: true}, mxTLS, 0, ""},
		{"second fails", dnstest.Answer{RCode: dnsmessage.RCodeNameError, Secure: true}, mxGreet + "!close\n", 1, "handshake"},
		{"second defers", dnstest.Answer{Silent: true}, "", 4, "lookup"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newMXWorld(t)
			secure := func(rs ...dnsmessage.Resource) dnstest.Answer { return dnstest.Answer{Records: rs, Secure: true} }
			w.dns.Set(mxDomain, dnsmessage.TypeMX, secure(dnstest.MX(20, "mx2.example.test"), dnstest.MX(10, mxName)))
			w.dns.Set("mx2.example.test", dnsmessage.TypeA, secure(dnstest.A("127.0.0.2")...))
			w.dns.Set("mx2.example.test", dnsmessage.TypeAAAA, secure())
			w.tlsa(secure(tlsaOf(tlsconf.NewTLSA(3, 1, 1, w.cert.Leaf))))
			w.dns.Set("_25._tcp.mx2.example.test", dnstest.TypeTLSA, tt.second)
			cert2, err := w.ca.Issue("mx2.example.test")
			require.NoError(t, err)
			l1, l2, port := listenPair(t)
			p1 := serveOne(t, l1, mxTLS, tlsconf.Server(w.cert))
			var p2 <-chan *scripttest.Peer
			if tt.secondReply != "" {
				p2 = serveOne(t, l2, tt.secondReply, tlsconf.Server(cert2))
			}
			lines, code, stderr := w.probe(t, "127.0.0.1:"+port, "-timeout", "1s")
			assert.Equal(t, tt.code, code, stderr)
			require.Len(t, lines, 2)
			assert.Equal(t, mxName, *lines[0].MX, "preference order")
			assert.Equal(t, "mx2.example.test", *lines[1].MX)
			assert.Nil(t, lines[0].Error)
			if tt.secondKind == "" {
				assert.Nil(t, lines[1].Error)
			} else {
				require.NotNil(t, lines[1].Error)
				assert.Equal(t, tt.secondKind, lines[1].Error.Kind)
			}
			if peer := <-p1; peer != nil {
				_ = peer.Wait()
			}
			if p2 != nil {
				if peer := <-p2; peer != nil {
					_ = peer.Wait()
				}
			}
		})
	}
}

func TestMXDeferText(t *testing.T) {
	w := newMXWorld(t)
	w.tlsa(dnstest.Answer{RCode: dnsmessage.RCodeServerFailure})
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-mx", mxDomain, "-resolver", w.dns.Addr, "-port", "1", "-timeout", "2s"}, &stdout, &stderr)
	assert.Equal(t, 4, code, stderr.String())
	assert.Equal(t, "mx:           mx.example.test\n"+
		"mta policy:   no-policy-found, none\n"+
		"tls-rpt:      dnssec-invalid (dns-servfail)\n"+
		"result:       DEFER (lookup): dane: lookup _25._tcp.mx.example.test. TLSA: servfail\n\n", stdout.String())
}
