package starttls

import (
	"context"
	"crypto/tls"
	"time"
)

// ClientTrace is a set of hooks run at the steps of a client upgrade
// ([Upgrade], [Dial], [ClientUpgrade]), in the manner of
// net/http/httptrace: attach it to the context with [WithClientTrace]. Any
// hook may be nil. Hooks run synchronously on the upgrading goroutine, so
// they must be quick and must not use the conn; what they receive is valid
// after they return (a *Capabilities is not modified afterwards).
//
// Peer text reaching a hook (a greeting, capabilities) is escaped, and
// untrusted before TLS, as in [Result].
type ClientTrace struct {
	// ConnectDone is called by Dial after the connect, with its error.
	ConnectDone func(network, addr string, err error)
	// GreetingRead is called after the greeting was read (in implicit
	// mode, inside TLS), with its escaped text and the error, if any.
	GreetingRead func(text string, err error)
	// CapabilitiesDiscovered is called after each discovery: inTLS false
	// before TLS, true inside it. caps is nil on error.
	CapabilitiesDiscovered func(inTLS bool, caps *Capabilities, err error)
	// PolicyDecided is called once the policy has decided, before TLS:
	// offered says whether the upgrade was advertised, and d what happens.
	PolicyDecided func(offered bool, d Decision)
	// StartTLSStart is called right before the upgrade request is sent.
	StartTLSStart func()
	// GoAheadRead is called after the answer to the upgrade request was
	// read: err is nil for the go-ahead.
	GoAheadRead func(err error)
	// HandshakeStart is called right before the TLS handshake.
	HandshakeStart func()
	// HandshakeDone is called after the handshake with its state
	// (DidResume says whether a session was resumed) and error.
	HandshakeDone func(state tls.ConnectionState, err error)
	// UpgradeDone is called last, with the result and the error the
	// caller gets (ClientUpgrade passes a nil result).
	UpgradeDone func(res *Result, err error)
}

// Decision is what the policy decided before TLS, for
// [ClientTrace.PolicyDecided].
type Decision string

const (
	// DecideUpgrade: the upgrade request is sent (advertised, or Always).
	DecideUpgrade Decision = "upgrade"
	// DecidePlaintext: not advertised, and Opportunistic continues in
	// plaintext.
	DecidePlaintext Decision = "plaintext"
	// DecideFail: not advertised, and Required fails with ErrNotOffered.
	DecideFail Decision = "fail"
)

type clientTraceKey struct{}

// WithClientTrace returns a context carrying trace. Hooks attached to ctx
// earlier still run: trace's hooks first, then theirs, as
// httptrace.WithClientTrace composes. A nil trace returns ctx.
func WithClientTrace(ctx context.Context, trace *ClientTrace) context.Context {
	if trace == nil {
		return ctx
	}
	old := traceFrom(ctx)
	ts := make(traces, 0, len(old)+1)
	ts = append(append(ts, trace), old...)
	return context.WithValue(ctx, clientTraceKey{}, ts)
}

// ContextClientTrace returns the trace attached last to ctx, or nil.
func ContextClientTrace(ctx context.Context) *ClientTrace {
	if ts := traceFrom(ctx); len(ts) > 0 {
		return ts[0]
	}
	return nil
}

// traces are the hooks in force for one upgrade, the latest first; nil
// when there are none, so that each call below is a loop over nothing.
type traces []*ClientTrace

func traceFrom(ctx context.Context) traces {
	ts, _ := ctx.Value(clientTraceKey{}).(traces)
	return ts
}

func (ts traces) connectDone(network, addr string, err error) {
	for _, t := range ts {
		if t.ConnectDone != nil {
			t.ConnectDone(network, addr, err)
		}
	}
}

func (ts traces) greetingRead(text string, err error) {
	for _, t := range ts {
		if t.GreetingRead != nil {
			t.GreetingRead(text, err)
		}
	}
}

func (ts traces) capabilitiesDiscovered(inTLS bool, caps *Capabilities, err error) {
	for _, t := range ts {
		if t.CapabilitiesDiscovered != nil {
			t.CapabilitiesDiscovered(inTLS, caps, err)
		}
	}
}

func (ts traces) policyDecided(offered bool, d Decision) {
	for _, t := range ts {
		if t.PolicyDecided != nil {
			t.PolicyDecided(offered, d)
		}
	}
}

func (ts traces) startTLSStart() {
	for _, t := range ts {
		if t.StartTLSStart != nil {
			t.StartTLSStart()
		}
	}
}

func (ts traces) goAheadRead(err error) {
	for _, t := range ts {
		if t.GoAheadRead != nil {
			t.GoAheadRead(err)
		}
	}
}

func (ts traces) handshakeStart() {
	for _, t := range ts {
		if t.HandshakeStart != nil {
			t.HandshakeStart()
		}
	}
}

func (ts traces) handshakeDone(state tls.ConnectionState, err error) {
	for _, t := range ts {
		if t.HandshakeDone != nil {
			t.HandshakeDone(state, err)
		}
	}
}

func (ts traces) upgradeDone(res *Result, err error) {
	for _, t := range ts {
		if t.UpgradeDone != nil {
			t.UpgradeDone(res, err)
		}
	}
}

// Timings are the durations of an upgrade's steps, in [Result]. A step
// that did not run is zero.
type Timings struct {
	// Connect is Dial's connect; zero for Upgrade.
	Connect time.Duration
	// Greeting is the wait for the greeting and its reading.
	Greeting time.Duration
	// Discovery is the capability discovery before TLS.
	Discovery time.Duration
	// StartTLS is the upgrade request and its go-ahead.
	StartTLS time.Duration
	// Handshake is the TLS handshake.
	Handshake time.Duration
	// Rediscovery is the capability discovery inside TLS.
	Rediscovery time.Duration
}

// stopwatch times consecutive steps.
type stopwatch struct{ last time.Time }

// lap returns the time since the previous lap (or the start) and starts
// the next one.
func (s *stopwatch) lap() time.Duration {
	now := time.Now()
	d := now.Sub(s.last)
	s.last = now
	return d
}

func (t *ClientTrace) connectDone(network, addr string, err error) {
	if t.ConnectDone != nil {
		t.ConnectDone(network, addr, err)
	}
}
