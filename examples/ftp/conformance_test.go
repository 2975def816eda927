package ftp_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"github.com/tlsup/tlsup/examples/ftp"
	"github.com/tlsup/tlsup/internal/clienttest"
	"github.com/tlsup/tlsup/starttls"
)

// conformance is FTP's dialogue for the client conformance suite that
// smtp, imap and pop3 run too: the core's guarantees (hang-up, silence and
// cancel at each step, certificates, injection, modes, redaction) hold for
// a protocol plugged in from outside the core.
var conformance = clienttest.Protocol{
	Name:         "ftp",
	ImplicitPort: ftp.ImplicitPort,
	Upgrade: func(ctx context.Context, conn net.Conn, cfg *starttls.Config) (*tls.Conn, *starttls.Result, error) {
		return starttls.Upgrade(ctx, conn, &ftp.Upgrader{}, cfg)
	},
	Dial: func(ctx context.Context, network, addr string, cfg *starttls.Config) (*tls.Conn, *starttls.Result, error) {
		return starttls.Dial(ctx, network, addr, &ftp.Upgrader{}, cfg)
	},
	Greeting: `S: 220 ftp.example.test ready`,
	Ask:      `C: FEAT`,
	Offer: `
		S: 211-Features:
		S: " AUTH TLS\r\n"
		S: " PBSZ\r\n"
		S: 211 End
	`,
	StartTLS: `C: AUTH TLS`,
	GoAhead:  `S: 234 Proceed with negotiation.`,
	After: `
		S: 211-Features:
		S: " PBSZ\r\n"
		S: " PROT\r\n"
		S: 211 End
	`,
	AfterList: []string{"PBSZ", "PROT"},
	Forged:    "211 End",
	Auth: []clienttest.Credential{
		{Line: "USER alice", Reply: "331 Please specify the password.", Secret: "alice", Recorded: "USER <redacted>"},
		{Line: "PASS hunter2", Reply: "230 Login successful.", Secret: "hunter2", Recorded: "PASS <redacted>"},
	},
}

func TestClientConformance(t *testing.T) { clienttest.Run(t, conformance) }
