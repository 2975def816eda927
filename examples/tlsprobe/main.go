// The package documentation, the contract included, is in doc.go.

package main

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
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/tlsup/tlsup/internal/errkind"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// Exit statuses of the contract.
const (
	exitTLS       = 0
	exitFailed    = 1
	exitUsage     = 2
	exitPlaintext = 3
)

// closeGrace bounds the polite TLS close after the report is made, so that a
// peer that stops reading cannot hold the probe past -timeout plus a second.
const closeGrace = 500 * time.Millisecond

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// probe is a parsed command line.
type probe struct {
	protocol   string
	host       string // without port or brackets
	address    string // host:port dialled
	mode       starttls.Mode
	policy     starttls.Policy
	serverName string
	tlsConfig  *tls.Config
	outcome    *tlsconf.Outcome // with -insecure: what verification said
	timeout    time.Duration
	ehlo       string
	json       bool
	transcript bool
	upgrader   starttls.Upgrader
}

// usageError is a command line the probe cannot run.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// run is the whole program: it parses args, probes, writes the report on
// stdout and diagnostics on stderr, and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if mxRequested(args) {
		if _, _, _, ok, _ := targetsFlags(args); ok {
			fmt.Fprintln(stderr, "tlsprobe: -mx and -targets are separate modes: give one")
			return exitUsage
		}
		return runMX(ctx, args, stdout, stderr) // the MTA policy mode, mx.go
	}
	if file, jobs, rest, ok, err := targetsFlags(args); ok || err != nil { // targets.go
		if err != nil {
			fmt.Fprintf(stderr, "tlsprobe: %v\n", err)
			return exitUsage
		}
		return runTargets(ctx, file, jobs, rest, stdout, stderr)
	}
	p, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitTLS
	}
	if err != nil {
		fmt.Fprintf(stderr, "tlsprobe: %v\n", err)
		fmt.Fprintln(stderr, "usage: tlsprobe [flags] host[:port]  (tlsprobe -h for the flags)")
		return exitUsage
	}
	if p.tlsConfig.InsecureSkipVerify {
		fmt.Fprintln(stderr, "tlsprobe: warning: -insecure: the server certificate is not verified; "+
			"an active attacker can read and change this session")
	}
	rep, code := p.runWithFacts(ctx, stderr) // targets.go: the report with the operator facts
	if p.json {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "tlsprobe: %v\n", err)
			return exitFailed
		}
		stdout.Write(escapeJSONControls(buf.Bytes()))
	} else {
		rep.writeText(stdout)
	}
	return code
}

// parse reads the command line. Flags may come before or after the host.
func parse(args []string, stderr io.Writer) (*probe, error) {
	fs := flag.NewFlagSet("tlsprobe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tlsprobe [flags] host[:port]")
		fmt.Fprintln(stderr, "       tlsprobe -targets FILE [-j N] [flags]")
		fmt.Fprintln(stderr, "       tlsprobe -mx DOMAIN [-resolver HOST:PORT] [-port N] [-sts-port N] [-cafile FILE] [-timeout DUR] [-json]")
		fs.PrintDefaults()
	}
	protocol := fs.String("protocol", "", "one of "+supported()+" (default: from the port)")
	modeName := fs.String("mode", "auto", "auto|starttls|implicit: how TLS starts (auto: implicit on 465, 993, 995, 563, 990, 636, 5223)")
	policyName := fs.String("policy", "required", "required|always|opportunistic: what to do when STARTTLS is missing")
	caFile := fs.String("cafile", "", "trust only the PEM roots in `FILE` (default: system roots)")
	serverName := fs.String("servername", "", "`NAME` verified and sent as SNI (default: host)")
	insecure := fs.Bool("insecure", false, "skip certificate verification (the outcome is still reported)")
	timeout := fs.Duration("timeout", 30*time.Second, "bound on the whole exchange")
	ehlo := fs.String("ehlo", "localhost", "`NAME` sent with EHLO/LHLO")
	asJSON := fs.Bool("json", false, "print one JSON object on stdout")
	transcript := fs.Bool("transcript", false, "print the dialogue on stderr")

	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) != 1 {
		return nil, usagef("want exactly one host[:port], got %d arguments", len(positional))
	}

	p := &probe{timeout: *timeout, ehlo: *ehlo, json: *asJSON, transcript: *transcript}
	var err error
	if p.mode, err = starttls.ParseMode(*modeName); err != nil {
		return nil, usageError{err.Error()}
	}
	if p.policy, err = starttls.ParsePolicy(*policyName); err != nil {
		return nil, usageError{err.Error()}
	}
	if p.timeout <= 0 {
		return nil, usagef("-timeout must be positive, got %v", p.timeout)
	}
	if p.ehlo == "" || strings.ContainsAny(p.ehlo, " \t\r\n\x00") {
		return nil, usagef("-ehlo %q: want a domain or an address literal", p.ehlo)
	}
	p.protocol, p.host, p.address, err = resolveAddress(positional[0], *protocol, p.mode)
	if err != nil {
		return nil, err
	}
	entry, ok := protocols()[p.protocol]
	if !ok {
		return nil, usagef("protocol %q is not supported (want one of %s)", p.protocol, supported())
	}
	p.upgrader = entry.upgrader(p.ehlo)
	p.mode = resolveMode(p.mode, entry, p.address)

	p.serverName = *serverName
	if p.serverName == "" {
		p.serverName = p.host
	}
	if net.ParseIP(p.serverName) == nil {
		ascii, err := idna.Lookup.ToASCII(p.serverName)
		if err != nil {
			return nil, usagef("server name %q: %v", p.serverName, err)
		}
		p.serverName = ascii
	}
	setServerName(p.upgrader, p.serverName) // protocols_bin.go
	var roots *x509.CertPool
	if *caFile != "" {
		if roots, err = tlsconf.LoadRoots(*caFile); err != nil {
			return nil, usageError{err.Error()}
		}
	}
	if *insecure {
		p.tlsConfig, p.outcome = tlsconf.Encrypt(p.serverName, roots)
	} else {
		p.tlsConfig = tlsconf.Client(p.serverName, roots)
	}
	return p, nil
}

// resolveAddress splits arg into host and port and fills in what is
// missing: without a port, the protocol's STARTTLS port (its implicit port
// with -mode implicit); without -protocol, the protocol of the port. Either
// must be given.
func resolveAddress(arg, protocol string, mode starttls.Mode) (proto, host, address string, err error) {
	host, port, splitErr := net.SplitHostPort(arg)
	if splitErr != nil {
		// No port: a name, an IPv4 address, or an IPv6 address with or
		// without brackets.
		host, port = strings.TrimSuffix(strings.TrimPrefix(arg, "["), "]"), ""
		if strings.ContainsAny(host, "[]") || (strings.Contains(host, ":") && net.ParseIP(host) == nil) {
			return "", "", "", usagef("bad address %q: %v", arg, splitErr)
		}
	}
	if host == "" {
		return "", "", "", usagef("bad address %q: no host", arg)
	}
	if port == "" {
		if protocol == "" {
			return "", "", "", usagef("%q has no port: give host:port or -protocol", arg)
		}
		entry, ok := protocols()[protocol]
		if !ok {
			return "", "", "", usagef("unknown protocol %q (want one of %s)", protocol, supported())
		}
		n := entry.ports[0]
		if mode == starttls.Implicit {
			if entry.implicit == 0 {
				return "", "", "", usagef("%s has no implicit-TLS port: give host:port", protocol)
			}
			n = entry.implicit
		}
		return protocol, host, net.JoinHostPort(host, strconv.Itoa(n)), nil
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", "", "", usagef("bad port %q", port)
	}
	if protocol == "" {
		if protocol = protocolForPort(n); protocol == "" {
			return "", "", "", usagef("port %d is not a well-known port of %s: give -protocol", n, supported())
		}
	}
	return protocol, host, net.JoinHostPort(host, port), nil
}

// report is the JSON object of the contract. Pointers and slices are null
// when not known.
type report struct {
	Protocol           string     `json:"protocol"`
	Address            string     `json:"address"`
	Mode               string     `json:"mode"`
	Policy             string     `json:"policy"`
	TLS                bool       `json:"tls"`
	Greeting           *string    `json:"greeting"`
	CapabilitiesBefore []string   `json:"capabilities_before"`
	CapabilitiesAfter  []string   `json:"capabilities_after"`
	TLSVersion         *string    `json:"tls_version"`
	CipherSuite        *string    `json:"cipher_suite"`
	ServerName         *string    `json:"server_name"`
	Verified           *bool      `json:"verified"`
	PeerCertificates   []certInfo `json:"peer_certificates"`
	Error              *errorInfo `json:"error"`
	ElapsedMS          float64    `json:"elapsed_ms"`
}

type certInfo struct {
	Subject  string   `json:"subject"`
	Issuer   string   `json:"issuer"`
	DNSNames []string `json:"dns_names"`
	NotAfter string   `json:"not_after"`
}

type errorInfo struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

// run dials, upgrades and closes, and returns the report and exit status.
func (p *probe) run(ctx context.Context, stderr io.Writer) (*report, int) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	cfg := &starttls.Config{TLSConfig: p.tlsConfig, Policy: p.policy, Mode: p.mode}
	if p.transcript {
		cfg.Conn = &starttls.Options{Transcript: stderr}
	}
	tlsConn, res, err := starttls.Dial(ctx, "tcp", p.address, p.upgrader, cfg)
	elapsed := time.Since(start)
	switch {
	case tlsConn != nil:
		closeWithin(tlsConn, closeGrace)
	case res != nil && res.Conn != nil:
		res.Conn.Close()
	}
	if res == nil {
		res = &starttls.Result{}
	}
	rep := p.report(res, err)
	rep.ElapsedMS = math.Round(float64(elapsed.Microseconds())/100) / 10
	switch {
	case err == nil && res.Plaintext:
		return rep, exitPlaintext
	case err == nil && res.TLS:
		return rep, exitTLS
	}
	return rep, exitFailed
}

// closeWithin sends close_notify but gives up after d: crypto/tls would
// otherwise wait up to five seconds for a peer that does not read.
func closeWithin(c *tls.Conn, d time.Duration) {
	done := make(chan struct{})
	go func() {
		c.Close()
		close(done)
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		c.NetConn().Close()
		<-done
	}
}

func (p *probe) report(res *starttls.Result, err error) *report {
	rep := &report{
		Protocol: p.protocol,
		Address:  p.address,
		Mode:     p.mode.String(),
		Policy:   p.policy.String(),
		TLS:      res.TLS,
	}
	var step starttls.Step
	var e *starttls.Error
	if errors.As(err, &e) {
		step = e.Step
	}
	// The greeting is unknown when the failure came before it was read.
	greetingRead := res.Greeting != "" || err == nil ||
		!(step == starttls.StepConnect || step == starttls.StepGreeting ||
			(p.mode == starttls.Implicit && step == starttls.StepHandshake))
	if greetingRead && !greetless(p.protocol) {
		g := res.Greeting
		rep.Greeting = &g
	}
	if res.Before != nil {
		rep.CapabilitiesBefore = append([]string{}, res.Before.List()...)
	}
	if res.After != nil {
		rep.CapabilitiesAfter = append([]string{}, res.After.List()...)
	}
	handshakeTried := res.TLS || step == starttls.StepHandshake
	if handshakeTried {
		name := p.serverName
		rep.ServerName = &name
	}
	var chain []*x509.Certificate
	if res.TLS {
		version := tls.VersionName(res.State.Version)
		suite := tls.CipherSuiteName(res.State.CipherSuite)
		rep.TLSVersion, rep.CipherSuite = &version, &suite
		chain = res.State.PeerCertificates
	}
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		chain = verr.UnverifiedCertificates
	}
	for _, c := range chain {
		rep.PeerCertificates = append(rep.PeerCertificates, certInfo{
			Subject:  c.Subject.String(),
			Issuer:   c.Issuer.String(),
			DNSNames: append([]string{}, c.DNSNames...),
			NotAfter: c.NotAfter.UTC().Format(time.RFC3339),
		})
	}
	switch {
	case p.outcome != nil:
		if checked, ok, _ := p.outcome.Result(); checked {
			rep.Verified = &ok
		}
	case res.TLS:
		v := true
		rep.Verified = &v
	case errkind.IsCertificate(err):
		v := false
		rep.Verified = &v
	}
	if err != nil {
		rep.Error = &errorInfo{Kind: errkind.Of(err), Message: err.Error()}
	}
	return rep
}

// escapeJSONControls rewrites, in encoded JSON, the characters that
// encoding/json leaves raw but a terminal may act on: DEL, the C1 controls
// (U+009B is an 8-bit CSI) and the Unicode format characters (bidi
// overrides, zero-width marks), as \u escapes. They can only occur inside
// strings, so the document decodes to the same values: a capability keeps
// the spelling the server sent. Invalid UTF-8 is already U+FFFD.
func escapeJSONControls(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == 0x7f || (r >= 0x80 && r <= 0x9f) || unicode.Is(unicode.Cf, r) {
			if out == nil {
				out = append(make([]byte, 0, len(b)+16), b[:i]...)
			}
			if r > 0xffff {
				// JSON escapes a rune beyond the BMP as a surrogate pair.
				hi, lo := utf16.EncodeRune(r)
				out = fmt.Appendf(out, `\u%04x\u%04x`, hi, lo)
			} else {
				out = fmt.Appendf(out, `\u%04x`, r)
			}
		} else if out != nil {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	if out == nil {
		return b
	}
	return out
}

// printable returns s as is when it is already safe for a terminal, and
// escaped otherwise. Library errors escape peer text already; this catches
// what crypto/tls quotes from a certificate.
func printable(s string) string {
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return starttls.Escape(s)
		}
	}
	return s
}

// writeText prints the report for a person. Peer text is escaped.
func (r *report) writeText(w io.Writer) {
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-13s %s\n", label+":", fmt.Sprintf(format, args...))
	}
	caps := func(list []string) string {
		if len(list) == 0 {
			return "(none)"
		}
		escaped := make([]string, len(list))
		for i, c := range list {
			escaped[i] = starttls.Escape(c)
		}
		return strings.Join(escaped, ", ")
	}
	line("protocol", "%s", r.Protocol)
	line("address", "%s", r.Address)
	line("mode", "%s", r.Mode)
	line("policy", "%s", r.Policy)
	if r.Greeting != nil {
		line("greeting", "%s", *r.Greeting)
	}
	if r.CapabilitiesBefore != nil {
		line("before TLS", "%s", caps(r.CapabilitiesBefore))
	}
	if r.TLS {
		verified := "verified"
		if r.Verified == nil || !*r.Verified {
			verified = "NOT verified"
		}
		line("TLS", "%s, %s, %s %s", *r.TLSVersion, *r.CipherSuite, verified, *r.ServerName)
	} else {
		line("TLS", "no")
	}
	for i, c := range r.PeerCertificates {
		line(fmt.Sprintf("cert %d", i), "%s, issuer %s, names %s, not after %s",
			starttls.Escape(c.Subject), starttls.Escape(c.Issuer), starttls.Escape(strings.Join(c.DNSNames, " ")), c.NotAfter)
	}
	if r.CapabilitiesAfter != nil {
		line("after TLS", "%s", caps(r.CapabilitiesAfter))
	}
	switch {
	case r.Error != nil:
		line("result", "FAILED (%s): %s", r.Error.Kind, printable(r.Error.Message))
	case r.TLS:
		line("result", "ok")
	default:
		line("result", "PLAINTEXT: STARTTLS was not advertised; continued without TLS (opportunistic policy)")
	}
	line("elapsed", "%.1f ms", r.ElapsedMS)
}
