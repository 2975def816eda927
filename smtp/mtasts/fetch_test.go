package mtasts_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/smtp/mtasts"
	"github.com/tlsup/tlsup/tlsconf"
)

const domain = "example.test"

// policyServer is an in-process HTTPS server for mta-sts.example.test.
type policyServer struct {
	*httptest.Server
	ca      *tlsconf.CA
	fetches atomic.Int32
	// handler answers the policy URL; set before use.
	handler atomic.Value // http.HandlerFunc
}

func newPolicyServer(t *testing.T, cert func(ca *tlsconf.CA) tls.Certificate) *policyServer {
	ca, err := tlsconf.NewCA("policy CA")
	require.NoError(t, err)
	ps := &policyServer{ca: ca}
	ps.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ps.fetches.Add(1)
		if r.URL.Path != "/.well-known/mta-sts.txt" || r.Host != "mta-sts."+domain {
			http.Error(w, "wrong place: "+r.Host+r.URL.Path, http.StatusTeapot)
			return
		}
		ps.handler.Load().(http.HandlerFunc)(w, r)
	}))
	var c tls.Certificate
	if cert != nil {
		c = cert(ca)
	} else {
		c, err = ca.Issue("mta-sts." + domain)
		require.NoError(t, err)
	}
	ps.TLS = tlsconf.Server(c)
	ps.Config.ErrorLog = log.New(io.Discard, "", 0)
	ps.StartTLS()
	t.Cleanup(ps.Close)
	ps.serve("text/plain; charset=utf-8", rfcPolicy)
	return ps
}

func (ps *policyServer) serve(contentType, body string) {
	ps.handler.Store(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		fmt.Fprint(w, body)
	}))
}

// fetcher fetches from ps, whatever name it dials; the TXT records are
// txt (a pointer, so a test can change them).
func (ps *policyServer) fetcher(txt *[]string) *mtasts.Fetcher {
	_, port, _ := net.SplitHostPort(ps.Listener.Addr().String())
	n, _ := strconv.Atoi(port)
	return &mtasts.Fetcher{
		LookupTXT: func(_ context.Context, name string) ([]string, error) {
			if name != "_mta-sts."+domain {
				return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
			}
			return *txt, nil
		},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != net.JoinHostPort("mta-sts."+domain, port) {
				return nil, fmt.Errorf("dialled %s", addr)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, ps.Listener.Addr().String())
		},
		Roots:   ps.ca.Pool(),
		Port:    n,
		Timeout: 2 * time.Second,
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// RFC 8461, Section 3.3: fetching the policy.
func TestFetch(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(ps *policyServer)
		cert    func(ca *tlsconf.CA) tls.Certificate
		wantErr error
	}{
		{"ok", nil, nil, nil},
		{"redirect not followed", func(ps *policyServer) {
			ps.handler.Store(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/elsewhere", http.StatusMovedPermanently)
			}))
		}, nil, mtasts.ErrFetch},
		{"404", func(ps *policyServer) {
			ps.handler.Store(http.HandlerFunc(http.NotFound))
		}, nil, mtasts.ErrFetch},
		{"html", func(ps *policyServer) { ps.serve("text/html", rfcPolicy) }, nil, mtasts.ErrInvalid},
		{"no content type", func(ps *policyServer) { ps.serve("", rfcPolicy) }, nil, mtasts.ErrInvalid},
		{"invalid policy", func(ps *policyServer) { ps.serve("text/plain", "version: STSv1\n") }, nil, mtasts.ErrInvalid},
		{"over 64 KiB", func(ps *policyServer) {
			ps.serve("text/plain", rfcPolicy+"x: "+strings.Repeat("a", 64<<10)+"\n")
		}, nil, mtasts.ErrFetch},
		{"slow", func(ps *policyServer) {
			ps.handler.Store(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(10 * time.Second):
				}
			}))
		}, nil, mtasts.ErrFetch},
		{"untrusted certificate", nil, func(*tlsconf.CA) tls.Certificate {
			c, err := tlsconf.SelfSigned("mta-sts." + domain)
			require.NoError(t, err)
			return c
		}, mtasts.ErrWebPKI},
		{"certificate for another name", nil, func(ca *tlsconf.CA) tls.Certificate {
			c, err := ca.Issue("www." + domain)
			require.NoError(t, err)
			return c
		}, mtasts.ErrWebPKI},
		{"expired certificate", nil, func(ca *tlsconf.CA) tls.Certificate {
			c, err := ca.IssueLeaf(tlsconf.Leaf{Names: []string{"mta-sts." + domain}, NotAfter: time.Now().Add(-time.Minute)})
			require.NoError(t, err)
			return c
		}, mtasts.ErrWebPKI},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := newPolicyServer(t, tt.cert)
			if tt.setup != nil {
				tt.setup(ps)
			}
			txt := []string{"v=STSv1; id=1"}
			p, err := ps.fetcher(&txt).Fetch(ctx(t), domain)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Nil(t, p)
				assert.LessOrEqual(t, ps.fetches.Load(), int32(1), "one request, no redirect followed")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, mtasts.Enforce, p.Mode)
			assert.Equal(t, rfcPolicy, p.Text)
		})
	}
}

func TestRecord(t *testing.T) {
	ps := newPolicyServer(t, nil)
	txt := []string{"v=STSv1; id=abc"}
	f := ps.fetcher(&txt)
	id, err := f.Record(ctx(t), domain)
	require.NoError(t, err)
	assert.Equal(t, "abc", id)
	_, err = f.Record(ctx(t), "other.test")
	require.ErrorIs(t, err, mtasts.ErrNoPolicy, "NXDOMAIN: no policy")
	f.LookupTXT = func(context.Context, string) ([]string, error) {
		return nil, &net.DNSError{Err: "server misbehaving", IsTemporary: true}
	}
	_, err = f.Record(ctx(t), domain)
	require.ErrorIs(t, err, mtasts.ErrFetch)
}

// RFC 8461, Section 5.1: the cache honours max_age and the record id.
func TestCache(t *testing.T) {
	ps := newPolicyServer(t, nil)
	txt := []string{"v=STSv1; id=one"}
	now := time.Now()
	c := &mtasts.Cache{Fetcher: ps.fetcher(&txt), Now: func() time.Time { return now }}
	get := func() (*mtasts.Policy, error, error) { return c.Get(ctx(t), domain) }

	p, fetchErr, err := get()
	require.NoError(t, err)
	require.NoError(t, fetchErr)
	assert.Equal(t, mtasts.Enforce, p.Mode)
	assert.Equal(t, int32(1), ps.fetches.Load())

	_, _, err = get()
	require.NoError(t, err)
	assert.Equal(t, int32(1), ps.fetches.Load(), "same id, unexpired: no fetch")

	ps.serve("text/plain", "version: STSv1\nmode: testing\nmx: mail.example.com\nmax_age: 60\n")
	txt = []string{"v=STSv1; id=two"}
	p, _, err = get()
	require.NoError(t, err)
	assert.Equal(t, int32(2), ps.fetches.Load(), "new id: fetched")
	assert.Equal(t, mtasts.Testing, p.Mode)

	now = now.Add(61 * time.Second)
	ps.serve("text/plain", rfcPolicy)
	p, _, err = get()
	require.NoError(t, err)
	assert.Equal(t, int32(3), ps.fetches.Load(), "expired: fetched again")
	assert.Equal(t, mtasts.Enforce, p.Mode)

	// A failed fetch or a vanished record leave the unexpired policy in force.
	txt = []string{"v=STSv1; id=three"}
	ps.handler.Store(http.HandlerFunc(http.NotFound))
	p, fetchErr, err = get()
	require.NoError(t, err)
	require.ErrorIs(t, fetchErr, mtasts.ErrFetch)
	assert.Equal(t, mtasts.Enforce, p.Mode)
	txt = nil
	p, fetchErr, err = get()
	require.NoError(t, err)
	require.ErrorIs(t, fetchErr, mtasts.ErrNoPolicy)
	assert.Equal(t, mtasts.Enforce, p.Mode)

	// Expired and gone: no policy.
	now = now.Add(mtasts.MaxAgeLimit)
	_, _, err = get()
	require.ErrorIs(t, err, mtasts.ErrNoPolicy)
	c.Forget(domain)
}

func ExampleCache_Get() {
	f := &mtasts.Fetcher{LookupTXT: func(context.Context, string) ([]string, error) {
		return []string{"v=spf1 -all"}, nil // no STSv1 record
	}}
	c := &mtasts.Cache{Fetcher: f}
	_, _, err := c.Get(context.Background(), "example.org")
	fmt.Println(err)
	// Output:
	// mtasts: no policy: 0 STSv1 records
}
