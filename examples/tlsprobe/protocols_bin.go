package main

import (
	"github.com/tlsup/tlsup/examples/ldap"
	"github.com/tlsup/tlsup/examples/postgres"
	"github.com/tlsup/tlsup/examples/xmpp"
	"github.com/tlsup/tlsup/starttls"
)

// binaryProtocols are the protocols whose dialogue is not made of lines,
// plugged in from examples/ as a third party would (contract, "More
// protocols"): PostgreSQL's SSLRequest (5432), LDAP's StartTLS extended
// operation (389, implicit 636) and XMPP client-to-server (5222, direct
// TLS 5223).
func binaryProtocols() map[string]protocol {
	return map[string]protocol{
		"postgres": {
			upgrader: func(string) starttls.Upgrader { return postgres.Upgrader{} },
			ports:    []int{postgres.Port},
		},
		"ldap": {
			upgrader: func(string) starttls.Upgrader { return &ldap.Upgrader{} },
			ports:    []int{ldap.Port},
			implicit: ldap.PortLDAPS,
		},
		"xmpp": {
			upgrader: func(string) starttls.Upgrader { return &xmpp.Upgrader{} },
			ports:    []int{xmpp.Port},
			implicit: xmpp.PortDirectTLS,
		},
	}
}

// greetless reports whether the protocol's server sends no greeting at all
// (PostgreSQL, LDAP): the JSON greeting is then null, never "".
func greetless(protocol string) bool {
	return protocol == "postgres" || protocol == "ldap"
}

// setServerName hands the name the probe verifies to an upgrader that
// sends it in its dialogue: XMPP's stream 'to' is -servername, or the host
// (contract, "More protocols").
func setServerName(u starttls.Upgrader, name string) {
	if x, ok := u.(*xmpp.Upgrader); ok {
		x.Domain = name
	}
}
