package main

// The MTA policy mode (contract: "MTA policy"):
//
//	tlsprobe -mx DOMAIN [-resolver HOST:PORT] [-port N] [-sts-port N] [-cafile FILE] [-timeout DUR] [-json]
//
// It looks up DOMAIN's MX hosts, evaluates DANE and MTA-STS for each,
// upgrades with the resulting policy and prints one verdict per MX. Exit
// status: 0 every MX passed its policy, 1 any failed, 2 usage, 4 a lookup
// could not be completed (defer, never downgrade); 4 wins over 1.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/smtp/dane"
	"github.com/tlsup/tlsup/smtp/mtasts"
	"github.com/tlsup/tlsup/smtp/tlsrpt"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// exitDefer: a lookup could not be completed.
const exitDefer = 4

// mxRequested reports whether the command line asks for the MTA policy
// mode: a -mx flag before any "--".
func mxRequested(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "mx" {
			return true
		}
	}
	return false
}

// mxProbe is a parsed -mx command line.
type mxProbe struct {
	domain   string
	resolver *dane.Resolver
	port     int
	stsPort  int
	roots    *x509.CertPool
	timeout  time.Duration
	ehlo     string
	json     bool
}

func parseMX(args []string, stderr io.Writer) (*mxProbe, error) {
	fs := flag.NewFlagSet("tlsprobe -mx", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tlsprobe -mx DOMAIN [-resolver HOST:PORT] [-port N] [-sts-port N] [-cafile FILE] [-timeout DUR] [-json]")
		fs.PrintDefaults()
	}
	domain := fs.String("mx", "", "evaluate the MX hosts of `DOMAIN` under DANE and MTA-STS")
	resolver := fs.String("resolver", "", "validating DNS resolver `HOST:PORT` whose AD bit is trusted (default: the first nameserver of /etc/resolv.conf)")
	port := fs.Int("port", 25, "SMTP port of the MX hosts")
	stsPort := fs.Int("sts-port", 443, "HTTPS port of the MTA-STS policy fetch")
	caFile := fs.String("cafile", "", "trust only the PEM roots in `FILE`, for MTA-STS and the policy fetch (default: system roots)")
	timeout := fs.Duration("timeout", 30*time.Second, "bound on each MX's evaluation and upgrade")
	ehlo := fs.String("ehlo", "localhost", "`NAME` sent with EHLO")
	asJSON := fs.Bool("json", false, "print one JSON object per MX (JSON Lines)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err.Error()}
	}
	if fs.NArg() != 0 {
		return nil, usagef("-mx takes no host argument, got %q", fs.Arg(0))
	}
	p := &mxProbe{domain: strings.ToLower(strings.TrimSuffix(*domain, ".")), port: *port, stsPort: *stsPort,
		timeout: *timeout, ehlo: *ehlo, json: *asJSON}
	switch {
	case p.domain == "" || strings.ContainsAny(p.domain, " \t\r\n\x00/:"):
		return nil, usagef("-mx %q: want a domain", *domain)
	case p.port < 1 || p.port > 65535:
		return nil, usagef("-port %d: want 1 to 65535", p.port)
	case p.stsPort < 1 || p.stsPort > 65535:
		return nil, usagef("-sts-port %d: want 1 to 65535", p.stsPort)
	case p.timeout <= 0:
		return nil, usagef("-timeout must be positive, got %v", p.timeout)
	case p.ehlo == "" || strings.ContainsAny(p.ehlo, " \t\r\n\x00"):
		return nil, usagef("-ehlo %q: want a domain or an address literal", p.ehlo)
	}
	if *resolver != "" {
		if _, _, err := net.SplitHostPort(*resolver); err != nil {
			return nil, usagef("-resolver %q: want HOST:PORT", *resolver)
		}
	}
	// Three attempts of a query (UDP twice, TCP) fit in one -timeout.
	p.resolver = &dane.Resolver{Addr: *resolver, Timeout: min(p.timeout/3, 5*time.Second)}
	if *caFile != "" {
		var err error
		if p.roots, err = tlsconf.LoadRoots(*caFile); err != nil {
			return nil, usageError{err.Error()}
		}
	}
	return p, nil
}

// mxReport is one JSON line: the single-target keys and the operator
// facts (its step is "lookup" for a deferral), plus the policy's.
type mxReport struct {
	*facts
	MX           *string `json:"mx"`
	PolicyType   string  `json:"policy_type"`
	PolicyMode   string  `json:"policy_mode"`
	TLSRPTResult *string `json:"tlsrpt_result"`
	TLSRPTReason *string `json:"tlsrpt_reason"`
}

// runMX is the whole -mx mode.
func runMX(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	p, err := parseMX(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitTLS
	}
	if err != nil {
		fmt.Fprintf(stderr, "tlsprobe: %v\n", err)
		fmt.Fprintln(stderr, "usage: tlsprobe -mx DOMAIN [flags]  (tlsprobe -mx x -h for the flags)")
		return exitUsage
	}
	reports, code := p.run(ctx)
	for _, r := range reports {
		if p.json {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(r); err != nil {
				fmt.Fprintf(stderr, "tlsprobe: %v\n", err)
				return exitFailed
			}
			stdout.Write(escapeJSONControls(buf.Bytes()))
		} else {
			r.writeText(stdout)
			fmt.Fprintln(stdout)
		}
	}
	return code
}

// stsOutcome is what MTA-STS says for the domain.
type stsOutcome struct {
	policy *mtasts.Policy // nil: no policy in force
	err    error          // a fetch failure to report (nil for no record)
}

func (p *mxProbe) run(ctx context.Context) ([]*mxReport, int) {
	// The MX lookup and the policy fetch share the first -timeout.
	start := time.Now()
	lookupCtx, cancel := context.WithTimeout(ctx, p.timeout)
	mxs, mxSecure, err := p.resolver.LookupMX(lookupCtx, p.domain)
	if err != nil {
		cancel()
		r := p.newReport("", start)
		r.fail("lookup", "lookup", err)
		r.elapsed(start)
		rt, reason := tlsrpt.Classify(nil, err)
		r.setTLSRPT(rt, reason)
		return []*mxReport{r}, exitDefer
	}
	if len(mxs) == 0 {
		// RFC 5321, Section 5.1: the implicit MX.
		mxs = []dane.MX{{Host: p.domain}}
	}
	if len(mxs) == 1 && mxs[0].Host == "" {
		cancel()
		r := p.newReport("", start)
		r.fail("lookup", "lookup", fmt.Errorf("%s has a null MX (RFC 7505): it accepts no mail", p.domain))
		return []*mxReport{r}, exitFailed
	}
	sts := p.fetchSTS(lookupCtx)
	cancel()

	code := exitTLS
	var reports []*mxReport
	for _, mx := range mxs {
		if mx.Host == "" {
			continue
		}
		r, c := p.evaluate(ctx, mx.Host, mxSecure, sts)
		reports = append(reports, r)
		switch {
		case c == exitDefer:
			code = exitDefer
		case c != exitTLS && code != exitDefer:
			code = exitFailed
		}
	}
	return reports, code
}

// fetchSTS gets the domain's MTA-STS policy through the resolver.
func (p *mxProbe) fetchSTS(ctx context.Context) stsOutcome {
	f := &mtasts.Fetcher{
		LookupTXT: func(ctx context.Context, name string) ([]string, error) {
			txts, _, err := p.resolver.LookupTXT(ctx, name)
			return txts, err
		},
		DialContext: p.dial,
		Roots:       p.roots,
		Port:        p.stsPort,
		Timeout:     p.timeout,
	}
	if _, err := f.Record(ctx, p.domain); err != nil {
		if errors.Is(err, mtasts.ErrNoPolicy) {
			return stsOutcome{}
		}
		return stsOutcome{err: err}
	}
	policy, err := f.Fetch(ctx, p.domain)
	if err != nil {
		return stsOutcome{err: err}
	}
	return stsOutcome{policy: policy}
}

// dial connects to "host:port" with the host's addresses from the
// resolver.
func (p *mxProbe) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	addrs, _, err := p.resolver.LookupIP(ctx, host)
	if err != nil {
		return nil, err
	}
	return dialAny(ctx, network, addrs, port)
}

func dialAny(ctx context.Context, network string, addrs []netip.Addr, port string) (net.Conn, error) {
	if len(addrs) == 0 {
		return nil, errors.New("no address")
	}
	var d net.Dialer
	var errs []error
	for _, a := range addrs {
		c, err := d.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// evaluate decides the policy for one MX host, upgrades under it, and
// returns the report line and its exit status.
//
// DANE applies only when the MX answer that named host was secure too: the
// contract is stricter than RFC 7672, Section 2.2.1 (which allows DANE for
// hosts of an insecure MX answer), since a forged MX answer picks the host
// and so its TLSA records.
func (p *mxProbe) evaluate(ctx context.Context, host string, mxSecure bool, sts stsOutcome) (*mxReport, int) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	r := p.newReport(host, start)
	defer r.elapsed(start)

	var pol *dane.Policy
	var err error
	if mxSecure {
		pol, err = p.resolver.Lookup(ctx, host, 25)
	} else {
		pol = &dane.Policy{Host: host, Reason: "mx-insecure"}
		pol.Addrs, pol.AddrsSecure, err = p.resolver.LookupIP(ctx, host)
	}
	if err != nil {
		r.fail("lookup", "lookup", err)
		rt, reason := tlsrpt.Classify(nil, err)
		r.setTLSRPT(rt, reason)
		return r, exitDefer
	}

	opts := &smtp.Options{Mode: starttls.StartTLS, LocalName: p.ehlo}
	var daneResult *tlsconf.DANEResult
	var outcome *tlsconf.Outcome
	var policyErr error // reported, but delivery goes on
	switch {
	case pol.DANE && len(pol.Usable()) > 0:
		// RFC 8461, Section 2: usable DANE wins over MTA-STS.
		r.PolicyType, r.PolicyMode = string(tlsrpt.PolicyTLSA), "dane"
		opts.TLSConfig, daneResult, err = pol.TLSConfig(nil)
		if err != nil {
			// Before any connection; the contract's steps start at
			// connect.
			r.fail("connect", "protocol", err)
			return r, exitFailed
		}
	case sts.policy != nil && sts.policy.Mode != mtasts.None:
		r.PolicyType, r.PolicyMode = string(tlsrpt.PolicySTS), string(sts.policy.Mode)
		opts.TLSConfig, outcome, err = sts.policy.TLSConfig(host, p.roots)
		if sts.policy.Mode == mtasts.Enforce && err != nil {
			// Not in the policy: no connection at all.
			r.fail("connect", "certificate", err)
			rt, reason := tlsrpt.Classify(nil, err)
			r.setTLSRPT(rt, reason)
			return r, exitFailed
		}
		policyErr = err
		if sts.policy.Mode == mtasts.Testing && !pol.DANE {
			// Delivery goes on without TLS too, unless TLSA records
			// (all unusable) keep TLS mandatory (RFC 7672, Section 2.2).
			opts.Policy = starttls.Opportunistic
		}
	default:
		r.PolicyType, r.PolicyMode = string(tlsrpt.PolicyNotFound), "none"
		opts.TLSConfig, outcome = tlsconf.Encrypt(host, p.roots)
		opts.Policy = starttls.Opportunistic
		switch {
		case pol.DANE:
			// RFC 7672, Section 2.2: TLSA records, none usable: no
			// authentication, but TLS stays mandatory.
			opts.Policy = starttls.Required
			_, _, policyErr = pol.TLSConfig(nil)
		case sts.err != nil:
			// RFC 8461, Section 3.3: as if there were no policy, reported.
			policyErr = sts.err
		}
	}

	tlsConn, res, err := p.upgrade(ctx, pol.Addrs, opts)
	if tlsConn != nil {
		closeWithin(tlsConn, closeGrace)
	} else if res != nil && res.Conn != nil {
		res.Conn.Close()
	}
	if res == nil {
		res = &starttls.Result{}
	}
	serverName := host
	if daneResult != nil && pol.BaseDomain != "" {
		serverName = pol.BaseDomain // the TLSA base domain, after CNAMEs
	}
	pr := &probe{protocol: "smtp", address: net.JoinHostPort(host, strconv.Itoa(p.port)), mode: starttls.StartTLS,
		policy: opts.Policy, serverName: serverName, outcome: outcome, upgrader: &smtp.Upgrader{LocalName: p.ehlo}}
	base := pr.report(res, err)
	if len(pol.Addrs) > 0 {
		base.Address = net.JoinHostPort(pol.Addrs[0].String(), strconv.Itoa(p.port))
	}
	r.facts = pr.facts(base, res, err) // step, starttls_offered, warnings

	switch {
	case daneResult != nil:
		_, matched := daneResult.Matched()
		r.Verified = &matched
	case outcome == nil && res.TLS:
		v := true
		r.Verified = &v
	}
	if r.Error != nil && errors.Is(err, tlsconf.ErrDANEMismatch) {
		// No TLSA record matched: a certificate failure, like PKIX's.
		r.Error.Kind = "certificate"
		f := false
		r.Verified = &f
	}

	// The TLS-RPT verdict: the session's failure first, then what the
	// policy recorded without failing it.
	rt, reason := tlsrpt.Classify(res, err)
	if rt == "" && err == nil {
		switch {
		case res.Plaintext && r.PolicyType == string(tlsrpt.PolicySTS):
			rt = tlsrpt.StartTLSNotSupported
		case policyErr != nil:
			rt, reason = tlsrpt.Classify(nil, policyErr)
		case outcome != nil && r.PolicyType == string(tlsrpt.PolicySTS):
			if _, ok, verr := outcome.Result(); !ok && verr != nil {
				rt, reason = tlsrpt.Classify(nil, verr)
				if rt == "" {
					rt = tlsrpt.ValidationFailure
				}
			}
		}
	}
	r.setTLSRPT(rt, reason)
	if r.Error != nil && r.Step != nil && *r.Step == string(starttls.StepRediscover) && strings.HasPrefix(reason, "tls-alert-") {
		// A TLS 1.3 server refusing the client after the client's side of
		// the handshake ended: its alert arrives with the first read.
		r.Error.Kind = "handshake"
	}
	if err != nil {
		return r, exitFailed
	}
	return r, exitTLS
}

// upgrade dials the MX's addresses in turn and upgrades the first that
// answers.
func (p *mxProbe) upgrade(ctx context.Context, addrs []netip.Addr, opts *smtp.Options) (*tls.Conn, *starttls.Result, error) {
	if len(addrs) == 0 {
		return nil, nil, &starttls.Error{Protocol: "smtp", Step: starttls.StepConnect, Err: errors.New("the MX host has no address")}
	}
	conn, err := dialAny(ctx, "tcp", addrs, strconv.Itoa(p.port))
	if err != nil {
		return nil, nil, &starttls.Error{Protocol: "smtp", Step: starttls.StepConnect, Err: err}
	}
	return smtp.Upgrade(ctx, conn, opts)
}

func (p *mxProbe) newReport(host string, start time.Time) *mxReport {
	r := &mxReport{facts: &facts{report: &report{
		Protocol: "smtp",
		Mode:     starttls.StartTLS.String(),
		Policy:   starttls.Required.String(),
	}, Warnings: []string{}}, PolicyType: string(tlsrpt.PolicyNotFound), PolicyMode: "none"}
	if host != "" {
		r.MX = &host
		r.Address = net.JoinHostPort(host, strconv.Itoa(p.port))
	}
	r.elapsed(start)
	return r
}

func (r *mxReport) elapsed(start time.Time) {
	r.ElapsedMS = math.Round(float64(time.Since(start).Microseconds())/100) / 10
}

// fail records an error that happened outside the upgrade.
func (r *mxReport) fail(step, kind string, err error) {
	r.Step = &step
	r.Error = &errorInfo{Kind: kind, Message: err.Error()}
}

func (r *mxReport) setTLSRPT(rt tlsrpt.ResultType, reason string) {
	if rt == "" {
		return
	}
	s := string(rt)
	r.TLSRPTResult = &s
	if reason != "" {
		r.TLSRPTReason = &reason
	}
}

func (r *mxReport) writeText(w io.Writer) {
	mx := "(none)"
	if r.MX != nil {
		mx = *r.MX
	}
	fmt.Fprintf(w, "%-13s %s\n", "mx:", mx)
	fmt.Fprintf(w, "%-13s %s, %s\n", "mta policy:", r.PolicyType, r.PolicyMode)
	if r.TLSRPTResult != nil {
		reason := ""
		if r.TLSRPTReason != nil {
			reason = " (" + *r.TLSRPTReason + ")"
		}
		fmt.Fprintf(w, "%-13s %s%s\n", "tls-rpt:", *r.TLSRPTResult, reason)
	}
	if r.Step != nil && *r.Step == "lookup" {
		fmt.Fprintf(w, "%-13s DEFER (%s): %s\n", "result:", r.Error.Kind, printable(r.Error.Message))
		return
	}
	r.facts.writeText(w)
}
