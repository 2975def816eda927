// Package errkind classifies the errors of an upgrade into the short stable
// names of examples/tlsprobe's JSON ("not-offered", "timeout", ...). The names
// belong to the probe and to tests that check it; library callers branch on
// the starttls sentinels and error types instead.
package errkind

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"

	"github.com/tlsup/tlsup/starttls"
)

// Of returns the contract's short name for the class of err:
// "not-offered", "refused", "injected-data", "preauth",
// "greeting-rejected", "protocol", "too-large", "handshake", "certificate",
// "timeout", "closed", "dial", or "" for nil. The names belong to the
// probe's JSON; the library's callers branch on its sentinels instead.
func Of(err error) string {
	if err == nil {
		return ""
	}
	var e *starttls.Error
	step := starttls.Step("")
	if errors.As(err, &e) {
		step = e.Step
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, context.Canceled):
		return "timeout"
	case IsCertificate(err):
		return "certificate"
	case errors.Is(err, starttls.ErrInjectedData):
		return "injected-data"
	case errors.Is(err, starttls.ErrHandshake):
		return "handshake"
	case errors.Is(err, starttls.ErrNotOffered):
		return "not-offered"
	case errors.Is(err, starttls.ErrPreauth):
		return "preauth"
	case errors.Is(err, starttls.ErrGreetingRejected):
		return "greeting-rejected"
	case errors.Is(err, starttls.ErrTooLarge):
		return "too-large"
	case errors.Is(err, starttls.ErrRefused):
		return "refused"
	case errors.Is(err, starttls.ErrProtocol):
		return "protocol"
	case step == starttls.StepConnect:
		return "dial"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return "closed"
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		switch opErr.Op {
		case "dial":
			return "dial"
		case "remote error":
			// A TLS alert from the peer. Under TLS 1.3 the client's
			// handshake is done before the server has checked it, so
			// the server's verdict (a client certificate it wanted, a
			// version or extension it refused) arrives on the first
			// read inside TLS: a failure of the handshake, not a
			// hang-up.
			return "handshake"
		}
		return "closed"
	}
	return "protocol"
}

// IsCertificate reports whether err comes from certificate verification.
func IsCertificate(err error) bool {
	var verr *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &verr) || errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid)
}
