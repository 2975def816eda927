package starttls

import (
	"context"
	"crypto/tls"
	"net"
	"time"

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
// The connection is made by cfg.Dialer (a net.Dialer when nil): a SOCKS5
// or HTTP CONNECT route changes where the bytes go, never the name
// verified. The connect is bounded by ctx too. A failed connect is an [*Error] at
// [StepConnect] matching ErrConnect (refused, unreachable, no such host),
// or context.DeadlineExceeded or context.Canceled when ctx ended first;
// everything else is as for Upgrade.
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
				&Error{Protocol: u.Protocol(), Step: StepConnect, Kind: ErrConnect, Err: err}
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
	start := time.Now()
	var d ContextDialer = &net.Dialer{}
	if c.Dialer != nil {
		d = c.Dialer
	}
	conn, err := d.DialContext(ctx, network, addr)
	connect := time.Since(start)
	ts := traceFrom(ctx)
	ts.connectDone(network, addr, err)
	if c.Logger != nil {
		if steps := logSteps(ctx, c.Logger, u.Protocol()); steps != nil {
			steps.connectDone(network, addr, err)
		}
	}
	if err != nil {
		res := &Result{Protocol: u.Protocol(), Mode: c.Mode, Policy: c.Policy, Elapsed: connect, Timings: Timings{Connect: connect}}
		err = stepError(ctx, u.Protocol(), StepConnect, connectKind(ctx, err), err)
		ts.upgradeDone(res, err)
		if c.Logger != nil {
			logUpgrade(ctx, c.Logger, nil, res, err)
		}
		return nil, res, err
	}
	return upgradeConn(ctx, conn, u, &c, start, connect)
}

// connectKind is the kind of a failed connect: the context's end when it
// ended (a timeout is not a refusal), ErrConnect otherwise.
func connectKind(ctx context.Context, err error) error {
	if ctxErr := contextErr(ctx, time.Time{}, err); ctxErr != nil {
		return ctxErr
	}
	return ErrConnect
}
