package pop3_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"github.com/tlsup/tlsup/internal/clienttest"
	"github.com/tlsup/tlsup/pop3"
	"github.com/tlsup/tlsup/starttls"
)

// options maps the suite's config onto pop3's options.
func options(cfg *starttls.Config) *pop3.Options {
	if cfg == nil {
		return nil
	}
	return &pop3.Options{TLSConfig: cfg.TLSConfig, Policy: cfg.Policy, Mode: cfg.Mode, Conn: cfg.Conn}
}

// conformance is POP3's dialogue for the client conformance suite.
var conformance = clienttest.Protocol{
	Name:            "pop3",
	ImplicitPort:    995,
	ImplicitService: "pop3s",
	Service:         "pop3",
	Upgrade: func(ctx context.Context, conn net.Conn, cfg *starttls.Config) (*tls.Conn, *starttls.Result, error) {
		return pop3.Upgrade(ctx, conn, options(cfg))
	},
	Dial: func(ctx context.Context, network, addr string, cfg *starttls.Config) (*tls.Conn, *starttls.Result, error) {
		return pop3.Dial(ctx, network, addr, options(cfg))
	},
	Greeting: `S: +OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>`,
	Ask:      `C: CAPA`,
	Offer: `
		S: +OK Capability list follows
		S: TOP
		S: UIDL
		S: RESP-CODES
		S: STLS
		S: .
	`,
	StartTLS: `C: STLS`,
	GoAhead:  `S: +OK Begin TLS negotiation`,
	After: `
		S: +OK Capability list follows
		S: TOP
		S: USER
		S: SASL PLAIN LOGIN
		S: .
	`,
	AfterList: []string{"TOP", "USER", "SASL PLAIN LOGIN"},
	Forged:    "+OK forged",
	Auth: []clienttest.Credential{
		{Line: "USER alice", Reply: "+OK", Recorded: "USER alice"},
		{Line: "PASS hunter2", Reply: "+OK maildrop locked and ready", Secret: "hunter2", Recorded: "PASS <redacted>"},
		{Line: "PASS\thunter3", Reply: "-ERR already authenticated", Secret: "hunter3", Recorded: "PASS <redacted>"},
		{Line: "AUTH PLAIN AGFsaWNlAGh1bnRlcjI=", Reply: "-ERR already authenticated", Secret: "AGFsaWNlAGh1bnRlcjI=", Recorded: "AUTH PLAIN <redacted>"},
		{Line: "APOP alice c4c9334bac560ecc979e58001b3e22fb", Reply: "-ERR already authenticated", Secret: "c4c9334bac560ecc979e58001b3e22fb", Recorded: "APOP <redacted>"},
	},
}

func TestClientConformance(t *testing.T) { clienttest.Run(t, conformance) }
