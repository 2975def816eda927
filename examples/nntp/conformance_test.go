package nntp_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"github.com/tlsup/tlsup/examples/nntp"
	"github.com/tlsup/tlsup/internal/clienttest"
	"github.com/tlsup/tlsup/starttls"
)

// conformance is NNTP's dialogue for the client conformance suite that
// smtp, imap and pop3 run too: the core's guarantees (hang-up, silence and
// cancel at each step, certificates, injection, modes, redaction) hold for
// a protocol plugged in from outside the core.
var conformance = clienttest.Protocol{
	Name:         "nntp",
	ImplicitPort: nntp.ImplicitPort,
	Upgrade: func(ctx context.Context, conn net.Conn, cfg *starttls.Config) (*tls.Conn, *starttls.Result, error) {
		return starttls.Upgrade(ctx, conn, &nntp.Upgrader{}, cfg)
	},
	Dial: func(ctx context.Context, network, addr string, cfg *starttls.Config) (*tls.Conn, *starttls.Result, error) {
		return starttls.Dial(ctx, network, addr, &nntp.Upgrader{}, cfg)
	},
	Greeting: `S: 200 news.example.test ready`,
	Ask:      `C: CAPABILITIES`,
	Offer: `
		S: 101 Capability list:
		S: VERSION 2
		S: STARTTLS
		S: .
	`,
	StartTLS: `C: STARTTLS`,
	GoAhead:  `S: 382 Begin TLS negotiation now`,
	After: `
		S: 101 Capability list:
		S: VERSION 2
		S: AUTHINFO USER
		S: .
	`,
	AfterList: []string{"VERSION 2", "AUTHINFO USER"},
	Forged:    "101 Capability list:",
	Auth: []clienttest.Credential{
		{Line: "AUTHINFO USER alice", Reply: "381 Password required", Recorded: "AUTHINFO USER alice"},
		{Line: "AUTHINFO PASS hunter2", Reply: "281 Authentication accepted", Secret: "hunter2", Recorded: "AUTHINFO PASS <redacted>"},
	},
}

func TestClientConformance(t *testing.T) { clienttest.Run(t, conformance) }
