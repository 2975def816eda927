package smtp_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
)

func TestPositiveControl(t *testing.T) {
	pki := scripttest.NewPKI(t)
	conn, peer := scripttest.Pipe(t, `
		S: 220 mx.example.test ESMTP ready
		C: EHLO localhost
		S: 250-mx.example.test
		S: 250-PIPELINING
		S: 250-SIZE 10240000
		S: 250 STARTTLS
		C: STARTTLS
		S: 220 2.0.0 Ready to start TLS
		!tls
		C: EHLO localhost
		S: 250-mx.example.test
		S: 250-SIZE 52428800
		S: 250 AUTH PLAIN LOGIN
	`, &scripttest.Options{TLSConfig: pki.Server()})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tc, res, err := smtp.Upgrade(ctx, conn, &smtp.Options{TLSConfig: pki.Client(scripttest.TestName)})
	require.NoError(t, err)
	require.NotNil(t, tc)
	require.NoError(t, peer.Wait())
	assert.True(t, res.TLS)
	assert.Equal(t, "mx.example.test ESMTP ready", res.Greeting)
	assert.Equal(t, []string{"PIPELINING", "SIZE 10240000", "STARTTLS"}, res.Before.List())
	assert.Equal(t, []string{"SIZE 52428800", "AUTH PLAIN LOGIN"}, res.After.List())
	assert.Equal(t, starttls.StartTLS, res.Mode)
	tc.Close()
}
