package tlsrpt_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/smtp/dane"
	"github.com/tlsup/tlsup/smtp/mtasts"
	"github.com/tlsup/tlsup/smtp/tlsrpt"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

const greet = `
S: 220 mx.example.test ESMTP ready
C: EHLO localhost
S: 250-mx.example.test
S: 250 STARTTLS
C: STARTTLS
S: 220 go ahead
`

// RFC 8460, Section 4.3.1: negotiation failures, from real upgrades
// against a scripted server.
func TestClassifyUpgrade(t *testing.T) {
	pki := scripttest.NewPKI(t)
	expired, err := pki.CA.IssueLeaf(tlsconf.Leaf{Names: []string{scripttest.TestName}, NotAfter: time.Now().Add(-time.Minute)})
	require.NoError(t, err)
	other, err := pki.CA.Issue("other.example.test")
	require.NoError(t, err)
	selfSigned, err := tlsconf.SelfSigned(scripttest.TestName)
	require.NoError(t, err)
	// A TLS 1.3 server that wants a client certificate refuses the
	// client only after the client's handshake has completed: the alert
	// comes with the first read, the EHLO reply inside TLS.
	wantsClientCert := pki.Server()
	wantsClientCert.MinVersion = tls.VersionTLS13
	wantsClientCert.ClientAuth = tls.RequireAnyClientCert
	// A TLS 1.2-only client config makes a TLS 1.3-only server alert
	// during the handshake.
	tls12Only := pki.Client(scripttest.TestName)
	tls12Only.MaxVersion = tls.VersionTLS12
	tls13Only := pki.Server()
	tls13Only.MinVersion = tls.VersionTLS13

	tests := []struct {
		name       string
		script     string
		server     *tls.Config
		client     *tls.Config
		wantType   tlsrpt.ResultType
		wantReason string
	}{
		{"success", greet + "!tls\nC: EHLO localhost\nS: 250 mx.example.test\n", pki.Server(), nil, "", ""},
		{"not offered", "S: 220 mx.example.test ESMTP\nC: EHLO localhost\nS: 250 mx.example.test\n", nil, nil, tlsrpt.StartTLSNotSupported, ""},
		{"refused 454", "S: 220 mx.example.test ESMTP\nC: EHLO localhost\nS: 250-mx.example.test\nS: 250 STARTTLS\nC: STARTTLS\nS: 454 4.7.0 TLS not available\n", nil, nil, tlsrpt.StartTLSNotSupported, "starttls-reply-454"},
		{"ehlo refused", "S: 220 mx.example.test ESMTP\nC: EHLO localhost\nS: 502 no\n", nil, nil, tlsrpt.StartTLSNotSupported, ""},
		{"host mismatch", greet + "!tls\n", scripttest.ServerWith(other), nil, tlsrpt.CertificateHostMismatch, ""},
		{"expired", greet + "!tls\n", scripttest.ServerWith(expired), nil, tlsrpt.CertificateExpired, ""},
		{"not trusted", greet + "!tls\n", scripttest.ServerWith(selfSigned), nil, tlsrpt.CertificateNotTrusted, ""},
		{"alert during handshake", greet + "!tls\n", tls13Only, tls12Only, tlsrpt.ValidationFailure, "tls-alert-protocol-version-not-supported"},
		{"tls 1.3 alert on the first read", greet + "!tls\n!hold\n", wantsClientCert, nil, tlsrpt.ValidationFailure, "tls-alert-certificate-required"},
		{"hang-up in the handshake", greet + "!close\n", nil, nil, tlsrpt.ValidationFailure, "handshake-closed"},
		{"silence in the handshake", greet + "!hold\n", nil, nil, tlsrpt.ValidationFailure, "handshake-timeout"},
		{"injected data", "S: 220 mx.example.test ESMTP\nC: EHLO localhost\nS: 250-mx.example.test\nS: 250 STARTTLS\nC: STARTTLS\nS: 220 go ahead\nS+ 250 injected\n!hold\n", nil, nil, tlsrpt.ValidationFailure, "injected-data"},
		{"greeting rejected: nothing about tls", "S: 554 go away\n", nil, nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, peer := scripttest.TCP(t, tt.script, &scripttest.Options{TLSConfig: tt.server})
			client := tt.client
			if client == nil {
				client = pki.Client(scripttest.TestName)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			tlsConn, res, err := smtp.Upgrade(ctx, conn, &smtp.Options{TLSConfig: client})
			if tlsConn != nil {
				tlsConn.Close()
			}
			rt, reason := tlsrpt.Classify(res, err)
			assert.Equal(t, tt.wantType, rt, "error: %v", err)
			assert.Equal(t, tt.wantReason, reason)
			d := tlsrpt.Details(tlsrpt.Session{MXHost: "mx.example.test", Result: res, Err: err,
				RemoteIP: netip.MustParseAddr("127.0.0.1"), LocalIP: netip.MustParseAddr("::ffff:127.0.0.1")})
			if tt.wantType == "" {
				assert.Nil(t, d)
			} else {
				require.NotNil(t, d)
				assert.Equal(t, tt.wantType, d.ResultType)
				assert.Equal(t, "127.0.0.1", d.SendingMTAIP)
			}
			conn.Close()
			_ = peer.Wait()
		})
	}
}

// RFC 8460, Section 4.3.2: policy failures, from the policy steps' errors.
func TestClassifyPolicy(t *testing.T) {
	_, _, noUsable := tlsconf.DANE("mx.example.test", []tlsconf.TLSA{{Usage: 1, Selector: 1, MatchingType: 1, Data: make([]byte, 32)}}, nil)
	tests := []struct {
		name       string
		err        error
		wantType   tlsrpt.ResultType
		wantReason string
	}{
		{"servfail", &dane.LookupError{Name: "_25._tcp.mx.", Type: "TLSA", Reason: "servfail"}, tlsrpt.DNSSECInvalid, "dns-servfail"},
		{"timeout", &dane.LookupError{Name: "mx.", Type: "A", Reason: "timeout"}, tlsrpt.DNSSECInvalid, "dns-timeout"},
		{"no usable tlsa", noUsable, tlsrpt.TLSAInvalid, "no-usable-tlsa"},
		{"dane mismatch", &tlsconf.DANEError{Failures: []tlsconf.RecordFailure{{Err: errors.New("certificate does not match")}}}, tlsrpt.TLSAInvalid, "no-tlsa-match"},
		{"sts fetch", fmt.Errorf("%w: HTTP status 404", mtasts.ErrFetch), tlsrpt.STSPolicyFetchError, ""},
		{"sts invalid", fmt.Errorf("%w: no mode", mtasts.ErrInvalid), tlsrpt.STSPolicyInvalid, ""},
		{"sts webpki", fmt.Errorf("%w: %w", mtasts.ErrWebPKI, &tls.CertificateVerificationError{}), tlsrpt.STSWebPKIInvalid, "certificate-not-trusted"},
		{"sts mx mismatch", fmt.Errorf("%w: x", mtasts.ErrMXMismatch), tlsrpt.ValidationFailure, "mx-not-in-policy"},
		{"dial failure", &starttls.Error{Protocol: "smtp", Step: starttls.StepConnect, Err: errors.New("connection refused")}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt, reason := tlsrpt.Classify(nil, tt.err)
			assert.Equal(t, tt.wantType, rt)
			assert.Equal(t, tt.wantReason, reason)
		})
	}
}

func TestDetailsJSON(t *testing.T) {
	res := &starttls.Result{Greeting: "mx1.example.test ESMTP\x1b[31m"}
	err := &starttls.Error{Protocol: "smtp", Step: starttls.StepStartTLS, Kind: starttls.ErrNotOffered}
	d := tlsrpt.Details(tlsrpt.Session{MXHost: "mx1.example.test", RemoteIP: netip.MustParseAddr("192.0.2.1"), Result: res, Err: err})
	b, jerr := json.Marshal(d)
	require.NoError(t, jerr)
	// RFC 8460, Section 4.4: the member names.
	assert.JSONEq(t, `{
		"result-type": "starttls-not-supported",
		"receiving-mx-hostname": "mx1.example.test",
		"receiving-mx-helo": "mx1.example.test",
		"receiving-ip": "192.0.2.1",
		"failed-session-count": 1,
		"additional-information": "smtp: starttls: not offered"
	}`, string(b))
	p := tlsrpt.Policy{Type: tlsrpt.PolicySTS, String: []string{"version: STSv1", "mode: testing"}, Domain: "example.test", MXHost: []string{"*.example.test"}}
	b, jerr = json.Marshal(p)
	require.NoError(t, jerr)
	assert.JSONEq(t, `{"policy-type":"sts","policy-string":["version: STSv1","mode: testing"],"policy-domain":"example.test","mx-host":["*.example.test"]}`, string(b))
}

func TestPolicyObjects(t *testing.T) {
	sts, err := mtasts.Parse("version: STSv1\r\nmode: enforce\r\nmx: *.example.test\r\nmax_age: 86400\r\n")
	require.NoError(t, err)
	p := tlsrpt.STSPolicy("example.test", sts)
	assert.Equal(t, tlsrpt.Policy{Type: tlsrpt.PolicySTS, Domain: "example.test", MXHost: []string{"*.example.test"},
		String: []string{"version: STSv1", "mode: enforce", "mx: *.example.test", "max_age: 86400"}}, p)
	records := []tlsconf.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: []byte{0xab}}}
	p = tlsrpt.TLSAPolicy("example.test", "mx.example.test", records)
	assert.Equal(t, tlsrpt.Policy{Type: tlsrpt.PolicyTLSA, Domain: "example.test", MXHost: []string{"mx.example.test"},
		String: []string{"3 1 1 ab"}}, p)
	b, err := json.Marshal(tlsrpt.NoPolicy("example.test"))
	require.NoError(t, err)
	assert.JSONEq(t, `{"policy-type":"no-policy-found","policy-domain":"example.test"}`, string(b))
}

func ExampleClassify() {
	err := &starttls.Error{Protocol: "smtp", Step: starttls.StepStartTLS, Kind: starttls.ErrRefused,
		Err: &starttls.ReplyError{Protocol: "smtp", Command: "STARTTLS", Code: 454, Text: "4.7.0 TLS not available"}}
	rt, reason := tlsrpt.Classify(nil, err)
	fmt.Println(rt, reason)
	// Output:
	// starttls-not-supported starttls-reply-454
}
