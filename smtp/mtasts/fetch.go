package mtasts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tlsup/tlsup/starttls"
)

// ParseRecord parses an _mta-sts TXT record (RFC 8461, Section 3.1),
// "v=STSv1; id=20160831085700Z;", and returns its id (1 to 32 letters and
// digits). Extension fields are allowed and ignored. Errors match
// ErrNoPolicy.
func ParseRecord(txt string) (string, error) {
	fields := strings.Split(txt, ";")
	if last := strings.Trim(fields[len(fields)-1], " \t"); last == "" && len(fields) > 1 {
		fields = fields[:len(fields)-1]
	}
	id := ""
	for i, f := range fields {
		name, value, ok := strings.Cut(strings.Trim(f, " \t"), "=")
		name, value = strings.TrimRight(name, " \t"), strings.TrimLeft(value, " \t")
		switch {
		case !ok || !validKey(name) || value == "":
			return "", fmt.Errorf("%w: malformed field %q in record", ErrNoPolicy, starttls.Escape(f))
		case i == 0:
			if name != "v" || value != "STSv1" {
				return "", fmt.Errorf("%w: record does not start with v=STSv1", ErrNoPolicy)
			}
		case name == "id":
			if id != "" {
				return "", fmt.Errorf("%w: id repeated", ErrNoPolicy)
			}
			if len(value) > 32 || strings.TrimLeft(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != "" {
				return "", fmt.Errorf("%w: id %q: want 1 to 32 letters and digits", ErrNoPolicy, starttls.Escape(value))
			}
			id = value
		}
	}
	if id == "" {
		return "", fmt.Errorf("%w: record without id", ErrNoPolicy)
	}
	return id, nil
}

// SelectRecord picks the policy record among a name's TXT records (RFC
// 8461, Section 3.1): records not starting with "v=STSv1" are discarded,
// and exactly one must remain and parse. It returns its id, or an error
// matching ErrNoPolicy.
func SelectRecord(txts []string) (string, error) {
	var candidates []string
	for _, t := range txts {
		if strings.HasPrefix(t, "v=STSv1") {
			candidates = append(candidates, t)
		}
	}
	if len(candidates) != 1 {
		return "", fmt.Errorf("%w: %d STSv1 records", ErrNoPolicy, len(candidates))
	}
	return ParseRecord(candidates[0])
}

// Fetcher looks up a domain's policy record and fetches its policy. The
// zero value uses the system resolver, port 443, the system roots and a
// 30-second timeout.
type Fetcher struct {
	// LookupTXT returns the TXT records of a name. Zero:
	// net.DefaultResolver.LookupTXT. A lookup that finds nothing must
	// return an empty list or a *net.DNSError with IsNotFound.
	LookupTXT func(ctx context.Context, name string) ([]string, error)
	// DialContext connects to the policy host ("mta-sts.<domain>:port").
	// Zero: a net.Dialer (the system resolver).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Roots verifies the policy host's certificate. Zero: system roots.
	Roots *x509.CertPool
	// Port is the HTTPS port; the URL, Host header, SNI and name verified
	// stay mta-sts.<domain>. Zero: 443. Other values are for tests.
	Port int
	// Timeout bounds one fetch. Zero: 30 seconds.
	Timeout time.Duration
}

// Record returns the id of domain's _mta-sts record. No record, several
// or a malformed one are ErrNoPolicy; a failed lookup is the lookup's
// error wrapped with ErrFetch.
func (f *Fetcher) Record(ctx context.Context, domain string) (string, error) {
	lookup := f.LookupTXT
	if lookup == nil {
		lookup = net.DefaultResolver.LookupTXT
	}
	txts, err := lookup(ctx, "_mta-sts."+domain)
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		txts, err = nil, nil
	}
	if err != nil {
		return "", fmt.Errorf("%w: _mta-sts TXT lookup: %w", ErrFetch, err)
	}
	return SelectRecord(txts)
}

// Fetch fetches and parses domain's policy (RFC 8461, Section 3.3): GET
// https://mta-sts.<domain>/.well-known/mta-sts.txt with no redirect
// followed, status 200, Content-Type text/plain, at most 64 KiB, within the
// timeout, the certificate verified for mta-sts.<domain>. Errors match
// ErrWebPKI (certificate), ErrInvalid (the body) or ErrFetch (anything
// else).
func (f *Fetcher) Fetch(ctx context.Context, domain string) (*Policy, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	host := "mta-sts." + domain
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dial := f.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	port := f.Port
	if port == 0 {
		port = 443
	}
	transport := &http.Transport{
		// Always the policy host, on the configured port, whatever the
		// URL says: there is only one URL.
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dial(ctx, network, net.JoinHostPort(host, strconv.Itoa(port)))
		},
		TLSClientConfig:        &tls.Config{ServerName: host, RootCAs: f.Roots, MinVersion: tls.VersionTLS12},
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 16 << 10,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{
		Transport: transport,
		// RFC 8461, Section 3.3: redirects MUST NOT be followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/.well-known/mta-sts.txt", nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFetch, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("%w: %w", ErrWebPKI, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrFetch, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: HTTP status %d", ErrFetch, resp.StatusCode)
	}
	mediaType, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mediaType != "text/plain" {
		return nil, fmt.Errorf("%w: Content-Type %q, want text/plain", ErrInvalid, starttls.Escape(resp.Header.Get("Content-Type")))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the policy: %w", ErrFetch, err)
	}
	if len(body) > MaxPolicySize {
		return nil, fmt.Errorf("%w: policy over %d bytes", ErrFetch, MaxPolicySize)
	}
	return Parse(string(body))
}
