package verify

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"jwks-issuer/pkg/verify/verifytest"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_780_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type testKey = *verifytest.Key

type origin = verifytest.Origin

// rsaKey is generated once: 2048-bit keys take a while.
var rsaKey = sync.OnceValue(func() *verifytest.Key {
	k, err := verifytest.NewKey("RS256", "rsa")
	if err != nil {
		panic(err)
	}
	return k
})

func newKey(t testing.TB, alg, kid string) testKey {
	t.Helper()
	if strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS") {
		return rsaKey().As(alg, kid)
	}
	k, err := verifytest.NewKey(alg, kid)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newOrigin(t testing.TB, keys ...testKey) *origin {
	o := verifytest.NewOrigin([]string{"ES256"}, keys...)
	t.Cleanup(o.Close)
	return o
}

func b64s(b []byte) string { return verifytest.B64(b) }

var jwks = verifytest.JWKS

// newTestVerifier makes a Verifier whose background refresher never fires
// on its own, and closes it at the end of the test, checking that none of
// its goroutines outlive it.
func newTestVerifier(t testing.TB, cfg Config) *Verifier {
	t.Helper()
	v, err := newVerifier(cfg, func(time.Duration) (<-chan time.Time, func() bool) {
		return nil, func() bool { return false }
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeAndCheck(t, v) })
	return v
}

func closeAndCheck(t testing.TB, v *Verifier) {
	t.Helper()
	v.Close()
	// Close has waited for every goroutine's WaitGroup.Done; give them the
	// moment they need to return after it.
	var left string
	for range 100 {
		if left = goroutinesOf(v); left == "" {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("a goroutine of the verifier outlives Close:\n%s", left)
}

func goroutinesOf(v *Verifier) string {
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	for _, g := range strings.Split(stacks, "\n\n") {
		if strings.Contains(g, "jwks-issuer/pkg/verify.(*Verifier)") && strings.Contains(g, fmt.Sprintf("%p", v)) {
			return g
		}
	}
	return ""
}

// waitIdle waits for the fetch in flight, if any.
func waitIdle(v *Verifier) {
	v.mu.Lock()
	f := v.flight
	v.mu.Unlock()
	if f != nil {
		<-f.done
	}
}

func claimsFor(c *clock, iss string, extra map[string]any) map[string]any {
	m := map[string]any{"iss": iss, "aud": "hotsock", "sub": "user-1", "exp": c.Now().Unix() + 300, "iat": c.Now().Unix()}
	for k, v := range extra {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}
