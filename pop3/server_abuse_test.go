package pop3_test

import (
	"testing"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/internal/servertest"
	"github.com/tlsup/tlsup/pop3"
	"github.com/tlsup/tlsup/starttls"
)

// TestServerAbuse: hostile clients are bounded by the front's limits (see
// servertest.Abuse).
func TestServerAbuse(t *testing.T) {
	servertest.Abuse(t, scripttest.NewPKI(t), servertest.Hostile{
		New: func(opts starttls.ServerOptions) servertest.ServeFunc {
			return (&pop3.Server{Options: opts}).Serve
		},
		Greeting: "+OK ",
		StartTLS: "STLS", GoAhead: pop3.ReplyGoAhead,
		Noop: "NOOP", NoopReply: "+OK",
		Refused: "USER alice",
	})
}
