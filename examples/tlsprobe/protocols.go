package main

import (
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/tlsup/tlsup/imap"
	"github.com/tlsup/tlsup/pop3"
	"github.com/tlsup/tlsup/smtp"
	"github.com/tlsup/tlsup/starttls"
)

// protocol is one protocol the probe speaks: how to make its client side
// and its well-known ports, which only the probe needs (the library's
// Upgraders know their implicit port, not the names of services).
type protocol struct {
	// upgrader makes the client side; localName is the -ehlo flag (only
	// SMTP and LMTP use it).
	upgrader func(localName string) starttls.Upgrader
	// ports are the plaintext ports, the default first.
	ports []int
	// implicit is the implicit-TLS port, 0 for none.
	implicit int
}

// protocols is the table of the protocols the probe speaks, by -protocol
// name. A protocol adds its one entry here and nothing else changes.
func protocols() map[string]protocol {
	table := map[string]protocol{
		"smtp": {
			upgrader: func(localName string) starttls.Upgrader { return &smtp.Upgrader{LocalName: localName} },
			ports:    []int{25, 587},
			implicit: 465,
		},
		"lmtp": {
			upgrader: func(localName string) starttls.Upgrader {
				return &smtp.Upgrader{LocalName: localName, LMTP: true}
			},
			ports: []int{24},
		},
		"imap": {
			upgrader: func(string) starttls.Upgrader { return &imap.Upgrader{} },
			ports:    []int{143},
			implicit: 993,
		},
		"pop3": {
			upgrader: func(string) starttls.Upgrader { return &pop3.Upgrader{} },
			ports:    []int{110},
			implicit: 995,
		},
	}
	for name, p := range lineProtocols() { // protocols_line.go
		table[name] = p
	}
	for name, p := range binaryProtocols() { // protocols_bin.go
		table[name] = p
	}
	return table
}

// supported lists the protocol names, sorted.
func supported() string {
	var names []string
	for name := range protocols() {
		names = append(names, name)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// protocolForPort returns the protocol conventionally served on port, or ""
// when no protocol of the table has it.
func protocolForPort(port int) string {
	for name, p := range protocols() {
		if port == p.implicit || slices.Contains(p.ports, port) {
			return name
		}
	}
	return ""
}

// resolveMode is the probe's view of Mode Auto, the same as the library's:
// implicit TLS on the protocol's implicit port, STARTTLS elsewhere.
func resolveMode(m starttls.Mode, p protocol, address string) starttls.Mode {
	if m != starttls.Auto {
		return m
	}
	_, portText, err := net.SplitHostPort(address)
	if err != nil {
		return starttls.StartTLS
	}
	if port, err := strconv.Atoi(portText); err == nil && p.implicit != 0 && port == p.implicit {
		return starttls.Implicit
	}
	return starttls.StartTLS
}
