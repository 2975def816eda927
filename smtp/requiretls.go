package smtp

import (
	"fmt"

	"github.com/tlsup/tlsup/starttls"
)

// RequireTLSExtension checks, after an upgrade, that the server offers
// REQUIRETLS (RFC 8689, Section 3), as a client relaying a message sent
// with MAIL FROM ... REQUIRETLS must before it sends that message on. The
// extension is advertised only inside TLS, so only res.After counts;
// whatever was advertised before TLS is ignored.
//
// It returns nil when the upgrade reached TLS and REQUIRETLS is in the
// fresh EHLO reply. Otherwise it returns a *starttls.Error at step
// starttls.StepRediscover matching starttls.ErrNotOffered, whose message
// names REQUIRETLS. The caller must then not send the message on this
// connection (RFC 8689, Section 4.2.1: bounce it, or try another MX).
//
// RFC 8689, Section 4.2.1 also asks that the server's certificate was
// authenticated by DANE or MTA-STS (or PKIX for the MX name): that is the
// TLS config's business (tlsconf.DANE, mtasts.Policy.TLSConfig), not
// checked here.
func RequireTLSExtension(res *starttls.Result) error {
	protocol := "smtp"
	if res != nil && res.Protocol != "" {
		protocol = res.Protocol
	}
	fail := func(why string) error {
		return &starttls.Error{Protocol: protocol, Step: starttls.StepRediscover, Kind: starttls.ErrNotOffered,
			Err: fmt.Errorf("REQUIRETLS (RFC 8689) %s", why)}
	}
	switch {
	case res == nil || !res.TLS || res.Plaintext:
		return fail("needs TLS, and the session has none")
	case res.After == nil || !res.After.Has("REQUIRETLS"):
		return fail("is not advertised after TLS")
	}
	return nil
}
