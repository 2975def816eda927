package main

import (
	"github.com/tlsup/tlsup/examples/ftp"
	"github.com/tlsup/tlsup/examples/nntp"
	"github.com/tlsup/tlsup/examples/sieve"
	"github.com/tlsup/tlsup/starttls"
)

// lineProtocols are the line-based protocols plugged in from outside the
// core (the contract's "More protocols"): ManageSieve (RFC 5804, port
// 4190, no implicit TLS), NNTP (RFC 4642; 119, implicit 563) and FTP
// (RFC 4217; 21, implicit 990). Their JSON follows the contract: the
// greeting is the IMPLEMENTATION string for ManageSieve and the text after
// the code for NNTP and FTP; the capabilities are ManageSieve names with
// their values, NNTP CAPABILITIES lines and FTP FEAT lines.
func lineProtocols() map[string]protocol {
	return map[string]protocol{
		"sieve": {
			upgrader: func(string) starttls.Upgrader { return &sieve.Upgrader{} },
			ports:    []int{4190},
		},
		"nntp": {
			upgrader: func(string) starttls.Upgrader { return &nntp.Upgrader{} },
			ports:    []int{119},
			implicit: nntp.ImplicitPort,
		},
		"ftp": {
			upgrader: func(string) starttls.Upgrader { return &ftp.Upgrader{} },
			ports:    []int{21},
			implicit: ftp.ImplicitPort,
		},
	}
}
