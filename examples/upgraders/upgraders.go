// Package upgraders turns a protocol name into a tlsup Upgrader, for fleet
// tools that read the protocol from configuration or a target list and
// should need no switch of their own:
//
//	u, err := upgraders.New("imap", nil)
//	tlsConn, res, err := starttls.Dial(ctx, "tcp", addr, u, cfg)
//
// It is a plain function over the module's protocols (smtp, lmtp, imap,
// pop3), with no registry and no state: a protocol added to the module
// adds its case here. Mode Auto still works, since each Upgrader knows its
// implicit-TLS port (starttls.ImplicitPorter).
package upgraders

import (
	"fmt"
	"strings"

	"github.com/tlsup/tlsup/imap"
	"github.com/tlsup/tlsup/pop3"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
)

// Options configures the Upgraders New makes. A nil *Options means the
// defaults.
type Options struct {
	// LocalName is the name SMTP and LMTP send with EHLO/LHLO; other
	// protocols ignore it. Zero means "localhost".
	LocalName string
}

// names are the protocol names New knows, sorted.
var names = [...]string{"imap", "lmtp", "pop3", "smtp"}

// Names returns the protocol names New knows, sorted.
func Names() []string { return append([]string(nil), names[:]...) }

// New returns a fresh Upgrader for the protocol name (ASCII case ignored):
// "smtp", "lmtp", "imap" or "pop3". An unknown name is an error that lists
// the known ones.
func New(name string, opts *Options) (starttls.Upgrader, error) {
	var local string
	if opts != nil {
		local = opts.LocalName
	}
	switch strings.ToLower(name) {
	case "smtp":
		return &smtp.Upgrader{LocalName: local}, nil
	case "lmtp":
		return &smtp.Upgrader{LocalName: local, LMTP: true}, nil
	case "imap":
		return &imap.Upgrader{}, nil
	case "pop3":
		return &pop3.Upgrader{}, nil
	}
	return nil, fmt.Errorf("upgraders: unknown protocol %q (want one of %s)", starttls.Escape(name), strings.Join(names[:], ", "))
}
