package imap_test

import (
	"testing"

	"github.com/tlsup/tlsup/imap"
	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/internal/servertest"
	"github.com/tlsup/tlsup/starttls"
)

// TestServerAbuse: hostile clients are bounded by the front's limits (see
// servertest.Abuse).
func TestServerAbuse(t *testing.T) {
	servertest.Abuse(t, scripttest.NewPKI(t), servertest.Hostile{
		New: func(opts starttls.ServerOptions) servertest.ServeFunc {
			return (&imap.Server{Options: opts}).Serve
		},
		Greeting: "* OK ",
		StartTLS: "a STARTTLS", GoAhead: "a OK " + imap.TextGoAhead,
		Noop: "a NOOP", NoopReply: "a OK NOOP completed",
		Refused: "a LOGIN alice hunter2",
	})
}
