// Package tlsrpt turns the outcome of an SMTP TLS upgrade, and of the DANE
// and MTA-STS policy steps around it, into the result types and the
// failure-details JSON of SMTP TLS Reporting (RFC 8460, Section 4). It
// classifies one session; aggregating sessions into a daily report and
// sending it are left to the caller.
//
// The classification follows the error chain, so it works on the errors of
// smtp.Upgrade and smtp.Dial (*starttls.Error), of tlsconf.DANE,
// smtp/dane and smtp/mtasts. A TLS alert that the server sends on the first
// read after the handshake (in TLS 1.3 the client's handshake ends before
// the server has checked everything, so a refusal arrives with the reply to
// the EHLO inside TLS) counts as a handshake failure, not a protocol error.
package tlsrpt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/tlsup/tlsup/smtp/dane"
	"github.com/tlsup/tlsup/smtp/mtasts"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// PolicyType is the kind of policy a session was held to (RFC 8460,
// Section 4.4, "policy-type").
type PolicyType string

// The policy types.
const (
	PolicyTLSA     PolicyType = "tlsa"            // DANE TLSA records
	PolicySTS      PolicyType = "sts"             // an MTA-STS policy
	PolicyNotFound PolicyType = "no-policy-found" // neither: the domain publishes no policy
)

// ResultType is an RFC 8460 result type (Section 4.3; IANA "STARTTLS
// Validation Result Types").
type ResultType string

// The result types. Success is the empty string: nothing to report.
const (
	// Negotiation failures (RFC 8460, Section 4.3.1).
	StartTLSNotSupported    ResultType = "starttls-not-supported"    // the MX offered no STARTTLS
	CertificateHostMismatch ResultType = "certificate-host-mismatch" // the certificate does not carry the name required
	CertificateExpired      ResultType = "certificate-expired"       // the certificate is expired
	CertificateNotTrusted   ResultType = "certificate-not-trusted"   // the chain does not lead to a trusted root
	ValidationFailure       ResultType = "validation-failure"        // any other negotiation failure
	// DANE policy failures (Section 4.3.2.1).
	TLSAInvalid   ResultType = "tlsa-invalid"   // no TLSA record matched, or none was usable
	DNSSECInvalid ResultType = "dnssec-invalid" // a DNS lookup failed or its answer was not valid
	DANERequired  ResultType = "dane-required"  // DANE is required locally, and the MX has no TLSA records
	// MTA-STS policy failures (Section 4.3.2.2).
	STSPolicyFetchError ResultType = "sts-policy-fetch-error" // the policy could not be fetched
	STSPolicyInvalid    ResultType = "sts-policy-invalid"     // the policy fetched is invalid
	STSWebPKIInvalid    ResultType = "sts-webpki-invalid"     // the policy host's certificate does not verify
)

// Classify returns the result type for a session that ended with err, and
// a failure reason code where one says more (RFC 8460, Section 4.4,
// "failure-reason-code"): "starttls-reply-454" for a refused STARTTLS,
// "tls-alert-<description>" for a TLS alert from the server,
// "handshake-timeout", "handshake-closed", "injected-data",
// "mx-not-in-policy", or the lookup failure ("dns-servfail",
// "dns-timeout"). It returns "", "" for a nil err and for failures that are
// not about TLS (a refused connection, a greeting rejected before
// anything TLS happened): nothing to report. res may be nil.
func Classify(res *starttls.Result, err error) (ResultType, string) {
	if err == nil {
		return "", ""
	}
	var step starttls.Step
	var upErr *starttls.Error
	if errors.As(err, &upErr) {
		step = upErr.Step
	}
	// Policy steps first: they name the cause best.
	var lookupErr *dane.LookupError
	switch {
	case errors.As(err, &lookupErr):
		return DNSSECInvalid, "dns-" + lookupErr.Reason
	case errors.Is(err, tlsconf.ErrNoUsableRecords):
		return TLSAInvalid, "no-usable-tlsa"
	case errors.Is(err, mtasts.ErrWebPKI):
		return STSWebPKIInvalid, certReason(err)
	case errors.Is(err, mtasts.ErrInvalid):
		return STSPolicyInvalid, ""
	case errors.Is(err, mtasts.ErrFetch):
		return STSPolicyFetchError, ""
	case errors.Is(err, mtasts.ErrMXMismatch):
		return ValidationFailure, "mx-not-in-policy"
	}
	if rt, reason := classifyCertificate(err); rt != "" {
		return rt, reason
	}
	if errors.Is(err, tlsconf.ErrDANEMismatch) {
		return TLSAInvalid, "no-tlsa-match"
	}
	if alert := remoteAlert(err); alert != "" && (step == starttls.StepHandshake || step == starttls.StepRediscover) {
		// RFC 8460, Section 4.3.1: the server refused the handshake; in
		// TLS 1.3 that may show only on the first read inside TLS.
		return ValidationFailure, alert
	}
	switch {
	case errors.Is(err, starttls.ErrNotOffered):
		return StartTLSNotSupported, ""
	case errors.Is(err, starttls.ErrRefused) && (step == starttls.StepStartTLS || step == starttls.StepDiscover):
		var reply *starttls.ReplyError
		if errors.As(err, &reply) && reply.Code != 0 {
			return StartTLSNotSupported, "starttls-reply-" + strconv.Itoa(reply.Code)
		}
		return StartTLSNotSupported, ""
	case errors.Is(err, starttls.ErrInjectedData):
		return ValidationFailure, "injected-data"
	case step == starttls.StepHandshake:
		switch {
		case isTimeout(err):
			return ValidationFailure, "handshake-timeout"
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed), isReset(err):
			return ValidationFailure, "handshake-closed"
		}
		return ValidationFailure, ""
	}
	return "", ""
}

// classifyCertificate maps a certificate verification failure, PKIX or
// DANE-TA, to its result type.
func classifyCertificate(err error) (ResultType, string) {
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	var unknown x509.UnknownAuthorityError
	var verr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &host):
		return CertificateHostMismatch, ""
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return CertificateExpired, ""
	case errors.As(err, &unknown):
		return CertificateNotTrusted, ""
	case errors.As(err, &invalid):
		return ValidationFailure, "x509-invalid-" + strconv.Itoa(int(invalid.Reason))
	case errors.As(err, &verr):
		return CertificateNotTrusted, ""
	}
	return "", ""
}

func certReason(err error) string {
	rt, _ := classifyCertificate(err)
	return string(rt)
}

// remoteAlert returns "tls-alert-<description>" for an alert the peer
// sent, "" otherwise. crypto/tls reports one as a *net.OpError whose Op is
// "remote error".
func remoteAlert(err error) string {
	var alert tls.AlertError
	if errors.As(err, &alert) {
		return alertReason(alert.Error())
	}
	var op *net.OpError
	for e := err; errors.As(e, &op); e = op.Err {
		if op.Op == "remote error" && op.Err != nil {
			return alertReason(op.Err.Error())
		}
		if op.Err == nil {
			break
		}
	}
	return ""
}

func alertReason(text string) string {
	text = strings.TrimPrefix(text, "tls: ")
	var b strings.Builder
	b.WriteString("tls-alert-")
	for _, r := range text {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + 'a' - 'A')
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && strings.Contains(op.Error(), "connection reset")
}
