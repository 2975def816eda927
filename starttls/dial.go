package starttls

import (
	"context"
	"crypto/tls"
	"net"

	"golang.org/x/net/idna"
)

// Dial connects to addr ("host:port") on network and upgrades the connection
// with [Upgrade]. With Mode Auto the port decides: implicit TLS on the
// Upgrader's implicit port (see [ImplicitPorter]), given as a number or a
// service name ("mx.example.test:submissions"). When cfg.TLSConfig is nil, or sets neither ServerName nor
// InsecureSkipVerify, Dial uses a clone with ServerName set to the host
// part of addr (in IDNA ASCII form): the name the caller dialled, never one
// the server announces. A nil cfg means the defaults.
//
// The connect is bounded by ctx too. A failed connect is an [*Error] at
// [StepConnect]; everything else is as for Upgrade.
func Dial(ctx context.Context, network, addr string, u Upgrader, cfg *Config) (*tls.Conn, *Result, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	c.Mode = resolveMode(c.Mode, u, addr)
	if c.TLSConfig == nil || (c.TLSConfig.ServerName == "" && !c.TLSConfig.InsecureSkipVerify) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, &Result{Protocol: u.Protocol(), Mode: c.Mode, Policy: c.Policy},
				&Error{Protocol: u.Protocol(), Step: StepConnect, Err: err}
		}
		if ascii, err := idna.Lookup.ToASCII(host); err == nil {
			host = ascii
		}
		if c.TLSConfig == nil {
			c.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		} else {
			c.TLSConfig = c.TLSConfig.Clone()
		}
		c.TLSConfig.ServerName = host
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, &Result{Protocol: u.Protocol(), Mode: c.Mode, Policy: c.Policy},
			stepError(ctx, u.Protocol(), StepConnect, nil, err)
	}
	return Upgrade(ctx, conn, u, &c)
}
