package tlsconf

import (
	"crypto/tls"
	"fmt"
	"strconv"
	"sync/atomic"
)

// SessionCache is a TLS client session cache for many configs and many
// servers, keyed so that a resumed session never skips a check the first
// one made. On resumption crypto/tls checks the name, the expiry and the
// roots again, but it never calls VerifyPeerCertificate: a DANE, pinning
// or policy check there is skipped. Keyed by server name alone, as
// tls.ClientSessionCache is, a session made without such a check is
// resumed by a config that has it. SessionCache keys each session by the
// server name and by the verification policy of the config that made it:
// InsecureSkipVerify, the root pool (by identity: two pools never share,
// even with the same certificates) and, for a config with its own
// VerifyPeerCertificate or VerifyConnection, that config alone.
//
// Use [SessionCache.Config] on the final config, after its roots and
// callbacks are set; starttls.Result.Resumed says when a handshake
// resumed. A SessionCache is safe for concurrent use.
type SessionCache struct {
	cache  tls.ClientSessionCache
	unique atomic.Uint64 // numbers configs with their own callbacks
}

// NewSessionCache returns a cache holding up to capacity sessions, least
// recently used first out; capacity < 1 means crypto/tls's default.
func NewSessionCache(capacity int) *SessionCache {
	return &SessionCache{cache: tls.NewLRUClientSessionCache(capacity)}
}

// Config returns a clone of cfg whose ClientSessionCache is c, with keys
// that carry cfg's verification policy.
func (c *SessionCache) Config(cfg *tls.Config) *tls.Config {
	out := cfg.Clone()
	out.ClientSessionCache = &policyCache{cache: c.cache, policy: c.policyKey(cfg)}
	return out
}

// policyKey names cfg's verification policy.
func (c *SessionCache) policyKey(cfg *tls.Config) string {
	key := "verify"
	if cfg.InsecureSkipVerify {
		key = "insecure"
	}
	if cfg.RootCAs == nil {
		key += " roots=system"
	} else {
		key += fmt.Sprintf(" roots=%p", cfg.RootCAs)
	}
	if cfg.VerifyPeerCertificate != nil || cfg.VerifyConnection != nil {
		// A callback's checks cannot be compared: its closure may capture
		// anything. This config shares with no other.
		key += " callback=" + strconv.FormatUint(c.unique.Add(1), 10)
	}
	return key + " name=" + cfg.ServerName
}

// policyCache is the view of the shared cache for one policy.
type policyCache struct {
	cache  tls.ClientSessionCache
	policy string
}

func (p *policyCache) Get(sessionKey string) (*tls.ClientSessionState, bool) {
	return p.cache.Get(p.policy + "\x00" + sessionKey)
}

func (p *policyCache) Put(sessionKey string, cs *tls.ClientSessionState) {
	p.cache.Put(p.policy+"\x00"+sessionKey, cs)
}
