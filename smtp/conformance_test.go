package smtp_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"github.com/tlsup/tlsup/internal/clienttest"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
)

// options maps the suite's config onto smtp's options.
func options(cfg *starttls.Config) *smtp.Options {
	if cfg == nil {
		return nil
	}
	return &smtp.Options{TLSConfig: cfg.TLSConfig, Policy: cfg.Policy, Mode: cfg.Mode, Conn: cfg.Conn}
}

// conformance is SMTP's dialogue for the client conformance suite.
var conformance = clienttest.Protocol{
	Name:            "smtp",
	ImplicitPort:    465,
	ImplicitService: "submissions",
	Service:         "smtp",
	Upgrade: func(ctx context.Context, conn net.Conn, cfg *starttls.Config) (*tls.Conn, *starttls.Result, error) {
		return smtp.Upgrade(ctx, conn, options(cfg))
	},
	Dial: func(ctx context.Context, network, addr string, cfg *starttls.Config) (*tls.Conn, *starttls.Result, error) {
		return smtp.Dial(ctx, network, addr, options(cfg))
	},
	Greeting: `S: 220 mx.example.test ESMTP ready`,
	Ask:      `C: EHLO localhost`,
	Offer: `
		S: 250-mx.example.test
		S: 250-PIPELINING
		S: 250 STARTTLS
	`,
	StartTLS: `C: STARTTLS`,
	GoAhead:  `S: 220 2.0.0 Ready to start TLS`,
	After: `
		S: 250-mx.example.test
		S: 250-SIZE 52428800
		S: 250 AUTH PLAIN LOGIN
	`,
	AfterList: []string{"SIZE 52428800", "AUTH PLAIN LOGIN"},
	Forged:    "250 AUTH PLAIN",
	Auth: []clienttest.Credential{
		{Line: "AUTH PLAIN AGFsaWNlAGh1bnRlcjI=", Reply: "235 2.7.0 Authentication successful", Secret: "AGFsaWNlAGh1bnRlcjI=", Recorded: "AUTH PLAIN <redacted>"},
		// Words separated by a tab, which some servers accept.
		{Line: "AUTH\tLOGIN\taHVudGVyMg==", Reply: "503 5.5.1 already authenticated", Secret: "aHVudGVyMg==", Recorded: `AUTH\tLOGIN <redacted>`},
	},
}

func TestClientConformance(t *testing.T) { clienttest.Run(t, conformance) }
