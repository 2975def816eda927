package tlsconf

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// TLSA is one TLSA record (RFC 6698, Section 2.1): what a DNSSEC-signed
// zone says the certificate of a service must match.
type TLSA struct {
	// Usage is the certificate usage: 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA,
	// 3 DANE-EE. SMTP uses only 2 and 3 (RFC 7672, Section 3.1.3).
	Usage uint8
	// Selector is 0 for the whole certificate, 1 for its
	// SubjectPublicKeyInfo.
	Selector uint8
	// MatchingType is 0 for the selected data itself, 1 for its SHA-256,
	// 2 for its SHA-512.
	MatchingType uint8
	// Data is the certificate association data.
	Data []byte
}

// TLSA field values (RFC 6698, Section 7; RFC 7218 acronyms).
const (
	UsagePKIXTA uint8 = 0 // PKIX-TA: not usable for SMTP (RFC 7672, Section 3.1.3)
	UsagePKIXEE uint8 = 1 // PKIX-EE: not usable for SMTP (RFC 7672, Section 3.1.3)
	UsageDANETA uint8 = 2 // DANE-TA: an issuer in the chain matches
	UsageDANEEE uint8 = 3 // DANE-EE: the server's own certificate or key matches

	SelectorCert uint8 = 0 // the whole certificate, DER
	SelectorSPKI uint8 = 1 // the SubjectPublicKeyInfo, DER

	MatchFull   uint8 = 0 // the selected data itself
	MatchSHA256 uint8 = 1 // its SHA2-256 digest
	MatchSHA512 uint8 = 2 // its SHA2-512 digest
)

// String returns the record in zone-file presentation form, "3 1 1 ab12...".
func (r TLSA) String() string {
	return fmt.Sprintf("%d %d %d %s", r.Usage, r.Selector, r.MatchingType, hex.EncodeToString(r.Data))
}

// ErrUnusableRecord: a TLSA record that SMTP cannot use (RFC 7672, Section
// 3.1.3: PKIX-TA and PKIX-EE; RFC 7671, Section 4: unknown parameters or
// data of the wrong length).
var ErrUnusableRecord = errors.New("tlsconf: unusable tlsa record")

// ErrNoUsableRecords: DANE was asked for with no usable TLSA record. For
// SMTP this is not "no DANE": RFC 7672, Section 2.2 keeps TLS mandatory
// (use [Encrypt]) but without authentication. The caller decides; [DANE]
// never turns it into a config that accepts anything.
var ErrNoUsableRecords = errors.New("tlsconf: no usable tlsa records")

// ErrDANEMismatch: the server's certificate matched none of the usable
// TLSA records. The [*DANEError] in the chain says why, record by record.
var ErrDANEMismatch = errors.New("tlsconf: dane: no tlsa record matched")

// Usable reports whether SMTP can use r (RFC 7672, Section 3.1.3 and RFC
// 7671, Section 4): nil, or an error matching ErrUnusableRecord that says
// why not.
func (r TLSA) Usable() error {
	switch {
	case r.Usage != UsageDANETA && r.Usage != UsageDANEEE:
		// RFC 7672, Section 3.1.3: PKIX-TA(0) and PKIX-EE(1) are unusable.
		return fmt.Errorf("%w: usage %d (only DANE-TA(2) and DANE-EE(3) count for smtp)", ErrUnusableRecord, r.Usage)
	case r.Selector > SelectorSPKI:
		return fmt.Errorf("%w: selector %d", ErrUnusableRecord, r.Selector)
	case r.MatchingType > MatchSHA512:
		return fmt.Errorf("%w: matching type %d", ErrUnusableRecord, r.MatchingType)
	case r.MatchingType == MatchSHA256 && len(r.Data) != sha256.Size,
		r.MatchingType == MatchSHA512 && len(r.Data) != sha512.Size:
		// RFC 7671, Section 4: a digest of the wrong length is malformed.
		return fmt.Errorf("%w: %d bytes of data for matching type %d", ErrUnusableRecord, len(r.Data), r.MatchingType)
	case r.MatchingType == MatchFull && len(r.Data) == 0:
		return fmt.Errorf("%w: empty data", ErrUnusableRecord)
	}
	return nil
}

// matches reports whether cert is what r names.
func (r TLSA) matches(cert *x509.Certificate) bool {
	data := cert.Raw
	if r.Selector == SelectorSPKI {
		data = cert.RawSubjectPublicKeyInfo
	}
	switch r.MatchingType {
	case MatchSHA256:
		sum := sha256.Sum256(data)
		return bytes.Equal(sum[:], r.Data)
	case MatchSHA512:
		sum := sha512.Sum512(data)
		return bytes.Equal(sum[:], r.Data)
	}
	return bytes.Equal(data, r.Data)
}

// NewTLSA returns the record of the given usage, selector and matching
// type for cert: what a zone publishes for it.
func NewTLSA(usage, selector, matchingType uint8, cert *x509.Certificate) TLSA {
	r := TLSA{Usage: usage, Selector: selector, MatchingType: matchingType}
	data := cert.Raw
	if selector == SelectorSPKI {
		data = cert.RawSubjectPublicKeyInfo
	}
	switch matchingType {
	case MatchSHA256:
		sum := sha256.Sum256(data)
		r.Data = sum[:]
	case MatchSHA512:
		sum := sha512.Sum512(data)
		r.Data = sum[:]
	default:
		r.Data = slices.Clone(data)
	}
	return r
}

// DANEOptions configures [DANE]. A nil *DANEOptions means the defaults.
type DANEOptions struct {
	// Names are further reference identifiers a DANE-TA certificate may
	// carry besides the TLSA base domain (RFC 7672, Section 3.2.2: the MX
	// host name before CNAME expansion, the next-hop domain). Zero: the
	// base domain only. DANE-EE never checks names.
	Names []string
	// SessionCache, when set, lets connections resume TLS sessions. It is
	// wrapped so that its keys carry the TLSA record set and the base
	// domain: a session made under one set of records is never resumed
	// under another (a changed or removed record must be checked again).
	// Verification runs on resumed sessions too. Zero: no resumption.
	SessionCache tls.ClientSessionCache
	// Time returns the current time for DANE-TA validity checks; zero
	// means time.Now.
	Time func() time.Time
}

// RecordFailure says why one TLSA record did not match.
type RecordFailure struct {
	// Record is the TLSA record that did not match, as given.
	Record TLSA
	// Err is ErrUnusableRecord, "certificate does not match", or the
	// crypto/x509 error of the DANE-TA chain (an expired certificate, a
	// name that does not match).
	Err error
}

// DANEError is the verification error of a [DANE] config: no usable record
// matched. It lists every record with its reason and matches
// ErrDANEMismatch.
type DANEError struct {
	// Failures has one entry per record given, with its reason: the
	// unusable records first, then the usable ones in the order tried.
	Failures []RecordFailure
}

// Error returns "tlsconf: dane: no tlsa record matched: " and the reason
// for each record.
func (e *DANEError) Error() string {
	var b strings.Builder
	b.WriteString(ErrDANEMismatch.Error())
	for i, f := range e.Failures {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%d %d %d: %v", f.Record.Usage, f.Record.Selector, f.Record.MatchingType, f.Err)
	}
	return b.String()
}

// Unwrap returns ErrDANEMismatch and the per-record errors.
func (e *DANEError) Unwrap() []error {
	errs := []error{ErrDANEMismatch}
	for _, f := range e.Failures {
		errs = append(errs, f.Err)
	}
	return errs
}

// DANEResult is what verification said on the last handshake made with a
// [DANE] config; read it after the handshake. It is safe for concurrent
// use, but describes one connection at a time: make a config per
// connection to read each one's outcome.
type DANEResult struct {
	mu       sync.Mutex
	checked  bool
	matched  TLSA
	ok       bool
	failures []RecordFailure
}

// Matched returns the record that matched, and whether one did.
func (r *DANEResult) Matched() (TLSA, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.matched, r.ok
}

// Checked reports whether a handshake reached verification.
func (r *DANEResult) Checked() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.checked
}

// Failures returns, for each record tried before the match (or every
// record when none matched), why it failed.
func (r *DANEResult) Failures() []RecordFailure {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.failures)
}

func (r *DANEResult) set(matched TLSA, ok bool, failures []RecordFailure) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checked, r.matched, r.ok, r.failures = true, matched, ok, failures
}

// DANE returns a client config that authenticates the server by the TLSA
// records (RFC 7672 for SMTP, on RFC 7671 and RFC 6698), and the result the
// handshake fills in. baseDomain is the TLSA base domain (the MX host, or
// its CNAME target when the records were found there): it is sent as SNI
// (RFC 7672, Section 8.1) and is the name a DANE-TA certificate must carry.
//
//   - DANE-EE(3): the leaf certificate (or its public key) matches; its
//     names, dates and issuer are not checked (RFC 7672, Section 3.1.1).
//   - DANE-TA(2): an issuer certificate of the chain the server sent
//     matches (the server must send its trust anchor: a bare public key
//     that is not in the chain is not used); the chain is built from the
//     leaf up to that certificate and no further,
//     with dates checked, and the leaf must carry baseDomain or one of
//     opts.Names (RFC 7672, Sections 3.1.2 and 3.2). Any extended key usage
//     is accepted.
//
// Records that SMTP cannot use are skipped and listed as failures, and so
// are SHA2-256 records beside a SHA2-512 record of the same usage and
// selector (RFC 7671, Section 9). With no
// usable record DANE returns ErrNoUsableRecords (wrapping the reasons) and
// no config: that decision is the caller's.
//
// Verification runs in VerifyConnection, which crypto/tls calls on every
// handshake, resumed ones included; InsecureSkipVerify is set only so that
// crypto/tls does not also demand a PKIX chain. A failed verification
// aborts the handshake with an error matching ErrDANEMismatch, carrying a
// [*DANEError].
func DANE(baseDomain string, records []TLSA, opts *DANEOptions) (*tls.Config, *DANEResult, error) {
	if opts == nil {
		opts = &DANEOptions{}
	}
	baseDomain = strings.TrimSuffix(baseDomain, ".")
	if baseDomain == "" {
		return nil, nil, errors.New("tlsconf: dane: empty tlsa base domain")
	}
	var usable []TLSA
	var unusable []RecordFailure
	reasons := []error{ErrNoUsableRecords}
	for _, r := range records {
		err := r.Usable()
		if err == nil && r.MatchingType == MatchSHA256 && hasSHA512(records, r.Usage, r.Selector) {
			// RFC 7671, Section 9 (digest algorithm agility): with a
			// SHA2-512 record for the same usage and selector, the
			// SHA2-256 ones are ignored, so that a zone can retire the
			// weaker digest by publishing the stronger one.
			err = fmt.Errorf("%w: a SHA2-512 record of the same usage and selector replaces it", ErrUnusableRecord)
		}
		if err != nil {
			unusable = append(unusable, RecordFailure{Record: r, Err: err})
			reasons = append(reasons, fmt.Errorf("%s: %w", r, err))
			continue
		}
		usable = append(usable, TLSA{r.Usage, r.Selector, r.MatchingType, slices.Clone(r.Data)})
	}
	if len(usable) == 0 {
		return nil, nil, errors.Join(reasons...)
	}
	names := append([]string{baseDomain}, opts.Names...)
	now := opts.Time
	if now == nil {
		now = time.Now
	}
	result := &DANEResult{}
	cfg := &tls.Config{
		ServerName:         baseDomain,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // VerifyConnection below does the DANE checks, on every handshake
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyDANE(cs.PeerCertificates, usable, unusable, names, now(), result)
		},
	}
	if opts.SessionCache != nil {
		cfg.ClientSessionCache = &keyedCache{inner: opts.SessionCache, prefix: cacheKey(baseDomain, names, usable)}
	}
	return cfg, result, nil
}

// hasSHA512 reports whether records hold a usable SHA2-512 record of the
// given usage and selector.
func hasSHA512(records []TLSA, usage, selector uint8) bool {
	for _, r := range records {
		if r.Usage == usage && r.Selector == selector && r.MatchingType == MatchSHA512 && r.Usable() == nil {
			return true
		}
	}
	return false
}

// verifyDANE tries the usable records in order; unusable ones head the
// list of failures, so that the result accounts for every record.
func verifyDANE(chain []*x509.Certificate, records []TLSA, unusable []RecordFailure, names []string, now time.Time, result *DANEResult) error {
	failures := slices.Clone(unusable)
	if len(chain) == 0 {
		result.set(TLSA{}, false, failures)
		return errors.New("tlsconf: dane: no peer certificate")
	}
	for _, r := range records {
		err := verifyRecord(r, chain, names, now)
		if err == nil {
			result.set(r, true, failures)
			return nil
		}
		failures = append(failures, RecordFailure{Record: r, Err: err})
	}
	result.set(TLSA{}, false, failures)
	return &DANEError{Failures: failures}
}

var errNoMatch = errors.New("certificate does not match")

func verifyRecord(r TLSA, chain []*x509.Certificate, names []string, now time.Time) error {
	leaf := chain[0]
	if r.Usage == UsageDANEEE {
		if r.matches(leaf) {
			return nil
		}
		return errNoMatch
	}
	// DANE-TA: the first issuer certificate of the chain that matches is
	// the trust anchor (the leaf is never its own anchor, as in OpenSSL's
	// DANE); the path is built from the leaf to it and stops there (RFC
	// 7671, Section 5.2.2), so a longer chain beyond it is never consulted.
	anchor := -1
	for i := 1; i < len(chain); i++ {
		if c := chain[i]; r.matches(c) {
			anchor = i
			break
		}
	}
	if anchor < 0 {
		return errNoMatch
	}
	roots := x509.NewCertPool()
	roots.AddCert(chain[anchor])
	intermediates := x509.NewCertPool()
	for i := 1; i < anchor; i++ {
		intermediates.AddCert(chain[i])
	}
	opts := x509.VerifyOptions{
		Roots:         roots,
		Intermediates: intermediates,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	if _, err := leaf.Verify(opts); err != nil {
		return err
	}
	// RFC 7672, Section 3.2.2: the reference identifiers.
	var nameErr error
	for _, name := range names {
		if nameErr = leaf.VerifyHostname(name); nameErr == nil {
			return nil
		}
	}
	if len(names) > 1 {
		return fmt.Errorf("certificate valid for none of %s: %w", strings.Join(names, ", "), nameErr)
	}
	return nameErr
}

// cacheKey identifies a record set and its names: the same records in
// another order give the same key.
func cacheKey(baseDomain string, names []string, records []TLSA) string {
	rs := make([]string, len(records))
	for i, r := range records {
		rs[i] = r.String()
	}
	slices.Sort(rs)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s", baseDomain, strings.Join(names, ","), strings.Join(rs, ","))
	return "dane:" + hex.EncodeToString(h.Sum(nil)) + ":"
}

// keyedCache prefixes every key of a shared session cache, so that one
// cache serves many record sets without mixing them.
type keyedCache struct {
	inner  tls.ClientSessionCache
	prefix string
}

func (c *keyedCache) Get(key string) (*tls.ClientSessionState, bool) {
	return c.inner.Get(c.prefix + key)
}

func (c *keyedCache) Put(key string, cs *tls.ClientSessionState) {
	c.inner.Put(c.prefix+key, cs)
}
