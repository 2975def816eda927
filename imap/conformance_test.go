package imap_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"github.com/tlsup/tlsup/imap"
	"github.com/tlsup/tlsup/internal/clienttest"
	"github.com/tlsup/tlsup/starttls"
)

// options maps the suite's config onto imap's options.
func options(cfg *starttls.Config) *imap.Options {
	if cfg == nil {
		return nil
	}
	return &imap.Options{TLSConfig: cfg.TLSConfig, Policy: cfg.Policy, Mode: cfg.Mode, Conn: cfg.Conn}
}

// conformance is IMAP's dialogue for the client conformance suite.
var conformance = clienttest.Protocol{
	Name:            "imap",
	ImplicitPort:    993,
	ImplicitService: "imaps",
	Service:         "imap2",
	Upgrade: func(ctx context.Context, conn net.Conn, cfg *starttls.Config) (*tls.Conn, *starttls.Result, error) {
		return imap.Upgrade(ctx, conn, options(cfg))
	},
	Dial: func(ctx context.Context, network, addr string, cfg *starttls.Config) (*tls.Conn, *starttls.Result, error) {
		return imap.Dial(ctx, network, addr, options(cfg))
	},
	Greeting: `S: * OK IMAP4rev2 server ready`,
	Ask:      `C: {t} CAPABILITY`,
	Offer: `
		S: * CAPABILITY IMAP4rev2 IMAP4rev1 STARTTLS LOGINDISABLED
		S: {t} OK CAPABILITY completed
	`,
	StartTLS: `C: {s} STARTTLS`,
	GoAhead:  `S: {s} OK Begin TLS negotiation now`,
	After: `
		S: * CAPABILITY IMAP4rev2 IMAP4rev1 AUTH=PLAIN AUTH=SCRAM-SHA-256
		S: {t} OK CAPABILITY completed
	`,
	AfterList: []string{"IMAP4rev2", "IMAP4rev1", "AUTH=PLAIN", "AUTH=SCRAM-SHA-256"},
	Forged:    "* CAPABILITY IMAP4rev1 AUTH=PLAIN",
	Auth: []clienttest.Credential{
		{Line: "a1 LOGIN alice hunter2", Reply: "a1 NO [AUTHENTICATIONFAILED] try again", Secret: "hunter2", Recorded: "a1 LOGIN <redacted>"},
		{Line: "a3\tLOGIN\talice\thunter3", Reply: "a3 BAD tabs are not separators", Secret: "hunter3", Recorded: `a3\tLOGIN <redacted>`},
		{Line: "a2 AUTHENTICATE PLAIN AGFsaWNlAGh1bnRlcjI=", Reply: "a2 OK done", Secret: "AGFsaWNlAGh1bnRlcjI=", Recorded: "a2 AUTHENTICATE PLAIN <redacted>"},
	},
}

func TestClientConformance(t *testing.T) { clienttest.Run(t, conformance) }
