package verify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"jwks-issuer/pkg/verify/verifytest"
)

// cacheFixture: one ES256 key served at a key set URL (no discovery), with
// the clock under the test's control.
type cacheFixture struct {
	clock *clock
	o     *origin
	v     *Verifier
	key   testKey
}

func newCacheFixture(t *testing.T, tweak func(*Config)) *cacheFixture {
	t.Helper()
	f := &cacheFixture{clock: newClock(), key: newKey(t, "ES256", "k1")}
	f.o = newOrigin(t, f.key)
	cfg := Config{JWKSURL: f.o.URL + "/jwks.json", Audiences: []string{"hotsock"}, Algorithms: []string{"ES256"},
		Now: f.clock.Now, FetchTimeout: 2 * time.Second}
	if tweak != nil {
		tweak(&cfg)
	}
	f.v = newTestVerifier(t, cfg)
	return f
}

func (f *cacheFixture) token(k testKey) string {
	return k.Sign(claimsFor(f.clock, "x", map[string]any{"exp": f.clock.Now().Unix() + 86400*3}))
}

func (f *cacheFixture) verify(t *testing.T, k testKey) error {
	t.Helper()
	_, err := f.v.Verify(ctxT(t), f.token(k))
	return err
}

func (f *cacheFixture) mustVerify(t *testing.T, k testKey) {
	t.Helper()
	if err := f.verify(t, k); err != nil {
		t.Fatal(err)
	}
}

// The key set is kept for its max-age less its Age, capped by MaxCacheAge,
// and refetched after; no-cache and no-store mean a fetch per token.
func TestCacheFollowsCacheControl(t *testing.T) {
	for _, tc := range []struct {
		name         string
		cacheControl string
		age          string
		maxCacheAge  time.Duration
		fresh        time.Duration // still cached at fresh-1s, refetched at fresh
	}{
		{"max-age", "public, max-age=300", "", 0, 300 * time.Second},
		{"max-age less Age", "public, max-age=300", "290", 0, 10 * time.Second},
		{"max-age capped", "max-age=86400", "", 0, time.Hour},
		{"max-age capped by the setting", "max-age=300", "", time.Minute, time.Minute},
		{"smallest of two max-age", "max-age=300, max-age=120", "", 0, 120 * time.Second},
		{"no max-age", "public", "", 0, DefaultCacheAge},
		{"no Cache-Control", "", "", 0, DefaultCacheAge},
		{"quoted max-age", `max-age="60"`, "", 0, time.Minute},
		{"no-cache", "no-cache", "", 0, 0},
		{"no-store", "max-age=300, no-store", "", 0, 0},
		{"max-age=0", "public, max-age=0", "", 0, 0},
		{"invalid max-age", "max-age=soon", "", 0, 0},
		{"Age beyond max-age", "max-age=60", "600", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCacheFixture(t, func(c *Config) { c.MaxCacheAge = tc.maxCacheAge })
			f.o.SetCacheControl(tc.cacheControl, tc.age)
			f.mustVerify(t, f.key)
			if tc.fresh > 0 {
				// Short of the refresh margin: cached, no background fetch.
				f.clock.Advance(tc.fresh - refreshMargin(tc.fresh) - time.Second)
				f.mustVerify(t, f.key)
				waitIdle(f.v)
				if n := f.o.JWKSFetches(); n != 1 {
					t.Fatalf("%d fetches while fresh, want 1", n)
				}
				f.clock.Advance(refreshMargin(tc.fresh) + time.Second)
			}
			f.mustVerify(t, f.key)
			waitIdle(f.v)
			if n := f.o.JWKSFetches(); n != 2 {
				t.Fatalf("%d fetches once stale, want 2", n)
			}
		})
	}
}

// Inside the refresh margin the cached set answers at once and a
// background fetch replaces it: the steady state never waits on a fetch.
// The new set's kids are then known without a fetch of their own.
func TestRefreshAhead(t *testing.T) {
	f := newCacheFixture(t, nil)
	f.mustVerify(t, f.key)
	k2 := newKey(t, "ES256", "k2")
	f.o.SetKeys(f.key, k2)
	f.clock.Advance(300*time.Second - refreshMargin(300*time.Second) + time.Second)

	// The origin holds the background fetch until the token is answered.
	f.o.SetStatus(verifytest.Hang)
	f.mustVerify(t, f.key)
	if n := f.o.JWKSFetches(); n > 2 {
		t.Fatalf("%d fetches", n)
	}
	f.o.SetStatus(200)
	f.o.Release()
	waitIdle(f.v) // the held fetch failed; the next kick after its backoff succeeds
	f.clock.Advance(time.Second)
	f.mustVerify(t, f.key)
	waitIdle(f.v)
	before := f.o.JWKSFetches()
	f.mustVerify(t, k2)
	if n := f.o.JWKSFetches(); n != before {
		t.Fatalf("k2 needed a fetch of its own (%d, then %d)", before, n)
	}
}

// Tokens with kids the set does not hold cause at most one refetch per
// RefetchInterval, however many arrive and however concurrently; they all
// share the one fetch.
func TestUnknownKidRefetchIsRateLimited(t *testing.T) {
	for _, concurrent := range []bool{false, true} {
		t.Run(fmt.Sprintf("concurrent=%v", concurrent), func(t *testing.T) {
			f := newCacheFixture(t, nil)
			f.mustVerify(t, f.key)
			forged := make([]string, 1000)
			for i := range forged {
				forged[i] = f.token(f.key.As(f.key.Alg, fmt.Sprintf("forged-%d", i)))
			}
			reasons := make([]Reason, len(forged))
			burst := func() {
				var wg sync.WaitGroup
				for i, tok := range forged {
					run := func() {
						_, err := f.v.Verify(ctxT(t), tok)
						reasons[i] = ReasonOf(err)
					}
					if concurrent {
						wg.Go(run)
					} else {
						run()
					}
				}
				wg.Wait()
			}
			burst()
			for i, r := range reasons {
				if r != ReasonUnknownKid {
					t.Fatalf("forged token %d: %v", i, r)
				}
			}
			if n := f.o.JWKSFetches(); n != 2 {
				t.Fatalf("%d fetches for 1000 unknown kids, want 2 (the first fetch and one refetch)", n)
			}
			f.clock.Advance(DefaultRefetchInterval - time.Second)
			burst()
			if n := f.o.JWKSFetches(); n != 2 {
				t.Fatalf("%d fetches inside the interval, want 2", n)
			}
			f.clock.Advance(time.Second)
			burst()
			if n := f.o.JWKSFetches(); n != 3 {
				t.Fatalf("%d fetches after the interval, want 3", n)
			}
			f.mustVerify(t, f.key) // the real key is unaffected throughout
		})
	}
}

// A kid published after the set was cached (an emergency rollover's fresh
// key) verifies through the refetch; a revoked kid is refused once the
// cache has refreshed, and not before.
func TestRolloverThroughTheCache(t *testing.T) {
	f := newCacheFixture(t, nil)
	f.mustVerify(t, f.key)
	fresh := newKey(t, "ES256", "fresh")
	f.o.SetKeys(fresh) // f.key revoked
	f.clock.Advance(10 * time.Second)
	f.mustVerify(t, f.key) // the cached set still holds it: revocation waits for max-age
	f.mustVerify(t, fresh) // unknown kid: refetched
	if err := f.verify(t, f.key); ReasonOf(err) != ReasonUnknownKid {
		t.Fatalf("revoked kid after the refetch: %v", err)
	}
	if n := f.o.JWKSFetches(); n != 2 {
		t.Fatalf("%d fetches", n)
	}
}

// Concurrent tokens on a verifier with nothing cached share one fetch.
func TestColdStartSharesOneFetch(t *testing.T) {
	f := newCacheFixture(t, nil)
	f.o.SetStatus(verifytest.Hang)
	var wg sync.WaitGroup
	errs := make([]error, 100)
	var started sync.WaitGroup
	started.Add(len(errs))
	for i := range errs {
		wg.Go(func() {
			started.Done()
			errs[i] = f.verify(t, f.key)
		})
	}
	started.Wait()
	// Every goroutine is either waiting on the held fetch or about to
	// join it; answer it.
	for f.o.JWKSFetches() == 0 {
		time.Sleep(time.Millisecond)
	}
	f.o.SetStatus(200)
	f.o.Release() // the held request ends without an answer: that fetch fails
	wg.Wait()
	hits := f.o.JWKSFetches()
	if hits != 1 {
		t.Fatalf("%d fetches for 100 concurrent tokens, want 1", hits)
	}
	for _, err := range errs {
		if ReasonOf(err) != ReasonKeySetUnavailable {
			t.Fatalf("%v, want the shared fetch's failure", err)
		}
	}
}

// When fetches fail, the last good set keeps serving for StaleIfError past
// its expiry, fetches back off, and the verifier recovers with the origin.
func TestStaleIfError(t *testing.T) {
	for _, tc := range []struct {
		name    string
		break_  func(o *origin)
		within  Reason
		stale   time.Duration
		message string
	}{
		{"origin answers 500", func(o *origin) { o.SetStatus(500) }, 0, 0, "status 500"},
		{"origin answers garbage", func(o *origin) { o.SetBody([]byte("<html>oops</html>")) }, 0, 0, "not a JWK Set"},
		{"origin answers an empty set", func(o *origin) { o.SetBody([]byte(`{"keys":[]}`)) }, 0, 0, "no usable signing key"},
		{"origin answers JSON without keys", func(o *origin) { o.SetBody([]byte(`{"kys":[]}`)) }, 0, 0, `no "keys" array`},
		{"stale disabled", func(o *origin) { o.SetStatus(503) }, ReasonKeySetUnavailable, -1, "status 503"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCacheFixture(t, func(c *Config) { c.StaleIfError = tc.stale })
			f.mustVerify(t, f.key)
			tc.break_(f.o)
			f.clock.Advance(301 * time.Second)
			err := f.verify(t, f.key)
			if ReasonOf(err) != tc.within {
				t.Fatalf("after expiry, fetch failing: %v, want %v", err, tc.within)
			}
			if err != nil && !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("%v does not say %q", err, tc.message)
			}
			hits := f.o.JWKSFetches()
			for range 50 { // inside the backoff: no fetch per token
				_ = f.verify(t, f.key)
			}
			waitIdle(f.v)
			if n := f.o.JWKSFetches(); n != hits {
				t.Fatalf("%d fetches during the backoff", n-hits)
			}
			if tc.stale < 0 {
				return
			}
			f.clock.Advance(DefaultStaleIfError)
			err = f.verify(t, f.key)
			if ReasonOf(err) != ReasonKeySetUnavailable || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("past StaleIfError: %v", err)
			}
			f.o.SetStatus(200)
			f.o.SetKeys(f.key)
			f.clock.Advance(DefaultRefetchInterval)
			f.mustVerify(t, f.key)
		})
	}
}

// With nothing cached, an origin that is down, slow beyond the fetch
// timeout or answers garbage leaves the token unverifiable: key set
// unavailable, with the cause.
func TestNoKeySet(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(o *origin)
		want  string
	}{
		{"down", func(o *origin) { o.Close() }, "connection refused"},
		{"slow", func(o *origin) { o.SetStatus(verifytest.Hang) }, "deadline exceeded"},
		{"garbage", func(o *origin) { o.SetBody([]byte{0xff, 0, 1}) }, "not a JWK Set"},
		{"not found", func(o *origin) { o.SetStatus(404) }, "status 404"},
		{"too big", func(o *origin) { o.SetBody([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", MaxKeySetBytes) + `"}`)) }, "over 1048576 bytes"},
		{"keys unusable", func(o *origin) {
			o.SetBody([]byte(`{"keys":[{"kty":"oct","kid":"k1","k":"c2VjcmV0"},{"kty":"RSA","kid":"k1","n":"AQAB","e":"AQAB"},{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`))
		}, "no usable signing key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCacheFixture(t, func(c *Config) { c.FetchTimeout = 200 * time.Millisecond })
			tc.setup(f.o)
			err := f.verify(t, f.key)
			if ReasonOf(err) != ReasonKeySetUnavailable || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want key set unavailable saying %q", err, tc.want)
			}
			// During the backoff the next token fails at once, without a fetch.
			hits := f.o.JWKSFetches()
			if err := f.verify(t, f.key); ReasonOf(err) != ReasonKeySetUnavailable {
				t.Fatalf("second token: %v", err)
			}
			waitIdle(f.v)
			if n := f.o.JWKSFetches(); n != hits {
				t.Fatal("a fetch during the backoff")
			}
		})
	}
}

// Conditional refetches: an unchanged set costs a 304, and is kept.
func TestNotModified(t *testing.T) {
	f := newCacheFixture(t, nil)
	f.o.SetETag(`"v1"`)
	f.mustVerify(t, f.key)
	f.clock.Advance(301 * time.Second)
	f.mustVerify(t, f.key)
	if f.o.NotModified() != 1 || f.o.JWKSFetches() != 2 {
		t.Fatalf("%d fetches, %d not modified", f.o.JWKSFetches(), f.o.NotModified())
	}
	f.clock.Advance(301 * time.Second)
	f.mustVerify(t, f.key)
	if f.o.NotModified() != 2 {
		t.Fatal("the 304 set lost its ETag")
	}
}

// The discovery document names the key set and the algorithms; it must
// name the configured issuer; algorithms that are no signature are dropped.
func TestDiscovery(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(o *origin, f *fixture)
		key   func(f *fixture) testKey
		want  Reason
		msg   string
	}{
		{"ES256 listed", func(o *origin, f *fixture) { o.SetDiscovery("", "", []string{"ES256"}) }, func(f *fixture) testKey { return f.es }, 0, ""},
		{"HS256 and none listed are dropped", func(o *origin, f *fixture) { o.SetDiscovery("", "", []string{"HS256", "none", "ES256"}) }, func(f *fixture) testKey { return f.es }, 0, ""},
		{"RS256 not listed", func(o *origin, f *fixture) { o.SetDiscovery("", "", []string{"ES256"}) }, func(f *fixture) testKey { return f.rs }, ReasonWrongAlgorithm, "not among the allowed algorithms [ES256]"},
		{"only HS256 listed", func(o *origin, f *fixture) { o.SetDiscovery("", "", []string{"HS256"}) }, func(f *fixture) testKey { return f.es }, ReasonKeySetUnavailable, "names no algorithm"},
		{"another issuer", func(o *origin, f *fixture) { o.SetDiscovery("https://issuer.example.com", "", []string{"ES256"}) }, func(f *fixture) testKey { return f.es }, ReasonKeySetUnavailable, "issuer is \"https://issuer.example.com\""},
		{"jwks_uri in the clear", func(o *origin, f *fixture) {
			o.SetDiscovery("", "http://keys.example.com/jwks.json", []string{"ES256"})
		}, func(f *fixture) testKey { return f.es }, ReasonKeySetUnavailable, "must use https"},
		{"jwks_uri elsewhere", func(o *origin, f *fixture) {
			other := newOrigin(f.t, f.rs)
			o.SetDiscovery("", other.URL+"/jwks.json", []string{"RS256"})
		}, func(f *fixture) testKey { return f.rs }, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.t = t
			tc.setup(f.o, f)
			_, err := f.v.Verify(ctxT(t), tc.key(f).Sign(f.claims(nil)))
			if ReasonOf(err) != tc.want || (err != nil && !strings.Contains(err.Error(), tc.msg)) {
				t.Fatalf("%v, want %v saying %q", err, tc.want, tc.msg)
			}
		})
	}
}

// The background refresher fetches before expiry with no token asking,
// and retries a failed fetch after its backoff.
func TestBackgroundRefresher(t *testing.T) {
	c := newClock()
	key := newKey(t, "ES256", "k1")
	o := newOrigin(t, key)
	timers := make(chan time.Duration, 10)
	fire := make(chan time.Time)
	v, err := newVerifier(Config{JWKSURL: o.URL + "/jwks.json", Audiences: []string{"hotsock"}, Algorithms: []string{"ES256"}, Now: c.Now},
		func(d time.Duration) (<-chan time.Time, func() bool) {
			timers <- d
			return fire, func() bool { return true }
		})
	if err != nil {
		t.Fatal(err)
	}
	defer closeAndCheck(t, v)
	// The refresher may ask for the same wait twice (a wake that raced its
	// timer); await asks for the wait wanted, allowing repeats of the last.
	last := time.Duration(-1)
	await := func(want time.Duration) {
		t.Helper()
		for d := range timers {
			if d == want {
				last = d
				return
			}
			if d != last {
				t.Fatalf("the refresher waits %v, want %v", d, want)
			}
		}
	}
	if err := v.Refresh(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	refresh := 300*time.Second - refreshMargin(300*time.Second)
	await(refresh)
	o.SetStatus(500)
	fire <- c.Now()
	await(time.Second) // the backoff after a failed fetch
	if o.JWKSFetches() != 2 {
		t.Fatalf("%d fetches", o.JWKSFetches())
	}
	o.SetStatus(200)
	c.Advance(time.Second)
	fire <- c.Now()
	await(refresh) // recovered: the next refresh ahead of expiry
	if o.JWKSFetches() != 3 {
		t.Fatalf("%d fetches", o.JWKSFetches())
	}
}

// After Close, nothing is fetched, and no goroutine is left behind (the
// test cleanup checks that for every verifier).
func TestClose(t *testing.T) {
	f := newCacheFixture(t, nil)
	f.mustVerify(t, f.key)
	f.v.Close()
	f.v.Close()
	f.mustVerify(t, f.key) // the cached set still answers
	f.clock.Advance(time.Hour * 3)
	if err := f.verify(t, f.key); ReasonOf(err) != ReasonKeySetUnavailable || !errors.Is(err, errClosed) {
		t.Fatalf("%v", err)
	}
	if err := f.v.Refresh(context.Background()); !errors.Is(err, errClosed) {
		t.Fatalf("Refresh after Close: %v", err)
	}
}
