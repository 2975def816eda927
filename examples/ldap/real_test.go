package ldap

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
	for _, n := range append(names, "TLSUP_CA") {
		v := os.Getenv(n)
		require.NotEmpty(t, v, "%s not set", n)
		env[n] = v
	}
	return env
}

// ldapResult reads one LDAPMessage and returns its message ID, operation
// tag, and for a response its resultCode, plus the operation's contents.
func ldapResult(t *testing.T, r io.Reader) (id int, op byte, code int, contents []byte) {
	t.Helper()
	msg, err := readElement(r, 1<<20)
	require.NoError(t, err)
	require.Equal(t, byte(tagSequence), msg.tag)
	s := &sliceReader{b: msg.contents}
	idBytes, err := s.expect(tagInteger, "messageID")
	require.NoError(t, err)
	id, err = parseInt(idBytes, "messageID")
	require.NoError(t, err)
	e, err := s.next()
	require.NoError(t, err)
	code = -1
	if e.tag != 0x64 { // all but SearchResultEntry start with an LDAPResult
		inner := &sliceReader{b: e.contents}
		c, err := inner.expect(tagEnumerated, "resultCode")
		require.NoError(t, err)
		code, err = parseInt(c, "resultCode")
		require.NoError(t, err)
	}
	return id, e.tag, code, e.contents
}

// ldapSession speaks what follows the upgrade, BER by hand: a simple bind
// (skipped when dn is ""), then a base search of base; it returns the DN
// of the entry found.
func ldapSession(t *testing.T, conn io.ReadWriter, dn, password, base string) string {
	t.Helper()
	if dn != "" {
		bind := appendElement(nil, 0x60, // [APPLICATION 0] BindRequest
			appendInt(nil, tagInteger, 3),
			appendElement(nil, tagOctetString, []byte(dn)),
			appendElement(nil, 0x80, []byte(password))) // [0] simple
		_, err := conn.Write(appendElement(nil, tagSequence, appendInt(nil, tagInteger, 2), bind))
		require.NoError(t, err)
		id, op, code, _ := ldapResult(t, conn)
		require.Equal(t, 2, id)
		require.Equal(t, byte(0x61), op, "BindResponse")
		require.Equal(t, 0, code, "bind result")
	}
	search := appendElement(nil, 0x63, // [APPLICATION 3] SearchRequest
		appendElement(nil, tagOctetString, []byte(base)),
		appendInt(nil, tagEnumerated, 0), // baseObject
		appendInt(nil, tagEnumerated, 0), // neverDerefAliases
		appendInt(nil, tagInteger, 0),
		appendInt(nil, tagInteger, 10),
		appendElement(nil, 0x01, []byte{0}),             // typesOnly FALSE
		appendElement(nil, 0x87, []byte("objectClass")), // (objectClass=*)
		appendElement(nil, tagSequence))                 // all attributes
	_, err := conn.Write(appendElement(nil, tagSequence, appendInt(nil, tagInteger, 3), search))
	require.NoError(t, err)
	found := ""
	for i := 0; i < 10; i++ {
		id, op, code, contents := ldapResult(t, conn)
		require.Equal(t, 3, id)
		switch op {
		case 0x64: // SearchResultEntry
			s := &sliceReader{b: contents}
			name, err := s.expect(tagOctetString, "objectName")
			require.NoError(t, err)
			found = string(name)
		case 0x65: // SearchResultDone
			require.Equal(t, 0, code, "search result")
			conn.Write(appendElement(nil, tagSequence, appendInt(nil, tagInteger, 4), []byte{0x42, 0x00})) // unbind
			return found
		default:
			t.Fatalf("operation %#02x in answer to the search", op)
		}
	}
	t.Fatal("no SearchResultDone")
	return ""
}

func TestRealLDAP(t *testing.T) {
	env := realEnv(t, "TLSUP_LDAP_ADDR", "TLSUP_LDAPS_ADDR", "TLSUP_LDAP_NOTLS_ADDR",
		"TLSUP_LDAP_BASE", "TLSUP_LDAP_BINDDN", "TLSUP_LDAP_BINDPW")
	roots, err := tlsconf.LoadRoots(env["TLSUP_CA"])
	require.NoError(t, err)
	t.Logf("slapd %s", os.Getenv("TLSUP_SLAPD_VERSION"))
	dial := func(t *testing.T, addr string, opts *Options) (*tls.Conn, *starttls.Result, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		t.Cleanup(cancel)
		return Dial(ctx, "tcp", addr, opts)
	}
	session := func(t *testing.T, conn io.ReadWriter) {
		assert.Equal(t, env["TLSUP_LDAP_BASE"], ldapSession(t, conn, env["TLSUP_LDAP_BINDDN"], env["TLSUP_LDAP_BINDPW"], env["TLSUP_LDAP_BASE"]))
	}

	cases := []struct {
		addr string
		mode starttls.Mode
		want starttls.Mode
	}{
		{env["TLSUP_LDAP_ADDR"], starttls.Auto, starttls.StartTLS},
		{env["TLSUP_LDAP_ADDR"], starttls.StartTLS, starttls.StartTLS},
		{env["TLSUP_LDAPS_ADDR"], starttls.Auto, starttls.Implicit},
		{env["TLSUP_LDAPS_ADDR"], starttls.Implicit, starttls.Implicit},
	}
	for _, c := range cases {
		for _, policy := range []starttls.Policy{starttls.Required, starttls.Always, starttls.Opportunistic} {
			t.Run(fmt.Sprintf("%s %s %s", c.addr, c.mode, policy), func(t *testing.T) {
				tc, res, err := dial(t, c.addr, &Options{TLSConfig: tlsconf.Client("ldap.tlsup.test", roots), Policy: policy, Mode: c.mode})
				require.NoError(t, err)
				defer tc.Close()
				assert.True(t, res.TLS)
				assert.Equal(t, c.want, res.Mode)
				assert.Zero(t, res.After.Len())
				session(t, res.Conn)
			})
		}
	}
	for _, addr := range []string{env["TLSUP_LDAP_ADDR"], env["TLSUP_LDAPS_ADDR"]} {
		t.Run("wrong CA "+addr, func(t *testing.T) {
			other := scripttest.NewPKI(t)
			_, res, err := dial(t, addr, &Options{TLSConfig: other.Client("ldap.tlsup.test")})
			require.ErrorIs(t, err, starttls.ErrHandshake)
			var cerr *tls.CertificateVerificationError
			require.ErrorAs(t, err, &cerr)
			assert.False(t, res.TLS)
		})
	}
	t.Run("verified by address", func(t *testing.T) {
		tc, res, err := dial(t, env["TLSUP_LDAP_ADDR"], nil)
		if err == nil {
			tc.Close()
		}
		// System roots do not hold the throwaway CA.
		var cerr *tls.CertificateVerificationError
		require.ErrorAs(t, err, &cerr)
		assert.False(t, res.TLS)
		tc, res, err = dial(t, env["TLSUP_LDAP_ADDR"], &Options{TLSConfig: tlsconf.Client("", roots)})
		require.NoError(t, err)
		tc.Close()
		assert.True(t, res.TLS)
	})
	for _, policy := range []starttls.Policy{starttls.Required, starttls.Always} {
		t.Run("no TLS, "+policy.String(), func(t *testing.T) {
			_, res, err := dial(t, env["TLSUP_LDAP_NOTLS_ADDR"], &Options{TLSConfig: tlsconf.Client("ldap.tlsup.test", roots), Policy: policy})
			require.ErrorIs(t, err, starttls.ErrNotOffered)
			var reply *starttls.ReplyError
			require.ErrorAs(t, err, &reply)
			assert.Equal(t, 2, reply.Code, "protocolError")
			t.Logf("slapd without TLS: %v", err)
			assert.False(t, res.TLS)
		})
	}
	t.Run("no TLS, opportunistic", func(t *testing.T) {
		tc, res, err := dial(t, env["TLSUP_LDAP_NOTLS_ADDR"], &Options{TLSConfig: tlsconf.Client("ldap.tlsup.test", roots), Policy: starttls.Opportunistic})
		require.NoError(t, err)
		require.NotNil(t, tc, "a placeholder, safe to close")
		assert.False(t, tc.ConnectionState().HandshakeComplete)
		assert.True(t, res.Plaintext)
		defer res.Conn.Close()
		// Anonymous: no password in the clear.
		assert.Equal(t, env["TLSUP_LDAP_BASE"], ldapSession(t, res.Conn, "", "", env["TLSUP_LDAP_BASE"]))
	})
}
