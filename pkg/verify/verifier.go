package verify

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// minBackgroundTTL: a key set fresh for less than this is not refreshed in
// the background; it is fetched again for the next token instead.
const minBackgroundTTL = time.Second

// Verifier checks tokens against an issuer's key set, which it fetches,
// caches and refreshes itself. It is safe for concurrent use. Close stops
// its background refresh.
type Verifier struct {
	s   settings
	cur atomic.Pointer[keySet]

	fetching atomic.Bool // a fetch is in flight (a lock-free hint)

	mu          sync.Mutex
	flight      *flight   // the fetch in flight, shared by all who wait for it
	lastRefetch time.Time // when a fetch for an unknown kid last began
	failures    int       // fetches failed in a row
	failedAt    time.Time // when the last of them ended
	lastErr     error
	closed      bool

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	wake      chan struct{}
	timer     func(time.Duration) (<-chan time.Time, func() bool)
	closeOnce sync.Once
}

type flight struct {
	done chan struct{}
	set  *keySet // on success
	err  error
}

// New makes a Verifier. It fetches nothing yet: the first Verify does, or
// call Refresh to fetch ahead (during a function's init, say).
func New(cfg Config) (*Verifier, error) {
	return newVerifier(cfg, func(d time.Duration) (<-chan time.Time, func() bool) {
		t := time.NewTimer(d)
		return t.C, t.Stop
	})
}

func newVerifier(cfg Config, timer func(time.Duration) (<-chan time.Time, func() bool)) (*Verifier, error) {
	s, err := cfg.check()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	v := &Verifier{s: s, ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1), timer: timer}
	v.wg.Add(1)
	go v.refresher()
	return v, nil
}

// Close stops the background refresh and waits for a fetch in flight to
// end. Verify keeps working with the key set it holds, but fetches no more.
func (v *Verifier) Close() {
	v.closeOnce.Do(func() {
		v.mu.Lock()
		v.closed = true
		v.mu.Unlock()
		v.cancel()
		v.wg.Wait()
	})
}

// Refresh fetches the key set now (or waits for the fetch in flight),
// regardless of the cache and the rate limits, and returns the fetch's
// error.
func (v *Verifier) Refresh(ctx context.Context) error {
	v.mu.Lock()
	f := v.startLocked(true)
	v.mu.Unlock()
	if f == nil {
		return errClosed
	}
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Verify checks token and returns it, or an *Error saying why it is
// refused. Nothing in the token decides where keys come from: jku, x5u, jwk
// and x5c are ignored.
func (v *Verifier) Verify(ctx context.Context, token string) (*Token, error) {
	c, e := split(token, v.s.MaxTokenBytes)
	if e != nil {
		return nil, e
	}
	keys, e := v.keysFor(ctx, &c)
	if e != nil {
		return nil, e
	}
	if e := c.checkSignature(keys); e != nil {
		return nil, e
	}
	t := &Token{Alg: c.alg.name, Kid: keys[0].kid}
	if len(c.typ) > 0 {
		t.Typ = string(c.typ)
	}
	if e := v.s.claims(&c, t, v.s.Now()); e != nil {
		e.Kid = t.Kid
		return nil, e
	}
	return t, nil
}

// keysFor returns the keys of the token's kid, refetching the key set once
// (within the rate limit) when the kid is not in it. The algorithm is
// checked before the kid, so that a token of a refused algorithm cannot
// cause a refetch, and again against the refetched set.
func (v *Verifier) keysFor(ctx context.Context, c *compact) ([]*publicKey, *Error) {
	ks, err := v.keySet(ctx)
	if err != nil {
		return nil, &Error{Reason: ReasonKeySetUnavailable, Kid: kidOf(c.kid), Detail: "no key set to check the token against", Err: err}
	}
	if !ks.allowed.has(c.alg) {
		return nil, wrongAlg(c, ks)
	}
	if keys := ks.byKid[string(c.kid)]; len(keys) > 0 {
		return keys, nil
	}
	ks, cause := v.refetch(ctx, ks)
	keys := ks.byKid[string(c.kid)]
	if len(keys) == 0 {
		return nil, &Error{Reason: ReasonUnknownKid, Kid: kidOf(c.kid), Detail: "the kid is not in the key set", Err: cause}
	}
	if !ks.allowed.has(c.alg) {
		return nil, wrongAlg(c, ks)
	}
	return keys, nil
}

// checkSignature verifies the signature with the keys of the token's kid,
// several when a set holds one kid twice (during a rollover, say): it is
// good if one of the keys that fit the algorithm verifies it.
func (c *compact) checkSignature(keys []*publicKey) *Error {
	sig := c.scratch[b64.DecodedLen(len(c.payload)):]
	n, err := b64.Decode(sig, c.sig)
	if err != nil {
		return &Error{Reason: ReasonMalformed, Kid: keys[0].kid, Detail: "the signature is not base64url"}
	}
	fits := false
	for _, k := range keys {
		if !c.usable(k) {
			continue
		}
		if c.alg.verify(k.pub, c.input, sig[:n]) {
			return nil
		}
		fits = true
	}
	if !fits {
		return &Error{Reason: ReasonWrongAlgorithm, Kid: keys[0].kid, Detail: "the kid names a key of another algorithm than " + c.alg.name}
	}
	return &Error{Reason: ReasonBadSignature, Kid: keys[0].kid, Detail: "the signature does not verify with the key"}
}

// usable reports whether k can verify the token's algorithm: its type fits,
// and so does its own alg, when it has one.
func (c *compact) usable(k *publicKey) bool {
	return (k.alg == "" || k.alg == c.alg.name) && c.alg.fits(k.pub)
}

// keySet returns the key set to use now: the cached one while it is fresh
// (starting a background refresh once it is due), else a fetched one, else,
// while fetches fail, the last good one within StaleIfError.
func (v *Verifier) keySet(ctx context.Context) (*keySet, error) {
	now := v.s.Now()
	if ks := v.cur.Load(); ks != nil && now.Before(ks.expires) {
		if !now.Before(ks.refreshAt) && !v.fetching.Load() {
			v.kick()
		}
		return ks, nil
	}
	return v.fetchKeySet(ctx, now)
}

// fetchKeySet is keySet once the cached set is not fresh: it starts a
// fetch, or joins the one in flight, and waits for it, unless the last good
// set may still serve while fetches fail.
func (v *Verifier) fetchKeySet(ctx context.Context, now time.Time) (*keySet, error) {
	v.mu.Lock()
	ks := v.cur.Load()
	if ks != nil && now.Before(ks.expires) {
		v.mu.Unlock()
		return ks, nil
	}
	// stale is the set to serve when no fresh one can be had: the last
	// good one, within StaleIfError of its expiry; nil when there is none.
	var stale *keySet
	if ks != nil && now.Before(ks.expires.Add(v.s.StaleIfError)) {
		stale = ks
	}
	f := v.startLocked(false)
	if stale != nil && v.failures > 0 {
		// Fetches are failing: the last good set serves while the fetch
		// just started (if the backoff allowed one) runs in the background.
		v.mu.Unlock()
		return stale, nil
	}
	lastErr := v.unavailableLocked()
	v.mu.Unlock()
	if f == nil {
		return orStale(stale, lastErr)
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return orStale(stale, context.Cause(ctx))
	}
	if f.err == nil {
		return f.set, nil
	}
	return orStale(stale, f.err)
}

// orStale returns the stale set if there is one, else err: a key set that
// cannot be had fresh is served stale rather than refusing every token.
func orStale(stale *keySet, err error) (*keySet, error) {
	if stale != nil {
		return stale, nil
	}
	return nil, err
}

// refetch fetches the key set again for a token whose kid is not in ks, or
// joins the fetch in flight: at most one such fetch begins per
// RefetchInterval, however many tokens ask. It returns the set to look in
// and why none was fetched, if none was.
func (v *Verifier) refetch(ctx context.Context, ks *keySet) (*keySet, error) {
	v.mu.Lock()
	f := v.flight
	if f == nil {
		now := v.s.Now()
		if !v.lastRefetch.IsZero() && now.Sub(v.lastRefetch) < v.s.RefetchInterval {
			v.mu.Unlock()
			return ks, errRateLimited
		}
		if f = v.startLocked(false); f == nil {
			err := v.unavailableLocked()
			v.mu.Unlock()
			return ks, err
		}
		v.lastRefetch = now
	}
	v.mu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
		return ks, context.Cause(ctx)
	}
	if f.err != nil {
		return ks, f.err
	}
	return f.set, nil
}

// kick starts a background fetch unless one is in flight or the backoff
// after failures holds it back.
func (v *Verifier) kick() {
	v.mu.Lock()
	v.startLocked(false)
	v.mu.Unlock()
}

// startLocked returns the fetch in flight, or starts one. Unless forced, a
// fetch waits out the backoff after failed ones; it returns nil then, and
// once the Verifier is closed.
func (v *Verifier) startLocked(forced bool) *flight {
	if v.flight != nil {
		return v.flight
	}
	if v.closed {
		return nil
	}
	if !forced && v.failures > 0 && v.s.Now().Before(v.failedAt.Add(v.backoff())) {
		return nil
	}
	f := &flight{done: make(chan struct{})}
	v.flight = f
	v.fetching.Store(true)
	v.wg.Add(1)
	go v.run(f)
	return f
}

// backoff is the wait after failures in a row: 1 s, doubling, at most
// RefetchInterval.
func (v *Verifier) backoff() time.Duration {
	d := time.Second << min(v.failures-1, 20)
	return min(d, v.s.RefetchInterval)
}

func (v *Verifier) unavailableLocked() error {
	switch {
	case v.closed:
		return errClosed
	case v.lastErr != nil:
		return v.lastErr
	}
	return errNoFetch
}

func (v *Verifier) run(f *flight) {
	defer v.wg.Done()
	ctx, cancel := context.WithTimeout(v.ctx, v.s.FetchTimeout)
	prev := v.cur.Load()
	next, skips, err := v.s.load(ctx, prev)
	cancel()

	v.mu.Lock()
	if err == nil {
		v.cur.Store(next)
		v.failures, v.lastErr = 0, nil
	} else {
		v.failures++
		v.failedAt = v.s.Now()
		v.lastErr = err
	}
	failures := v.failures
	f.set, f.err = next, err
	v.flight = nil
	v.fetching.Store(false)
	close(f.done)
	v.mu.Unlock()
	select {
	case v.wake <- struct{}{}:
	default:
	}

	log := v.s.Logger
	if err != nil {
		stale := prev != nil && v.s.Now().Before(prev.expires.Add(v.s.StaleIfError))
		log.Warn("key set fetch failed", "error", err.Error(), "failures_in_a_row", failures, "serving_last_good_set", stale)
		return
	}
	changed := prev == nil || !slices.Equal(prev.kids, next.kids) || prev.allowed != next.allowed
	for _, s := range skips {
		log.Warn("key set: key skipped", "kid", s.kid, "why", s.why)
	}
	if changed {
		log.Info("key set fetched", "url", next.jwksURL, "kids", next.kids, "algorithms", next.allowed.names(),
			"fresh_for_seconds", next.expires.Sub(next.fetched).Seconds())
	} else {
		log.Debug("key set fetched, unchanged", "url", next.jwksURL, "fresh_for_seconds", next.expires.Sub(next.fetched).Seconds())
	}
}

// refresher fetches the key set again before it expires, and retries
// failed fetches after their backoff, so that in the steady state no token
// waits for a fetch.
func (v *Verifier) refresher() {
	defer v.wg.Done()
	for {
		var fire <-chan time.Time
		stop := func() bool { return false }
		if d, ok := v.nextRefresh(); ok {
			fire, stop = v.timer(d)
		}
		select {
		case <-v.ctx.Done():
			stop()
			return
		case <-v.wake:
			stop()
		case <-fire:
			v.kick()
		}
	}
}

// nextRefresh says when the refresher should fetch next; false: not until
// something wakes it.
func (v *Verifier) nextRefresh() (time.Duration, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.flight != nil || v.closed {
		return 0, false
	}
	now := v.s.Now()
	if v.failures > 0 {
		return max(0, v.failedAt.Add(v.backoff()).Sub(now)), true
	}
	ks := v.cur.Load()
	if ks == nil || ks.expires.Sub(ks.fetched) < minBackgroundTTL {
		return 0, false
	}
	return max(0, ks.refreshAt.Sub(now)), true
}

func wrongAlg(c *compact, ks *keySet) *Error {
	return &Error{Reason: ReasonWrongAlgorithm, Kid: kidOf(c.kid), Detail: c.alg.name + " is not among the allowed algorithms " + joinNames(ks.allowed.names())}
}

// kidOf is a token's kid for an error, cut short: it is the sender's text.
func kidOf(kid []byte) string {
	if len(kid) > 64 {
		return string(kid[:64]) + "..."
	}
	return string(kid)
}

func joinNames(names []string) string {
	out := "["
	for i, n := range names {
		if i > 0 {
			out += " "
		}
		out += n
	}
	return out + "]"
}
