package mtasts

import (
	"context"
	"strings"
	"sync"
	"time"
)

// Cache keeps policies for as long as their max_age allows (RFC 8461,
// Section 5.1) and refetches one only when the domain's record id changes.
// It is safe for concurrent use. The zero value is not usable: set
// Fetcher.
type Cache struct {
	// Fetcher looks up records and fetches policies.
	Fetcher *Fetcher
	// Now returns the current time; zero means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	entries map[string]cacheEntry
}

type cacheEntry struct {
	id      string
	policy  *Policy
	expires time.Time
}

// Get returns domain's policy (RFC 8461, Sections 3.3 and 5.1):
//
//   - the record's id equals the cached policy's and the policy has not
//     expired: the cached policy, no fetch;
//   - otherwise a fresh fetch, cached for its max_age;
//   - when the record lookup or the fetch fails, or the record is gone,
//     an unexpired cached policy is still returned, with the failure as
//     fetchErr (to report): an attacker who blocks the fetch must not
//     switch the policy off;
//   - with nothing cached, the error: ErrNoPolicy (no record), ErrFetch,
//     ErrWebPKI or ErrInvalid. The caller then delivers as without
//     MTA-STS, and reports the error with TLS-RPT.
func (c *Cache) Get(ctx context.Context, domain string) (p *Policy, fetchErr error, err error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	c.mu.Lock()
	cached, ok := c.entries[domain]
	c.mu.Unlock()
	valid := ok && now().Before(cached.expires)

	id, err := c.Fetcher.Record(ctx, domain)
	if err != nil {
		if valid {
			return cached.policy, err, nil
		}
		return nil, nil, err
	}
	if valid && id == cached.id {
		return cached.policy, nil, nil
	}
	p, err = c.Fetcher.Fetch(ctx, domain)
	if err != nil {
		if valid {
			return cached.policy, err, nil
		}
		return nil, nil, err
	}
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]cacheEntry{}
	}
	c.entries[domain] = cacheEntry{id: id, policy: p, expires: now().Add(p.MaxAge)}
	c.mu.Unlock()
	return p, nil, nil
}

// Forget drops domain's cached policy.
func (c *Cache) Forget(domain string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, strings.ToLower(strings.TrimSuffix(domain, ".")))
}
