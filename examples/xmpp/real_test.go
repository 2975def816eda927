package xmpp_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/examples/xmpp"
	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// realEnv returns the environment .ci/real-binproto.sh sets, or skips.
func realEnv(t *testing.T, names ...string) map[string]string {
	t.Helper()
	if os.Getenv("TLSUP_REAL_BINPROTO") != "1" {
		t.Skip("TLSUP_REAL_BINPROTO=1 not set: real servers are started by .ci/real-binproto.sh")
	}
	env := map[string]string{}
	for _, n := range append(names, "TLSUP_CA", "TLSUP_USER", "TLSUP_PASSWORD") {
		v := os.Getenv(n)
		require.NotEmpty(t, v, "%s not set", n)
		env[n] = v
	}
	return env
}

// nextStart returns the next start element at the decoder's level,
// skipping white space.
func nextStart(t *testing.T, dec *xml.Decoder) xml.StartElement {
	t.Helper()
	for i := 0; i < 100; i++ {
		tok, err := dec.Token()
		require.NoError(t, err)
		if s, ok := tok.(xml.StartElement); ok {
			return s
		}
	}
	t.Fatal("no element")
	return xml.StartElement{}
}

// xmppSession continues the stream the upgrade left just after the
// features: SASL PLAIN (RFC 6120, Section 6), a stream restart, and a
// resource bind (Section 7); it returns the full JID bound.
func xmppSession(t *testing.T, conn io.ReadWriter, domain, user, password string) string {
	t.Helper()
	// The upgrade's decoder read the features; later elements carry their
	// own namespace declarations, so a fresh decoder reads them.
	dec := xml.NewDecoder(conn.(io.Reader))
	credentials := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
	_, err := io.WriteString(conn, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"+credentials+"</auth>")
	require.NoError(t, err)
	s := nextStart(t, dec)
	require.Equal(t, "success", s.Name.Local, "SASL answer %v", s.Name)
	require.NoError(t, dec.Skip())

	// RFC 6120, Section 6.4.6: restart the stream after SASL.
	_, err = io.WriteString(conn, "<?xml version='1.0'?><stream:stream to='"+domain+
		"' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")
	require.NoError(t, err)
	dec = xml.NewDecoder(conn.(io.Reader))
	s = nextStart(t, dec)
	require.Equal(t, "stream", s.Name.Local)
	var features struct {
		Bind *struct{} `xml:"urn:ietf:params:xml:ns:xmpp-bind bind"`
	}
	s = nextStart(t, dec)
	require.Equal(t, "features", s.Name.Local)
	require.NoError(t, dec.DecodeElement(&features, &s))
	require.NotNil(t, features.Bind, "bind offered after authentication")

	_, err = io.WriteString(conn, "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>tlsup-test</resource></bind></iq>")
	require.NoError(t, err)
	var iq struct {
		Type string `xml:"type,attr"`
		ID   string `xml:"id,attr"`
		JID  string `xml:"urn:ietf:params:xml:ns:xmpp-bind bind>jid"`
	}
	s = nextStart(t, dec)
	require.NoError(t, dec.DecodeElement(&iq, &s))
	require.Equal(t, "result", iq.Type)
	require.Equal(t, "bind1", iq.ID)
	io.WriteString(conn, "</stream:stream>")
	return iq.JID
}

func TestRealXMPP(t *testing.T) {
	env := realEnv(t, "TLSUP_XMPP_ADDR", "TLSUP_XMPPS_ADDR", "TLSUP_XMPP_NOTLS_ADDR",
		"TLSUP_XMPP_DOMAIN", "TLSUP_XMPP_REQUIRED_DOMAIN", "TLSUP_XMPP_NOTLS_DOMAIN")
	roots, err := tlsconf.LoadRoots(env["TLSUP_CA"])
	require.NoError(t, err)
	t.Logf("Prosody %s", os.Getenv("TLSUP_PROSODY_VERSION"))
	dial := func(t *testing.T, addr string, opts *xmpp.Options) (*tls.Conn, *starttls.Result, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		t.Cleanup(cancel)
		return xmpp.Dial(ctx, "tcp", addr, opts)
	}
	user, password := env["TLSUP_USER"], env["TLSUP_PASSWORD"]

	cases := []struct {
		addr, domain string
		mode, want   starttls.Mode
		before       string // the starttls entry before TLS
	}{
		{env["TLSUP_XMPP_ADDR"], env["TLSUP_XMPP_DOMAIN"], starttls.Auto, starttls.StartTLS, "starttls"},
		{env["TLSUP_XMPP_ADDR"], env["TLSUP_XMPP_DOMAIN"], starttls.StartTLS, starttls.StartTLS, "starttls"},
		{env["TLSUP_XMPP_ADDR"], env["TLSUP_XMPP_REQUIRED_DOMAIN"], starttls.Auto, starttls.StartTLS, "starttls required"},
		{env["TLSUP_XMPPS_ADDR"], env["TLSUP_XMPP_DOMAIN"], starttls.Auto, starttls.Implicit, ""},
		{env["TLSUP_XMPPS_ADDR"], env["TLSUP_XMPP_DOMAIN"], starttls.Implicit, starttls.Implicit, ""},
	}
	for _, c := range cases {
		for _, policy := range []starttls.Policy{starttls.Required, starttls.Always, starttls.Opportunistic} {
			t.Run(fmt.Sprintf("%s %s %s %s", c.addr, c.domain, c.mode, policy), func(t *testing.T) {
				tc, res, err := dial(t, c.addr, &xmpp.Options{Domain: c.domain,
					TLSConfig: tlsconf.Client(c.domain, roots), Policy: policy, Mode: c.mode})
				require.NoError(t, err)
				defer tc.Close()
				assert.True(t, res.TLS)
				assert.Equal(t, c.want, res.Mode)
				assert.Equal(t, c.domain, res.Greeting)
				if c.before != "" {
					assert.Contains(t, res.Before.List(), c.before)
				} else {
					assert.Nil(t, res.Before)
				}
				assert.False(t, res.After.Has("starttls"), "starttls offered inside TLS: %v", res.After.List())
				mechanisms, _ := res.After.Get("mechanisms")
				assert.Contains(t, strings.Fields(mechanisms), "PLAIN", "after: %v", res.After.List())
				jid := xmppSession(t, res.Conn, c.domain, user, password)
				assert.Equal(t, user+"@"+c.domain+"/tlsup-test", jid)
			})
		}
	}
	for _, addr := range []string{env["TLSUP_XMPP_ADDR"], env["TLSUP_XMPPS_ADDR"]} {
		t.Run("wrong CA "+addr, func(t *testing.T) {
			other := scripttest.NewPKI(t)
			_, res, err := dial(t, addr, &xmpp.Options{Domain: env["TLSUP_XMPP_DOMAIN"], TLSConfig: other.Client(env["TLSUP_XMPP_DOMAIN"])})
			require.ErrorIs(t, err, starttls.ErrHandshake)
			var cerr *tls.CertificateVerificationError
			require.ErrorAs(t, err, &cerr)
			assert.False(t, res.TLS)
		})
	}
	t.Run("not offered, required", func(t *testing.T) {
		_, res, err := dial(t, env["TLSUP_XMPP_NOTLS_ADDR"], &xmpp.Options{Domain: env["TLSUP_XMPP_NOTLS_DOMAIN"],
			TLSConfig: tlsconf.Client(env["TLSUP_XMPP_NOTLS_DOMAIN"], roots)})
		require.ErrorIs(t, err, starttls.ErrNotOffered)
		assert.False(t, slices.Contains(res.Before.List(), "starttls"))
	})
	t.Run("not offered, always", func(t *testing.T) {
		_, res, err := dial(t, env["TLSUP_XMPP_NOTLS_ADDR"], &xmpp.Options{Domain: env["TLSUP_XMPP_NOTLS_DOMAIN"],
			TLSConfig: tlsconf.Client(env["TLSUP_XMPP_NOTLS_DOMAIN"], roots), Policy: starttls.Always})
		require.ErrorIs(t, err, starttls.ErrRefused)
		t.Logf("Prosody without mod_tls answers starttls with: %v", err)
		assert.False(t, res.TLS)
	})
	t.Run("not offered, opportunistic", func(t *testing.T) {
		tc, res, err := dial(t, env["TLSUP_XMPP_NOTLS_ADDR"], &xmpp.Options{Domain: env["TLSUP_XMPP_NOTLS_DOMAIN"],
			TLSConfig: tlsconf.Client(env["TLSUP_XMPP_NOTLS_DOMAIN"], roots), Policy: starttls.Opportunistic})
		require.NoError(t, err)
		require.NotNil(t, tc, "a placeholder, safe to close")
		assert.False(t, tc.ConnectionState().HandshakeComplete)
		assert.True(t, res.Plaintext)
		defer res.Conn.Close()
		assert.True(t, res.Before.Has("mechanisms"), "before: %v", res.Before.List())
		// The plaintext stream goes on: a ping before authentication is
		// answered (with an error: not authorized), which shows the stream
		// is alive.
		_, err = io.WriteString(res.Conn, "<iq type='get' id='ping1'><ping xmlns='urn:xmpp:ping'/></iq>")
		require.NoError(t, err)
		dec := xml.NewDecoder(res.Conn)
		s := nextStart(t, dec)
		t.Logf("plaintext stream answered a ping with <%s>", s.Name.Local)
	})
}
