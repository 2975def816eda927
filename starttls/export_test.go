package starttls

import (
	"context"
	"crypto/tls"
)

// TraceDispatchForTest runs every hook dispatch of one upgrade with the
// traces attached to ctx, for the allocation test and the benchmark.
func TraceDispatchForTest(ctx context.Context) {
	ts := traceFrom(ctx)
	ts.greetingRead("", nil)
	ts.capabilitiesDiscovered(false, nil, nil)
	ts.policyDecided(true, DecideUpgrade)
	ts.startTLSStart()
	ts.goAheadRead(nil)
	ts.handshakeStart()
	if ts != nil {
		ts.handshakeDone(tls.ConnectionState{}, nil)
	}
	ts.capabilitiesDiscovered(true, nil, nil)
	ts.upgradeDone(nil, nil)
}
