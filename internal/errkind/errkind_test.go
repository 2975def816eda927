package errkind_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/errkind"
	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/starttls"
)

func TestKind(t *testing.T) {
	certErr := &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{&starttls.Error{Step: starttls.StepDiscover, Kind: starttls.ErrNotOffered}, "not-offered"},
		{&starttls.Error{Step: starttls.StepStartTLS, Err: &starttls.ReplyError{Code: 454}}, "refused"},
		{&starttls.Error{Step: starttls.StepStartTLS, Kind: starttls.ErrInjectedData}, "injected-data"},
		{&starttls.Error{Step: starttls.StepGreeting, Err: fmt.Errorf("x: %w", starttls.ErrPreauth)}, "preauth"},
		{&starttls.Error{Step: starttls.StepGreeting, Err: &starttls.ReplyError{Code: 421, Kind: starttls.ErrGreetingRejected}}, "greeting-rejected"},
		{&starttls.Error{Step: starttls.StepStartTLS, Err: starttls.NewProtocolError("250 is not a go-ahead")}, "protocol"},
		{&starttls.Error{Step: starttls.StepDiscover, Err: fmt.Errorf("%w: line", starttls.ErrTooLarge)}, "too-large"},
		{&starttls.Error{Step: starttls.StepHandshake, Kind: starttls.ErrHandshake, Err: io.ErrUnexpectedEOF}, "handshake"},
		{&starttls.Error{Step: starttls.StepHandshake, Kind: starttls.ErrHandshake, Err: errors.New("tls: bad record MAC")}, "handshake"},
		{&starttls.Error{Step: starttls.StepHandshake, Kind: starttls.ErrHandshake, Err: certErr}, "certificate"},
		{&starttls.Error{Step: starttls.StepHandshake, Kind: starttls.ErrHandshake, Err: x509.CertificateInvalidError{Reason: x509.Expired}}, "certificate"},
		{&starttls.Error{Step: starttls.StepGreeting, Err: fmt.Errorf("%w: %w", context.DeadlineExceeded, os.ErrDeadlineExceeded)}, "timeout"},
		{&starttls.Error{Step: starttls.StepHandshake, Kind: starttls.ErrHandshake, Err: context.DeadlineExceeded}, "timeout"},
		{&starttls.Error{Step: starttls.StepGreeting, Err: context.Canceled}, "timeout"},
		{&starttls.Error{Step: starttls.StepGreeting, Err: os.ErrDeadlineExceeded}, "timeout"},
		{&starttls.Error{Step: starttls.StepGreeting, Err: io.ErrUnexpectedEOF}, "closed"},
		{&starttls.Error{Step: starttls.StepDiscover, Err: net.ErrClosed}, "closed"},
		{&starttls.Error{Step: starttls.StepDiscover, Err: &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}}, "closed"},
		{&starttls.Error{Step: starttls.StepConnect, Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, "dial"},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, "dial"},
	}
	for _, tt := range tests {
		name := tt.want
		if tt.err != nil {
			name += " " + tt.err.Error()
		}
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tt.want, errkind.Of(tt.err))
		})
	}
}

func TestIsCertificate(t *testing.T) {
	assert.True(t, errkind.IsCertificate(&tls.CertificateVerificationError{}))
	assert.True(t, errkind.IsCertificate(x509.UnknownAuthorityError{}))
	assert.True(t, errkind.IsCertificate(x509.CertificateInvalidError{Reason: x509.Expired}))
	assert.False(t, errkind.IsCertificate(starttls.ErrHandshake))
}

// TestKindAlertAfterHandshake: under TLS 1.3 a server that wants a client
// certificate rejects the handshake after the client's Handshake returned;
// the alert arrives on the client's first read, and is a handshake failure.
func TestKindAlertAfterHandshake(t *testing.T) {
	pki := scripttest.NewPKI(t)
	clientConn, serverConn := net.Pipe()
	defer clientConn.Close()
	scfg := pki.Server()
	scfg.ClientAuth = tls.RequireAnyClientCert
	scfg.MinVersion = tls.VersionTLS13
	srv := tls.Server(serverConn, scfg)
	done := make(chan error, 1)
	go func() {
		err := srv.Handshake()
		srv.Close()
		done <- err
	}()
	cli := tls.Client(clientConn, pki.Client(scripttest.TestName))
	require.NoError(t, cli.SetDeadline(time.Now().Add(10*time.Second)))
	require.NoError(t, cli.Handshake(), "the client's half of a TLS 1.3 handshake completes")
	_, err := cli.Read(make([]byte, 1))
	require.Error(t, err)
	assert.Equal(t, "handshake", errkind.Of(&starttls.Error{Step: starttls.StepRediscover, Err: err}), "%v", err)
	require.Error(t, <-done, "the server rejected the handshake")
}
