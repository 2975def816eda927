package smtp_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
)

// RFC 8689, Section 4.2.1: REQUIRETLS must be advertised inside TLS.
func TestRequireTLSExtension(t *testing.T) {
	pki := scripttest.NewPKI(t)
	tests := []struct {
		name    string
		before  string // EHLO lines before TLS, after the domain line
		after   string // and inside TLS
		wantErr bool
	}{
		{"after tls", "250 STARTTLS", "250 REQUIRETLS", false},
		{"lower case", "250 STARTTLS", "250 requiretls", false},
		{"missing", "250 STARTTLS", "250 SIZE 1000", true},
		{"only before tls", "250-REQUIRETLS\nS: 250 STARTTLS", "250 SIZE 1000", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script := "S: 220 mx.example.test ESMTP\nC: EHLO localhost\nS: 250-mx.example.test\nS: " + tt.before +
				"\nC: STARTTLS\nS: 220 go ahead\n!tls\nC: EHLO localhost\nS: 250-mx.example.test\nS: " + tt.after + "\n"
			conn, peer := scripttest.TCP(t, script, &scripttest.Options{TLSConfig: pki.Server()})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			tlsConn, res, err := smtp.Upgrade(ctx, conn, &smtp.Options{TLSConfig: pki.Client(scripttest.TestName)})
			require.NoError(t, err)
			defer tlsConn.Close()
			err = smtp.RequireTLSExtension(res)
			if !tt.wantErr {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, starttls.ErrNotOffered)
				var e *starttls.Error
				require.ErrorAs(t, err, &e)
				assert.Equal(t, starttls.StepRediscover, e.Step)
				assert.Contains(t, err.Error(), "REQUIRETLS")
			}
			tlsConn.Close()
			require.NoError(t, peer.Wait())
		})
	}
	err := smtp.RequireTLSExtension(&starttls.Result{Plaintext: true, Before: starttls.NewCapabilities("REQUIRETLS")})
	require.ErrorIs(t, err, starttls.ErrNotOffered, "plaintext never satisfies REQUIRETLS")
	require.ErrorIs(t, smtp.RequireTLSExtension(nil), starttls.ErrNotOffered)
}

func ExampleRequireTLSExtension() {
	// After smtp.Upgrade or smtp.Dial: the EHLO reply inside TLS.
	res := &starttls.Result{Protocol: "smtp", TLS: true, After: starttls.NewCapabilities("PIPELINING", "SIZE 10240000")}
	if err := smtp.RequireTLSExtension(res); err != nil {
		fmt.Println(err)
	}
	// Output:
	// smtp: rediscover: not offered: REQUIRETLS (RFC 8689) is not advertised after TLS
}
