package dane_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/tlsup/tlsup/internal/dnstest"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/smtp/dane"
	"github.com/tlsup/tlsup/smtp/tlsrpt"
	"github.com/tlsup/tlsup/starttls"
	"github.com/tlsup/tlsup/tlsconf"
)

// Delivering to an MX under DANE: look the policy up, build the config,
// upgrade, and read which record matched. A wrong record published first
// shows in the failures.
func ExamplePolicy_TLSConfig() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The receiving MX, with a certificate no PKIX root vouches for.
	ca, _ := tlsconf.NewCA("private CA")
	cert, _ := ca.Issue("mx.example.test")
	srv := &smtp.Server{Options: starttls.ServerOptions{TLSConfig: tlsconf.Server(cert), Hostname: "mx.example.test"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		if tc, err := srv.Serve(ctx, conn); err == nil {
			tc.ReadLine() // the client's EHLO inside TLS
			smtp.WriteReply(tc, 250, "mx.example.test", "PIPELINING")
			tc.Close()
		}
	}()

	// Its zone, signed: what a validating resolver answers with AD set.
	dns, err := dnstest.Start()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dns.Close()
	wrong := tlsconf.NewTLSA(tlsconf.UsageDANEEE, tlsconf.SelectorSPKI, tlsconf.MatchSHA256, ca.Certificate())
	good := tlsconf.NewTLSA(tlsconf.UsageDANEEE, tlsconf.SelectorSPKI, tlsconf.MatchSHA256, cert.Leaf)
	dns.Set("mx.example.test", dnsmessage.TypeA, dnstest.Answer{Records: dnstest.A("127.0.0.1"), Secure: true})
	dns.Set("mx.example.test", dnsmessage.TypeAAAA, dnstest.Answer{Secure: true})
	dns.Set("_25._tcp.mx.example.test", dnstest.TypeTLSA, dnstest.Answer{Secure: true, Records: []dnsmessage.Resource{
		dnstest.TLSA(wrong.Usage, wrong.Selector, wrong.MatchingType, wrong.Data),
		dnstest.TLSA(good.Usage, good.Selector, good.MatchingType, good.Data),
	}})

	r := &dane.Resolver{Addr: dns.Addr}
	policy, err := r.Lookup(ctx, "mx.example.test", 25)
	switch {
	case errors.Is(err, dane.ErrDefer):
		fmt.Println("defer:", err) // never deliver without DANE here
		return
	case err != nil:
		fmt.Println(err)
		return
	case !policy.DANE:
		fmt.Println("no DANE:", policy.Reason) // MTA-STS or the local policy decides
		return
	}
	cfg, result, err := policy.TLSConfig(nil)
	if errors.Is(err, tlsconf.ErrNoUsableRecords) {
		fmt.Println("TLS required, unauthenticated") // tlsconf.Encrypt
		return
	}
	// Dial an address the lookup returned (port 25 in real life); the
	// name verified and sent as SNI is in cfg.
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	tlsConn, res, err := smtp.Dial(ctx, "tcp", net.JoinHostPort(policy.Addrs[0].String(), port),
		&smtp.Options{TLSConfig: cfg, Mode: starttls.StartTLS, Policy: starttls.Required})
	if err != nil {
		rt, reason := tlsrpt.Classify(res, err)
		fmt.Println("failed:", rt, reason)
		return
	}
	defer tlsConn.Close()
	matched, _ := result.Matched()
	fmt.Println("SNI:", res.State.ServerName)
	fmt.Println("matched:", matched.Usage, matched.Selector, matched.MatchingType)
	for _, f := range result.Failures() {
		fmt.Println("failed record:", f.Record.Usage, f.Record.Selector, f.Record.MatchingType, f.Err)
	}
	// Output:
	// SNI: mx.example.test
	// matched: 3 1 1
	// failed record: 3 1 1 certificate does not match
}
