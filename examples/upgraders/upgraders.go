// Package upgraders turns a protocol name into a tlsup Upgrader, for fleet
// tools that read the protocol from configuration or a target list and
// should need no switch of their own:
//
//	u, err := upgraders.New("imap", nil)
//	tlsConn, res, err := starttls.Dial(ctx, "tcp", addr, u, cfg)
//
// It is a plain function over every protocol the module knows: the
// library's (smtp, lmtp, imap, pop3) and the examples' (sieve, nntp, ftp,
// postgres, ldap, xmpp), with no registry and no state: a protocol added
// to the module adds its case here. Mode Auto still works, since each
// Upgrader with an implicit-TLS port knows it (starttls.ImplicitPorter).
package upgraders

import (
	"fmt"
	"strings"

	"github.com/tlsup/tlsup/examples/ftp"
	"github.com/tlsup/tlsup/examples/ldap"
	"github.com/tlsup/tlsup/examples/nntp"
	"github.com/tlsup/tlsup/examples/postgres"
	"github.com/tlsup/tlsup/examples/sieve"
	"github.com/tlsup/tlsup/examples/xmpp"
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
	// Domain is the XMPP domain the stream is opened to (xmpp.Upgrader's
	// Domain, usually the name the certificate is verified against);
	// other protocols ignore it. Zero makes the XMPP Upgrader fail with
	// starttls.ErrConfig before it sends anything.
	Domain string
}

// names are the protocol names New knows, sorted.
var names = [...]string{"ftp", "imap", "ldap", "lmtp", "nntp", "pop3", "postgres", "sieve", "smtp", "xmpp"}

// Names returns the protocol names New knows, sorted.
func Names() []string { return append([]string(nil), names[:]...) }

// New returns a fresh Upgrader for the protocol name (ASCII case ignored),
// one of [Names]: "smtp", "lmtp", "imap", "pop3", "sieve" (ManageSieve),
// "nntp", "ftp", "postgres", "ldap" or "xmpp". An unknown name is an
// error that lists the known ones.
func New(name string, opts *Options) (starttls.Upgrader, error) {
	if opts == nil {
		opts = &Options{}
	}
	// ASCII case only: strings.ToLower would map "\u0130MAP" (a capital
	// I with a dot) onto "imap".
	canonical := ""
	for _, n := range names {
		if starttls.EqualFold(n, name) {
			canonical = n
		}
	}
	switch canonical {
	case "smtp":
		return &smtp.Upgrader{LocalName: opts.LocalName}, nil
	case "lmtp":
		return &smtp.Upgrader{LocalName: opts.LocalName, LMTP: true}, nil
	case "imap":
		return &imap.Upgrader{}, nil
	case "pop3":
		return &pop3.Upgrader{}, nil
	case "sieve":
		return &sieve.Upgrader{}, nil
	case "nntp":
		return &nntp.Upgrader{}, nil
	case "ftp":
		return &ftp.Upgrader{}, nil
	case "postgres":
		return postgres.Upgrader{}, nil
	case "ldap":
		return &ldap.Upgrader{}, nil
	case "xmpp":
		return &xmpp.Upgrader{Domain: opts.Domain}, nil
	}
	return nil, fmt.Errorf("upgraders: unknown protocol %q (want one of %s)", starttls.Escape(name), strings.Join(names[:], ", "))
}
