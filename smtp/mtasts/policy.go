// Package mtasts implements the sending side of SMTP MTA Strict Transport
// Security (RFC 8461): the _mta-sts TXT record, the policy fetched over
// HTTPS from https://mta-sts.<domain>/.well-known/mta-sts.txt, a cache
// honouring max_age and the record's id, and the per-MX decision with the
// TLS config it implies.
//
// The threat: without MTA-STS (or DANE) a man in the middle strips STARTTLS
// or shows any certificate, and the sender delivers anyway. A domain's
// policy in enforce mode says its MX hosts must match its patterns and
// present a certificate that verifies (PKIX) for the MX name. The policy
// itself is protected by the web PKI, not DNSSEC: the fetch follows no
// redirect, reads at most 64 KiB, is bounded in time, and verifies the
// policy host's certificate.
//
// When DANE applies to an MX host (package smtp/dane), it wins over
// MTA-STS (RFC 8461, Section 2).
package mtasts

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// Mode is a policy's mode (RFC 8461, Section 5).
type Mode string

// The three modes.
const (
	// Enforce: an MX that does not match, or whose certificate does not
	// verify, is not delivered to.
	Enforce Mode = "enforce"
	// Testing: the same checks, failures are reported (TLS-RPT) but
	// delivery goes on.
	Testing Mode = "testing"
	// None: the domain withdraws its policy; nothing is checked.
	None Mode = "none"
)

// MaxAgeLimit is the largest max_age allowed (RFC 8461, Section 3.2: about
// a year).
const MaxAgeLimit = 31557600 * time.Second

// MaxPolicySize bounds a policy body (RFC 8461, Section 3.3: 64 KiB).
const MaxPolicySize = 64 << 10

// Policy is a parsed policy (RFC 8461, Section 3.2).
type Policy struct {
	// Mode is enforce, testing or none.
	Mode Mode
	// MX are the allowed MX host patterns, lower case, without a final
	// dot; "*.example.com" matches exactly one label in place of "*".
	MX []string
	// MaxAge is how long the policy may be cached.
	MaxAge time.Duration
	// Text is the policy as fetched, for TLS-RPT's policy-string.
	Text string
}

// Sentinels for the ways a policy can be missing or broken; the TLS-RPT
// result type follows from them (package smtp/tlsrpt).
var (
	// ErrNoPolicy: the domain has no usable _mta-sts TXT record (none,
	// several, or malformed): deliver as without MTA-STS.
	ErrNoPolicy = errors.New("mtasts: no policy")
	// ErrInvalid: the policy text is malformed (sts-policy-invalid).
	ErrInvalid = errors.New("mtasts: invalid policy")
	// ErrFetch: the policy could not be fetched: DNS, connection, HTTP
	// status, redirect, size or time (sts-policy-fetch-error).
	ErrFetch = errors.New("mtasts: policy fetch failed")
	// ErrWebPKI: the policy host's certificate did not verify
	// (sts-webpki-invalid).
	ErrWebPKI = errors.New("mtasts: policy host certificate invalid")
	// ErrMXMismatch: an MX host matches none of the policy's patterns.
	ErrMXMismatch = errors.New("mtasts: mx host not in policy")
)

// Parse parses a policy body strictly (RFC 8461, Section 3.2): key: value
// lines separated by LF or CRLF; version STSv1, mode and max_age each
// exactly once; at least one mx unless the mode is none; unknown keys
// ignored if well formed. Errors match ErrInvalid.
func Parse(text string) (*Policy, error) {
	if len(text) > MaxPolicySize {
		return nil, fmt.Errorf("%w: %d bytes, over %d", ErrInvalid, len(text), MaxPolicySize)
	}
	p := &Policy{Text: text}
	body := text
	// One final line terminator is part of the grammar.
	body = strings.TrimSuffix(body, "\n")
	body = strings.TrimSuffix(body, "\r")
	seen := map[string]bool{}
	for i, line := range strings.Split(body, "\n") {
		line = strings.TrimSuffix(line, "\r")
		invalid := func(format string, args ...any) error {
			return fmt.Errorf("%w: line %d: %s", ErrInvalid, i+1, fmt.Sprintf(format, args...))
		}
		line = strings.Trim(line, " \t")
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, invalid("no colon in %q", starttls.Escape(line))
		}
		value = strings.TrimLeft(value, " \t")
		key = strings.ToLower(key)
		if !validKey(key) {
			return nil, invalid("bad key %q", starttls.Escape(key))
		}
		if !validValue(value) {
			return nil, invalid("bad value for %s: %q", key, starttls.Escape(value))
		}
		if key != "mx" && seen[key] && (key == "version" || key == "mode" || key == "max_age") {
			return nil, invalid("%s repeated", key)
		}
		seen[key] = true
		switch key {
		// RFC 5234, Section 2.3: the quoted strings of the grammar are
		// case-insensitive.
		case "version":
			if !strings.EqualFold(value, "STSv1") {
				return nil, invalid("version %q, want STSv1", starttls.Escape(value))
			}
		case "mode":
			switch m := Mode(strings.ToLower(value)); m {
			case Enforce, Testing, None:
				p.Mode = m
			default:
				return nil, invalid("mode %q", starttls.Escape(value))
			}
		case "max_age":
			if len(value) > 10 || strings.Trim(value, "0123456789") != "" {
				return nil, invalid("max_age %q: want up to 10 digits", starttls.Escape(value))
			}
			n, _ := strconv.ParseInt(value, 10, 64)
			if n > int64(MaxAgeLimit/time.Second) {
				return nil, invalid("max_age %d over %d", n, int64(MaxAgeLimit/time.Second))
			}
			p.MaxAge = time.Duration(n) * time.Second
		case "mx":
			pattern, err := parsePattern(value)
			if err != nil {
				return nil, invalid("mx %q: %v", starttls.Escape(value), err)
			}
			p.MX = append(p.MX, pattern)
		}
	}
	switch {
	case !seen["version"]:
		return nil, fmt.Errorf("%w: no version", ErrInvalid)
	case !seen["mode"]:
		return nil, fmt.Errorf("%w: no mode", ErrInvalid)
	case !seen["max_age"]:
		return nil, fmt.Errorf("%w: no max_age", ErrInvalid)
	case len(p.MX) == 0 && p.Mode != None:
		return nil, fmt.Errorf("%w: no mx in %s mode", ErrInvalid, p.Mode)
	}
	return p, nil
}

// validKey is sts-policy-ext-name: a letter or digit, then up to 31
// letters, digits, "_", "-" or ".".
func validKey(k string) bool {
	if k == "" || len(k) > 32 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '_' && c != '-' && c != '.')) {
			return false
		}
	}
	return true
}

// validValue is sts-policy-ext-value: printable ASCII and inner spaces,
// not empty.
func validValue(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c > 0x7e || c == '\t' {
			return false
		}
	}
	return v[len(v)-1] != ' '
}

// parsePattern checks an mx value: a host name, or "*." and a host name
// of at least two labels.
func parsePattern(v string) (string, error) {
	v = strings.ToLower(strings.TrimSuffix(v, "."))
	host := strings.TrimPrefix(v, "*.")
	if strings.Contains(host, "*") {
		return "", errors.New("a wildcard only as the whole first label")
	}
	labels := strings.Split(host, ".")
	if len(host) > 253 || (host != v && len(labels) < 2) {
		return "", errors.New("bad host name")
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", errors.New("bad label")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			// RFC 5321, Section 4.1.2: letters, digits and hyphens.
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", errors.New("bad character")
			}
		}
	}
	return v, nil
}

// Match reports whether host (an MX host name) matches one of the
// policy's patterns (RFC 8461, Section 4.1): case-insensitive; "*." in a
// pattern stands for exactly one label, so *.example.com matches
// mx.example.com but neither example.com nor a.b.example.com.
func (p *Policy) Match(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, pat := range p.MX {
		if rest, ok := strings.CutPrefix(pat, "*."); ok {
			label, parent, found := strings.Cut(host, ".")
			if found && label != "" && parent == rest {
				return true
			}
			continue
		}
		if host == pat {
			return true
		}
	}
	return false
}

// TLSConfig returns the TLS config for delivery to mx under the policy
// (RFC 8461, Section 4): PKIX for the MX name with roots (nil: system
// roots), TLS 1.2 or later.
//
//   - Enforce: a verifying config (tlsconf.Client); an MX that matches no
//     pattern gets no config and an error matching ErrMXMismatch: do not
//     connect.
//   - Testing: a config that records the verification outcome without
//     failing (tlsconf.Encrypt, the *tlsconf.Outcome is returned); an MX
//     that matches no pattern returns the config and ErrMXMismatch, to be
//     reported while delivery goes on.
//   - None: nil, nil, nil: MTA-STS has nothing to say.
func (p *Policy) TLSConfig(mx string, roots *x509.CertPool) (*tls.Config, *tlsconf.Outcome, error) {
	mx = strings.ToLower(strings.TrimSuffix(mx, "."))
	var mismatch error
	if p.Mode != None && !p.Match(mx) {
		mismatch = fmt.Errorf("%w: %s matches none of %s", ErrMXMismatch, starttls.Escape(mx), strings.Join(p.MX, ", "))
	}
	switch p.Mode {
	case Enforce:
		if mismatch != nil {
			return nil, nil, mismatch
		}
		return tlsconf.Client(mx, roots), nil, nil
	case Testing:
		cfg, out := tlsconf.Encrypt(mx, roots)
		return cfg, out, mismatch
	}
	return nil, nil, nil
}
