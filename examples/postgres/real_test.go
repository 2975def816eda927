package postgres_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/examples/postgres"
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

// pgMessage appends a typed message: type byte, length, body.
func pgMessage(kind byte, body []byte) []byte {
	msg := binary.BigEndian.AppendUint32([]byte{kind}, uint32(len(body)+4))
	return append(msg, body...)
}

// readPG reads one backend message (bounded).
func readPG(r io.Reader) (byte, []byte, error) {
	var head [5]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(head[1:])
	if n < 4 || n > 1<<20 {
		return 0, nil, fmt.Errorf("message %q of length %d", head[0], n)
	}
	body := make([]byte, n-4)
	_, err := io.ReadFull(r, body)
	return head[0], body, err
}

// pgSession speaks what follows the upgrade, by hand: the startup message
// (protocol 3.0), cleartext password authentication, then SELECT 1; it
// returns the value selected.
func pgSession(t *testing.T, conn io.ReadWriter, user, password string) string {
	t.Helper()
	var startup []byte
	startup = binary.BigEndian.AppendUint32(startup, 3<<16)
	for _, s := range []string{"user", user, "database", "postgres", "application_name", "tlsup-test"} {
		startup = append(append(startup, s...), 0)
	}
	startup = append(startup, 0)
	_, err := conn.Write(binary.BigEndian.AppendUint32(nil, uint32(len(startup)+4)))
	require.NoError(t, err)
	_, err = conn.Write(startup)
	require.NoError(t, err)
	for ready := false; !ready; {
		kind, body, err := readPG(conn)
		require.NoError(t, err)
		switch kind {
		case 'R':
			switch code := binary.BigEndian.Uint32(body); code {
			case 0: // AuthenticationOk
			case 3: // AuthenticationCleartextPassword
				_, err := conn.Write(pgMessage('p', append([]byte(password), 0)))
				require.NoError(t, err)
			default:
				t.Fatalf("authentication request %d, want cleartext (3) or ok (0)", code)
			}
		case 'E':
			fields, _ := postgres.ParseErrorFields(body)
			t.Fatalf("startup refused: %s", fields)
		case 'Z':
			ready = true
		}
	}
	_, err = conn.Write(pgMessage('Q', []byte("SELECT 1\x00")))
	require.NoError(t, err)
	value := ""
	for {
		kind, body, err := readPG(conn)
		require.NoError(t, err)
		switch kind {
		case 'D':
			require.GreaterOrEqual(t, len(body), 6)
			require.Equal(t, uint16(1), binary.BigEndian.Uint16(body))
			n := binary.BigEndian.Uint32(body[2:])
			value = string(body[6 : 6+n])
		case 'E':
			fields, _ := postgres.ParseErrorFields(body)
			t.Fatalf("query refused: %s", fields)
		case 'Z':
			conn.Write(pgMessage('X', nil))
			return value
		}
	}
}

func TestRealPostgres(t *testing.T) {
	env := realEnv(t, "TLSUP_PG_ADDR", "TLSUP_PG_NOTLS_ADDR")
	roots, err := tlsconf.LoadRoots(env["TLSUP_CA"])
	require.NoError(t, err)
	t.Logf("PostgreSQL %s", os.Getenv("TLSUP_PG_VERSION"))
	dial := func(t *testing.T, addr string, opts *postgres.Options) (*tls.Conn, *starttls.Result, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		t.Cleanup(cancel)
		return postgres.Dial(ctx, "tcp", addr, opts)
	}

	for _, policy := range []starttls.Policy{starttls.Required, starttls.Always, starttls.Opportunistic} {
		for _, mode := range []starttls.Mode{starttls.Auto, starttls.StartTLS} {
			t.Run(fmt.Sprintf("ssl on, %s, %s", policy, mode), func(t *testing.T) {
				tc, res, err := dial(t, env["TLSUP_PG_ADDR"], &postgres.Options{
					TLSConfig: tlsconf.Client("db.tlsup.test", roots), Policy: policy, Mode: mode,
				})
				require.NoError(t, err)
				defer tc.Close()
				assert.True(t, res.TLS)
				assert.False(t, res.Plaintext)
				assert.Equal(t, starttls.StartTLS, res.Mode)
				assert.True(t, res.State.HandshakeComplete)
				assert.Equal(t, "1", pgSession(t, res.Conn, env["TLSUP_USER"], env["TLSUP_PASSWORD"]))
			})
		}
	}
	t.Run("verified by address", func(t *testing.T) {
		tc, res, err := dial(t, env["TLSUP_PG_ADDR"], &postgres.Options{TLSConfig: tlsconf.Client("", roots)})
		require.NoError(t, err)
		tc.Close()
		assert.True(t, res.TLS)
	})
	t.Run("implicit: PostgreSQL 15 has no direct TLS", func(t *testing.T) {
		_, res, err := dial(t, env["TLSUP_PG_ADDR"], &postgres.Options{TLSConfig: tlsconf.Client("db.tlsup.test", roots), Mode: starttls.Implicit})
		require.ErrorIs(t, err, starttls.ErrHandshake)
		assert.False(t, res.TLS)
	})
	t.Run("wrong CA", func(t *testing.T) {
		other := scripttest.NewPKI(t)
		_, res, err := dial(t, env["TLSUP_PG_ADDR"], &postgres.Options{TLSConfig: other.Client("db.tlsup.test")})
		require.ErrorIs(t, err, starttls.ErrHandshake)
		var cerr *tls.CertificateVerificationError
		require.ErrorAs(t, err, &cerr)
		assert.False(t, res.TLS)
	})
	t.Run("wrong name", func(t *testing.T) {
		_, _, err := dial(t, env["TLSUP_PG_ADDR"], &postgres.Options{TLSConfig: tlsconf.Client("other.tlsup.test", roots)})
		var cerr *tls.CertificateVerificationError
		require.ErrorAs(t, err, &cerr)
	})
	for _, policy := range []starttls.Policy{starttls.Required, starttls.Always} {
		t.Run("ssl off, "+policy.String(), func(t *testing.T) {
			_, res, err := dial(t, env["TLSUP_PG_NOTLS_ADDR"], &postgres.Options{TLSConfig: tlsconf.Client("db.tlsup.test", roots), Policy: policy})
			require.ErrorIs(t, err, starttls.ErrNotOffered)
			assert.False(t, res.TLS)
			assert.False(t, res.Plaintext)
		})
	}
	t.Run("ssl off, opportunistic", func(t *testing.T) {
		tc, res, err := dial(t, env["TLSUP_PG_NOTLS_ADDR"], &postgres.Options{TLSConfig: tlsconf.Client("db.tlsup.test", roots), Policy: starttls.Opportunistic})
		require.NoError(t, err)
		require.NotNil(t, tc, "a placeholder, safe to close")
		assert.False(t, tc.ConnectionState().HandshakeComplete)
		assert.True(t, res.Plaintext)
		assert.False(t, res.TLS)
		defer res.Conn.Close()
		assert.Equal(t, "1", pgSession(t, res.Conn, env["TLSUP_USER"], env["TLSUP_PASSWORD"]))
	})
}
