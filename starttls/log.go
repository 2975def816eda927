package starttls

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
)

// LevelTranscript is the level at which [Config.Logger] receives the
// upgrade's transcript, one record per line, redacted as in
// [Options.Transcript]: below Debug, so that a Debug handler shows the
// steps without the dialogue.
const LevelTranscript = slog.LevelDebug - 4

// logUpgrade writes the one Info record of an upgrade.
func logUpgrade(ctx context.Context, l *slog.Logger, remote net.Addr, res *Result, err error) {
	level := slog.LevelInfo
	if !l.Enabled(ctx, level) {
		return
	}
	outcome := "tls"
	switch {
	case err != nil:
		outcome = "error"
	case res.Plaintext:
		outcome = "plaintext"
	}
	attrs := make([]slog.Attr, 0, 14)
	attrs = append(attrs,
		slog.String("protocol", res.Protocol),
		slog.String("mode", res.Mode.String()),
		slog.String("policy", res.Policy.String()),
	)
	if remote != nil {
		attrs = append(attrs, slog.String("remote", remote.String()))
	}
	if res.TLS {
		attrs = append(attrs,
			slog.String("tls_version", tls.VersionName(res.State.Version)),
			slog.String("cipher", tls.CipherSuiteName(res.State.CipherSuite)),
			slog.Bool("resumed", res.State.DidResume),
			slog.String("server_name", res.State.ServerName),
		)
	}
	attrs = append(attrs, slog.Duration("elapsed", res.Elapsed), slog.String("outcome", outcome))
	if err != nil {
		if e, ok := err.(*Error); ok {
			attrs = append(attrs, slog.String("step", string(e.Step)))
		}
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	l.LogAttrs(ctx, level, "starttls upgrade", attrs...)
}

// logSteps returns the hooks that log each step at Debug, or nil when the
// logger would drop them.
func logSteps(ctx context.Context, l *slog.Logger, protocol string) *ClientTrace {
	if !l.Enabled(ctx, slog.LevelDebug) {
		return nil
	}
	debug := func(msg string, attrs ...slog.Attr) {
		l.LogAttrs(ctx, slog.LevelDebug, msg, append(attrs, slog.String("protocol", protocol))...)
	}
	errAttr := func(err error) slog.Attr {
		if err == nil {
			return slog.Attr{}
		}
		return slog.String("error", scrub(err.Error()))
	}
	return &ClientTrace{
		ConnectDone: func(network, addr string, err error) {
			debug("starttls connect", slog.String("addr", addr), errAttr(err))
		},
		GreetingRead: func(text string, err error) {
			debug("starttls greeting", slog.String("text", text), errAttr(err))
		},
		CapabilitiesDiscovered: func(inTLS bool, caps *Capabilities, err error) {
			debug("starttls capabilities", slog.Bool("in_tls", inTLS), slog.String("capabilities", caps.String()), errAttr(err))
		},
		PolicyDecided: func(offered bool, d Decision) {
			debug("starttls policy", slog.Bool("offered", offered), slog.String("decision", string(d)))
		},
		StartTLSStart: func() { debug("starttls request") },
		GoAheadRead: func(err error) {
			debug("starttls go-ahead", errAttr(err))
		},
		HandshakeStart: func() { debug("starttls handshake start") },
		HandshakeDone: func(state tls.ConnectionState, err error) {
			debug("starttls handshake done", slog.String("tls_version", tls.VersionName(state.Version)),
				slog.Bool("resumed", state.DidResume), errAttr(err))
		},
	}
}

// logTranscript returns opts with a transcript that also goes to l at
// LevelTranscript, when l would keep it; otherwise opts unchanged.
func logTranscript(ctx context.Context, l *slog.Logger, protocol string, opts *Options) *Options {
	if !l.Enabled(ctx, LevelTranscript) {
		return opts
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	w := &transcriptLog{ctx: ctx, l: l, protocol: protocol}
	if o.Transcript != nil {
		o.Transcript = io.MultiWriter(o.Transcript, w)
	} else {
		o.Transcript = w
	}
	return &o
}

// transcriptLog turns the Conn's transcript writes (one line each, already
// escaped and redacted) into records.
type transcriptLog struct {
	ctx      context.Context
	l        *slog.Logger
	protocol string
}

func (t *transcriptLog) Write(p []byte) (int, error) {
	t.l.LogAttrs(t.ctx, LevelTranscript, "starttls transcript",
		slog.String("protocol", t.protocol), slog.String("line", string(bytes.TrimRight(p, "\r\n"))))
	return len(p), nil
}
