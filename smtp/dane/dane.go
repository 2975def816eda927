// Package dane finds the DANE policy of an SMTP server (RFC 7672): the
// DNSSEC status of its address and its TLSA records at _25._tcp.<mx>, over
// a DNS client built on golang.org/x/net/dns/dnsmessage that trusts the AD
// bit of one validating recursive resolver (see [Resolver] for the trust
// assumption). The verification itself is tlsconf.DANE; [Policy.TLSConfig]
// joins the two.
//
// The outcomes a sending MTA must tell apart (RFC 7672, Section 2.2):
//
//   - DANE applies ([Policy.DANE]): the address and TLSA answers are
//     secure and TLSA records exist. TLS is mandatory; with usable records
//     the certificate must match them, with none usable TLS stays mandatory
//     without authentication.
//   - No DANE: an insecure address or TLSA answer, or secure proof that no
//     TLSA record exists ([Policy.Reason] says which). Use MTA-STS or the
//     local policy.
//   - Defer: a lookup failed (SERVFAIL, a timeout, a malformed answer):
//     the error matches [ErrDefer]. Never deliver without DANE then: that
//     is the downgrade an attacker who can break DNS would want.
package dane

import (
	"context"
	"crypto/tls"
	"net/netip"
	"strings"

	"github.com/tlsup/tlsup/tlsconf"
)

// Policy is the DANE status of one MX host.
type Policy struct {
	// Host is the MX host name.
	Host string
	// BaseDomain is the TLSA base domain: the name whose TLSA records
	// apply, sent as SNI and carried by a DANE-TA certificate. It is Host,
	// or the name Host's CNAME chain ends at when the records were found
	// there (RFC 7672, Section 2.2.3); "" without DANE.
	BaseDomain string
	// Addrs are its addresses, from the address lookup made before TLSA.
	Addrs []netip.Addr
	// AddrsSecure reports whether the address answers were secure.
	AddrsSecure bool
	// DANE reports whether DANE applies: addresses and TLSA records
	// secure, and at least one TLSA record. Records may still all be
	// unusable (see Usable).
	DANE bool
	// Records are the TLSA records, as published; nil without DANE.
	Records []tlsconf.TLSA
	// Reason says why DANE does not apply: "address-insecure",
	// "tlsa-insecure" or "no-tlsa" (and, set by callers that skip the
	// lookup, "mx-insecure"); "" when it does.
	Reason string
}

// Usable returns the records SMTP can use (DANE-TA and DANE-EE, well
// formed).
func (p *Policy) Usable() []tlsconf.TLSA {
	var out []tlsconf.TLSA
	for _, r := range p.Records {
		if r.Usable() == nil {
			out = append(out, r)
		}
	}
	return out
}

// TLSConfig returns the tlsconf.DANE config for the policy's records, with
// BaseDomain as SNI and reference identifier, and Host as a further
// reference identifier when the two differ (RFC 7672, Section 3.2.2).
// opts may be nil; its Names are kept. It fails with
// tlsconf.ErrNoUsableRecords when no record is usable: the caller then
// requires TLS without authentication (tlsconf.Encrypt), as RFC 7672,
// Section 2.2 asks, or refuses to deliver.
func (p *Policy) TLSConfig(opts *tlsconf.DANEOptions) (*tls.Config, *tlsconf.DANEResult, error) {
	base := p.BaseDomain
	if base == "" {
		base = p.Host
	}
	if base != p.Host {
		o := tlsconf.DANEOptions{}
		if opts != nil {
			o = *opts
		}
		o.Names = append([]string{p.Host}, o.Names...)
		opts = &o
	}
	return tlsconf.DANE(base, p.Records, opts)
}

// Lookup finds the DANE policy of mxHost for the given port (25 for MX
// delivery). The address lookup comes first and must be secure before the
// TLSA records are looked up at all (RFC 7672, Section 2.2.3: with an
// insecure address the host's TLSA records cannot be relied on either). A failed
// lookup returns a *LookupError matching ErrDefer, and no policy.
//
// Lookup does not know how mxHost was found. RFC 7672, Section 2.2.1
// allows DANE for a host named by an insecure MX answer (a signed hosting
// provider serving an unsigned domain), though an attacker who forges that
// answer picks the host and so its TLSA records; LookupMX says whether the
// answer was secure, and the choice is the caller's (examples/tlsprobe
// requires a secure MX answer).
//
// When mxHost is an alias (its secure address answer goes through CNAMEs),
// the TLSA records are looked up at the name the chain ends at first, and
// at mxHost when none are securely found there (RFC 7672, Section 2.2.3;
// RFC 7671, Section 7).
func (r *Resolver) Lookup(ctx context.Context, mxHost string, port int) (*Policy, error) {
	p := &Policy{Host: strings.ToLower(strings.TrimSuffix(mxHost, "."))}
	addrs, secure, target, err := r.lookupIP(ctx, p.Host)
	if err != nil {
		return nil, err
	}
	p.Addrs, p.AddrsSecure = addrs, secure
	if !secure {
		p.Reason = "address-insecure"
		return p, nil
	}
	candidates := []string{p.Host}
	if target != p.Host {
		candidates = []string{target, p.Host}
	}
	for _, base := range candidates {
		records, secure, err := r.LookupTLSA(ctx, port, base)
		if err != nil {
			return nil, err
		}
		switch {
		case !secure:
			p.Reason = "tlsa-insecure"
		case len(records) == 0:
			p.Reason = "no-tlsa"
		default:
			p.DANE, p.Records, p.BaseDomain, p.Reason = true, records, base, ""
			return p, nil
		}
	}
	return p, nil
}
