package smtp_test

import (
	"testing"

	"github.com/tlsup/tlsup/internal/scripttest"
	"github.com/tlsup/tlsup/internal/servertest"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
)

// TestServerAbuse: hostile clients are bounded by the front's limits (see
// servertest.Abuse).
func TestServerAbuse(t *testing.T) {
	servertest.Abuse(t, scripttest.NewPKI(t), servertest.Hostile{
		New: func(opts starttls.ServerOptions) servertest.ServeFunc {
			return (&smtp.Server{Options: opts}).Serve
		},
		Greeting: "220 ",
		StartTLS: "STARTTLS", GoAhead: smtp.ReplyGoAhead,
		Noop: "NOOP", NoopReply: "250 2.0.0 OK",
		Refused: "MAIL FROM:<a@example.test>",
	})
}
