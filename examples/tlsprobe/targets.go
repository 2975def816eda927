package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/tlsup/tlsup/starttls"
)

// Many targets (contract, "Many targets and operator facts"):
//
//	tlsprobe -targets FILE [-j N] [other flags]
//
// FILE holds one [protocol://]host[:port] a line; blank lines and # comments
// are skipped. Each line is probed as if it were the one host of a
// single-target run with the other flags, its scheme setting -protocol
// (imaps, smtps, pop3s also -mode implicit). Output is in input order:
// JSON Lines with -json (each object with "target", the line as given),
// text blocks otherwise.

// defaultJobs is -j's default.
const defaultJobs = 8

// facts is what the contract adds to every JSON object, single target too:
// the facts an operator asks first.
type facts struct {
	// Target is the line as given, with -targets only.
	Target *string `json:"target,omitempty"`
	*report
	StartTLSOffered *bool    `json:"starttls_offered"`
	Step            *string  `json:"step"`
	Warnings        []string `json:"warnings"`
}

// Warnings of the contract.
const (
	warnPlaintextAuth = "plaintext-auth-offered"
	warnExpiresSoon   = "certificate-expires-soon"
	warnNoPFS         = "no-forward-secrecy"
	warnStartTLSAgain = "starttls-after-tls"
)

// expiresSoon is how close a certificate's end must be for a warning.
const expiresSoon = 14 * 24 * time.Hour

// runWithFacts is p.run with the operator facts: it watches the upgrade
// through a trace hook for the result and error the report was made from.
func (p *probe) runWithFacts(ctx context.Context, stderr io.Writer) (*facts, int) {
	var res *starttls.Result
	var upErr error
	ctx = starttls.WithClientTrace(ctx, &starttls.ClientTrace{
		UpgradeDone: func(r *starttls.Result, err error) { res, upErr = r, err },
	})
	rep, code := p.run(ctx, stderr)
	return p.facts(rep, res, upErr), code
}

// facts derives the operator facts from the upgrade's result and error.
func (p *probe) facts(rep *report, res *starttls.Result, err error) *facts {
	f := &facts{report: rep, Warnings: []string{}}
	var e *starttls.Error
	if errors.As(err, &e) && e.Step != "" {
		step := string(e.Step)
		if e.Step == starttls.StepConfig {
			// The contract's steps start at connect; a configuration
			// refused before any I/O failed before the connect.
			step = string(starttls.StepConnect)
		}
		f.Step = &step
	}
	if res == nil {
		return f
	}
	keyword := p.upgrader.Keyword()
	if res.Before != nil && p.mode != starttls.Implicit {
		if keyword != "" {
			offered := p.offered(res.Before)
			f.StartTLSOffered = &offered
		} else if offered, known := goAheadCame(res, err); known {
			// Nothing is advertised (PostgreSQL, LDAP): the answer to
			// the upgrade request is the offer.
			f.StartTLSOffered = &offered
		}
		if authBeforeTLS(p.protocol, res.Before) {
			f.Warnings = append(f.Warnings, warnPlaintextAuth)
		}
	}
	if res.TLS {
		if certs := res.State.PeerCertificates; len(certs) > 0 && time.Until(certs[0].NotAfter) < expiresSoon {
			f.Warnings = append(f.Warnings, warnExpiresSoon)
		}
		if res.State.Version <= tls.VersionTLS12 && !forwardSecret(res.State.CipherSuite) {
			f.Warnings = append(f.Warnings, warnNoPFS)
		}
	}
	// FTP's FEAT lists the commands the server implements (RFC 2389),
	// AUTH TLS inside TLS included (vsftpd does): no sign of a stale list.
	if keyword != "" && p.protocol != "ftp" && res.After != nil && p.offered(res.After) {
		f.Warnings = append(f.Warnings, warnStartTLSAgain)
	}
	return f
}

// offered reports whether caps advertise the upgrade, as the core decides
// it: through the Upgrader's OfferChecker (FTP's "AUTH TLS"), or its
// keyword.
func (p *probe) offered(caps *starttls.Capabilities) bool {
	if o, ok := p.upgrader.(starttls.OfferChecker); ok {
		return o.Offered(caps)
	}
	return caps.Has(p.upgrader.Keyword())
}

// goAheadCame says, for a protocol that advertises nothing, whether the
// server agreed to the upgrade request: true once it did (TLS, or a
// handshake or later step failed), false when it declined
// (starttls.ErrNotOffered, or the session went on in plaintext), unknown
// when the exchange ended before its answer.
func goAheadCame(res *starttls.Result, err error) (offered, known bool) {
	var e *starttls.Error
	switch {
	case res.Plaintext || errors.Is(err, starttls.ErrNotOffered):
		return false, true
	case res.TLS:
		return true, true
	case errors.As(err, &e) && (e.Step == starttls.StepHandshake || e.Step == starttls.StepRediscover):
		return true, true
	}
	return false, false
}

// authBeforeTLS reports whether capabilities seen before TLS offer to take
// a password, in the protocol's own terms: SMTP and LMTP AUTH; IMAP AUTH=
// atoms; POP3 SASL or USER; ManageSieve SASL with mechanisms (Dovecot
// sends an empty one before TLS); NNTP AUTHINFO USER or SASL, or a SASL
// line; XMPP SASL mechanisms. FTP's FEAT never lists USER/PASS (and its
// AUTH is the upgrade itself); PostgreSQL and LDAP advertise nothing.
func authBeforeTLS(protocol string, caps *starttls.Capabilities) bool {
	for _, entry := range caps.List() {
		keyword, rest, _ := strings.Cut(entry, " ")
		keyword = starttls.UpperASCII(keyword)
		hasArgs := strings.TrimSpace(rest) != ""
		switch protocol {
		case "smtp", "lmtp":
			if keyword == "AUTH" || strings.HasPrefix(keyword, "AUTH=") {
				return true
			}
		case "imap":
			if strings.HasPrefix(keyword, "AUTH=") {
				return true
			}
		case "pop3":
			if keyword == "SASL" || keyword == "USER" {
				return true
			}
		case "sieve":
			if keyword == "SASL" && hasArgs {
				return true
			}
		case "nntp":
			if (keyword == "AUTHINFO" || keyword == "SASL") && hasArgs {
				return true
			}
		case "xmpp":
			if keyword == "MECHANISMS" && hasArgs {
				return true
			}
		}
	}
	return false
}

// forwardSecret reports whether a TLS 1.2 suite has an ephemeral key
// exchange (ECDHE or DHE); TLS 1.3 suites always do.
func forwardSecret(suite uint16) bool {
	name := tls.CipherSuiteName(suite)
	return strings.HasPrefix(name, "TLS_ECDHE_") || strings.HasPrefix(name, "TLS_DHE_")
}

// writeText prints the report and the facts for a person.
func (f *facts) writeText(w io.Writer) {
	if f.Target != nil {
		fmt.Fprintf(w, "%-13s %s\n", "target:", starttls.Escape(*f.Target))
	}
	f.report.writeText(w)
	if f.Step != nil {
		fmt.Fprintf(w, "%-13s %s\n", "step:", *f.Step)
	}
	if len(f.Warnings) > 0 {
		fmt.Fprintf(w, "%-13s %s\n", "warnings:", strings.Join(f.Warnings, ", "))
	}
}

// encodeJSON writes v as JSON with terminal controls escaped, indented for
// one target, one line each for many.
func encodeJSON(w io.Writer, v any, indent bool) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if indent {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(escapeJSONControls(buf.Bytes()))
	return err
}

// targetsFlags takes -targets and -j out of args. It returns ok false when
// there is no -targets flag.
func targetsFlags(args []string) (file string, jobs int, rest []string, ok bool, err error) {
	jobs = defaultJobs
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !strings.HasPrefix(args[i], "-") || args[i] == "-" || args[i] == "--" || (name != "targets" && name != "j") {
			rest = append(rest, args[i])
			continue
		}
		if !hasValue {
			if i+1 == len(args) {
				return "", 0, nil, true, usagef("flag needs an argument: -%s", name)
			}
			i++
			value = args[i]
		}
		switch name {
		case "targets":
			file, ok = value, true
		case "j":
			if jobs, err = strconv.Atoi(value); err != nil || jobs < 1 || jobs > 4096 {
				return "", 0, nil, true, usagef("-j %q: want a number from 1 to 4096", value)
			}
		}
	}
	if !ok && jobs != defaultJobs {
		return "", 0, nil, true, usagef("-j needs -targets")
	}
	return file, jobs, rest, ok, nil
}

// target is one line of the targets file, parsed as a single-target run.
type target struct {
	line  string
	probe *probe
}

// schemes maps a target's scheme to its protocol and whether it means
// implicit TLS; a protocol's own name (sieve://, xmpp://) needs no entry.
var schemes = map[string]struct {
	protocol string
	implicit bool
}{
	"smtp": {"smtp", false}, "smtps": {"smtp", true},
	"lmtp": {"lmtp", false}, "imap": {"imap", false}, "imaps": {"imap", true},
	"pop3": {"pop3", false}, "pop3s": {"pop3", true},
	// Beyond the contract's three, the registered and usual schemes of
	// the other protocols' implicit ports, and libpq's URI scheme; every
	// other protocol name is a scheme of its own.
	"nntps": {"nntp", true}, "ftps": {"ftp", true}, "ldaps": {"ldap", true},
	"postgresql": {"postgres", false},
}

// readTargets parses the file: each line becomes the args of a
// single-target run (the common flags, then its scheme's, then the host),
// so that every flag means what it means for one target.
func readTargets(r io.Reader, common []string, stderr io.Writer) ([]target, error) {
	var targets []target
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 4096)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		args := append([]string(nil), common...)
		host := line
		if scheme, rest, ok := strings.Cut(line, "://"); ok {
			// ASCII case only: strings.ToLower would take "\u0130MAPS"
			// (a capital I with a dot) for imaps.
			scheme = lowerASCII(scheme)
			s, known := schemes[scheme]
			if !known {
				if _, isProtocol := protocols()[scheme]; !isProtocol {
					return nil, usagef("line %d: unknown scheme %q", n, starttls.Escape(scheme))
				}
				s.protocol = scheme
			}
			args = append(args, "-protocol", s.protocol)
			if s.implicit {
				args = append(args, "-mode", "implicit")
			}
			host = strings.TrimSuffix(rest, "/")
		}
		p, err := parse(append(args, host), io.Discard)
		if err != nil {
			// The flag package and net.SplitHostPort quote the line raw.
			msg := err.Error()
			if strings.IndexFunc(msg, unicode.IsControl) >= 0 {
				msg = starttls.Escape(msg)
			}
			return nil, usagef("line %d (%s): %s", n, starttls.Escape(line), msg)
		}
		targets = append(targets, target{line: line, probe: p})
	}
	if err := sc.Err(); err != nil {
		return nil, usagef("targets: %v", err)
	}
	if len(targets) == 0 {
		return nil, usagef("targets: no target in the file")
	}
	return targets, nil
}

// lowerASCII returns s with its ASCII letters lower-cased and every other
// byte unchanged.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

// runTargets is the whole program with -targets: it probes every target,
// jobs at a time, prints the results in input order as they become
// available, and returns the exit status of the contract.
func runTargets(ctx context.Context, file string, jobs int, common []string, stdout, stderr io.Writer) int {
	// The common flags, checked once with a stand-in host: a host of
	// their own makes two, a usage error.
	if _, err := parse(append(append([]string(nil), common...), "127.0.0.1:25"), stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitTLS
		}
		fmt.Fprintf(stderr, "tlsprobe: %v\n", err)
		return exitUsage
	}
	jsonOut := false
	for _, a := range common {
		if a == "-json" || a == "--json" || a == "-json=true" {
			jsonOut = true
		}
	}
	f, err := os.Open(file)
	if err != nil {
		fmt.Fprintf(stderr, "tlsprobe: %v\n", err)
		return exitUsage
	}
	targets, err := readTargets(f, common, stderr)
	f.Close()
	if err != nil {
		fmt.Fprintf(stderr, "tlsprobe: %v\n", err)
		return exitUsage
	}
	if targets[0].probe.tlsConfig.InsecureSkipVerify {
		fmt.Fprintln(stderr, "tlsprobe: warning: -insecure: the server certificates are not verified")
	}

	results := make([]*facts, len(targets))
	codes := make([]int, len(targets))
	done := make([]chan struct{}, len(targets))
	for i := range done {
		done[i] = make(chan struct{})
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(jobs, len(targets)) {
		wg.Go(func() {
			for i := range next {
				results[i], codes[i] = targets[i].probe.runWithFacts(ctx, stderr)
				line := targets[i].line
				results[i].Target = &line
				close(done[i])
			}
		})
	}
	go func() {
		for i := range targets {
			next <- i
		}
		close(next)
	}()
	failed, plaintext := false, false
	for i := range targets {
		<-done[i]
		if jsonOut {
			if err := encodeJSON(stdout, results[i], false); err != nil {
				fmt.Fprintf(stderr, "tlsprobe: %v\n", err)
				failed = true
			}
		} else {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			results[i].writeText(stdout)
		}
		results[i] = nil // printed: let it go
		switch codes[i] {
		case exitPlaintext:
			plaintext = true
		case exitTLS:
		default:
			failed = true
		}
	}
	wg.Wait()
	switch {
	case failed:
		return exitFailed
	case plaintext:
		return exitPlaintext
	}
	return exitTLS
}
