package sieve_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"github.com/tlsup/tlsup/examples/sieve"
	"github.com/tlsup/tlsup/internal/clienttest"
	"github.com/tlsup/tlsup/starttls"
)

// conformance is ManageSieve's dialogue for the client conformance suite
// that smtp, imap, pop3, nntp and ftp run too. The capabilities come in
// the greeting and again, unasked, after the handshake (RFC 5804,
// Section 2.2): the client asks for them only in Mode Implicit.
var conformance = clienttest.Protocol{
	Name: "sieve",
	Upgrade: func(ctx context.Context, conn net.Conn, cfg *starttls.Config) (*tls.Conn, *starttls.Result, error) {
		return starttls.Upgrade(ctx, conn, &sieve.Upgrader{}, cfg)
	},
	Dial: func(ctx context.Context, network, addr string, cfg *starttls.Config) (*tls.Conn, *starttls.Result, error) {
		return starttls.Dial(ctx, network, addr, &sieve.Upgrader{}, cfg)
	},
	Greeting:  greeting,
	Ask:       "C: CAPABILITY",
	Unasked:   true,
	StartTLS:  "C: STARTTLS",
	GoAhead:   srv(`OK "Begin TLS negotiation now."`),
	After:     capsAfter,
	AfterList: after,
	// What a man in the middle sends behind the go-ahead: the OK that
	// ends a forged capability list.
	Forged: `OK "TLS negotiation successful."`,
	Auth: []clienttest.Credential{
		{Line: `AUTHENTICATE "PLAIN" "AGFsaWNlAGh1bnRlcjI="`, Reply: `OK "Logged in."`,
			Secret: "AGFsaWNlAGh1bnRlcjI=", Recorded: `AUTHENTICATE "PLAIN" <redacted>`},
	},
}

func TestClientConformance(t *testing.T) { clienttest.Run(t, conformance) }
