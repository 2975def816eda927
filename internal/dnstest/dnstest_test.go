package dnstest_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/tlsup/tlsup/internal/dnstest"
)

// The server answers the standard library's resolver over UDP and TCP, and
// records the questions.
func TestServer(t *testing.T) {
	s := dnstest.New(t)
	s.Set("Host.Example.Test.", dnsmessage.TypeA, dnstest.Answer{Records: dnstest.A("192.0.2.1"), Secure: true})
	s.Set("host.example.test", dnsmessage.TypeAAAA, dnstest.Answer{Records: dnstest.A("2001:db8::1"), Truncate: true})
	s.Set("silent.example.test", dnsmessage.TypeA, dnstest.Answer{Silent: true})
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, s.Addr)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	addrs, err := r.LookupHost(ctx, "host.example.test")
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"192.0.2.1", "2001:db8::1"}, addrs, "the AAAA answer came over TCP")
	var tcp bool
	for _, q := range s.Queries() {
		tcp = tcp || q.TCP
	}
	assert.True(t, tcp)

	_, err = r.LookupHost(ctx, "nowhere.example.test")
	var dnsErr *net.DNSError
	require.ErrorAs(t, err, &dnsErr)
	assert.True(t, dnsErr.IsNotFound, "unknown names: NXDOMAIN")

	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	_, err = r.LookupIPAddr(short, "silent.example.test")
	require.Error(t, err, "silence: a timeout")
}
