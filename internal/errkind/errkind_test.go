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

	"github.com/stretchr/testify/assert"

	"github.com/tlsup/tlsup/internal/errkind"
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
