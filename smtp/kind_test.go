package smtp_test

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
)

// TestServerQuitKind: a client's QUIT before TLS is ErrQuit, in Kind and
// with errors.Is alike, and not a protocol error.
func TestServerQuitKind(t *testing.T) {
	pki := scripttest.NewPKI(t)
	conn, peer := scripttest.Pipe(t, `
		S: 220 mx.example.test ESMTP ready
		C: QUIT
		S: 221 2.0.0 mx.example.test closing connection
	`, &scripttest.Options{Role: scripttest.Client})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv := &smtp.Server{Options: starttls.ServerOptions{TLSConfig: pki.Server(), Hostname: "mx.example.test"}}
	_, err := srv.Serve(ctx, conn)
	require.ErrorIs(t, err, starttls.ErrQuit)
	require.False(t, errors.Is(err, starttls.ErrProtocol))
	var e *starttls.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, starttls.ErrQuit, e.Kind)
	require.NoError(t, peer.Wait())
}

// TestServerKinds: every way a front ends has a Kind that errors.Is
// agrees with.
func TestServerKinds(t *testing.T) {
	pki := scripttest.NewPKI(t)
	tests := []struct {
		name   string
		script string
		opts   starttls.ServerOptions
		want   error
	}{
		{"idle", "S: 220 mx.example.test ESMTP ready\n!hold\n",
			starttls.ServerOptions{TLSConfig: pki.Server(), Hostname: "mx.example.test", IdleTimeout: 50 * time.Millisecond}, os.ErrDeadlineExceeded},
		{"hang-up", "S: 220 mx.example.test ESMTP ready\n!close\n",
			starttls.ServerOptions{TLSConfig: pki.Server(), Hostname: "mx.example.test"}, io.ErrUnexpectedEOF},
		{"no tls config", "!hold\n", starttls.ServerOptions{}, starttls.ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, _ := scripttest.Pipe(t, tt.script, &scripttest.Options{Role: scripttest.Client})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := (&smtp.Server{Options: tt.opts}).Serve(ctx, conn)
			require.ErrorIs(t, err, tt.want)
			var e *starttls.Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, tt.want, e.Kind)
		})
	}
}
