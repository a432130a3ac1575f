package kmscustody_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/kmscustody"
	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/memstore"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// clock is a settable clock shared by the twin (creation dates) and the
// custody (key ages).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

const stackTag = "test-stack"

// The stack's secret and roles, as the template passes them to the rotator.
const (
	testSecret  = "arn:aws:secretsmanager:us-east-1:000000000000:secret:test-stack-KeySecret-AbCdEf"
	signerRole  = "arn:aws:iam::000000000000:role/test-stack-SignerRole-1A2B3C"
	rotatorRole = "arn:aws:iam::000000000000:role/test-stack-RotatorRole-4D5E6F"
)

// ofStack are the options the rotator passes for the test stack.
func ofStack() []kmscustody.Option {
	return []kmscustody.Option{kmscustody.ForSecret(testSecret), kmscustody.WithRoles(signerRole, rotatorRole)}
}

func newCustody(t *testing.T) (*kmscustody.Custody, *memstore.KMS, *clock) {
	t.Helper()
	clk := &clock{t: t0}
	api := memstore.NewKMS(clk.now)
	c, err := kmscustody.New(api, stackTag, 7, clk.now, quiet(), ofStack()...)
	if err != nil {
		t.Fatal(err)
	}
	return c, api, clk
}

func version(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

// verifyJWT checks a token with golang-jwt against the record's public JWK.
func verifyJWT(t *testing.T, tok string, rec keys.Record) {
	t.Helper()
	pub, err := rec.PublicKeyJwk.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	_, err = jwt.Parse(tok, func(tk *jwt.Token) (any, error) {
		if tk.Header["kid"] != rec.Kid {
			return nil, fmt.Errorf("kid %v, want %s", tk.Header["kid"], rec.Kid)
		}
		return pub, nil
	}, jwt.WithValidMethods([]string{string(rec.Alg)}))
	if err != nil {
		t.Fatalf("%s token does not verify: %v", rec.Alg, err)
	}
}

func TestNewValidates(t *testing.T) {
	api := memstore.NewKMS(nil)
	for _, c := range []struct {
		tag    string
		window int
		want   string
	}{
		{"", 30, "KMS_KEY_TAG"},
		// The one check of the window: envconfig leaves it to New.
		{"s", 6, "KMS_DELETION_WINDOW_DAYS is 6, must be between 7 and 30"},
		{"s", 31, "KMS_DELETION_WINDOW_DAYS is 31, must be between 7 and 30"},
	} {
		if _, err := kmscustody.New(api, c.tag, c.window, time.Now, quiet(), ofStack()...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%q, %d): err = %v, want one naming %q", c.tag, c.window, err, c.want)
		}
	}
}

func TestNewKeySignsWithKMSOnly(t *testing.T) {
	ctx := context.Background()
	c, api, _ := newCustody(t)
	for i, alg := range keys.Algorithms {
		rec, err := c.NewKey(ctx, alg, version(i), t0)
		if err != nil {
			t.Fatalf("NewKey(%s): %v", alg, err)
		}
		raw := rec.Marshal()
		if rec.PrivateKeyPem != "" || strings.Contains(string(raw), "PRIVATE") || !strings.HasPrefix(rec.KMSKeyID, "arn:") {
			t.Fatalf("record %s: want a KMS key ARN and no private material", raw)
		}
		if _, err := keys.ParseRecord(raw); err != nil {
			t.Fatalf("record does not parse back: %v", err)
		}
		listed, err := api.ListKeysTagged(ctx, kmscustody.TagVersion, version(i))
		if err != nil || len(listed) != 1 {
			t.Fatalf("keys tagged with the version: %v, %v", listed, err)
		}
		k := listed[0]
		wantSpec := map[keys.Algorithm]store.KeySpec{keys.ES256: store.KeySpecP256, keys.ES384: store.KeySpecP384, keys.RS256: store.KeySpecRSA2048}[alg]
		if k.ARN != rec.KMSKeyID || k.Spec != wantSpec || k.Tags[kmscustody.TagStack] != stackTag || k.Tags[kmscustody.TagKid] != rec.Kid {
			t.Errorf("KMS key %+v: want ARN %s, spec %s, stack and kid tags", k, rec.KMSKeyID, wantSpec)
		}
		key, err := c.SigningKey(rec)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := key.SignProbe(ctx, map[string]any{"sub": "probe", "exp": time.Now().Add(time.Hour).Unix()})
		if err != nil {
			t.Fatalf("sign %s: %v", alg, err)
		}
		verifyJWT(t, tok, rec)
	}
}

// A retried createSecret finds the key its earlier attempt made instead of
// making a second one.
func TestNewKeyIsIdempotentPerVersion(t *testing.T) {
	ctx := context.Background()
	c, api, clk := newCustody(t)
	first, err := c.NewKey(ctx, keys.ES256, version(1), t0)
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(10 * time.Minute)
	again, err := c.NewKey(ctx, keys.ES256, version(1), clk.now())
	if err != nil {
		t.Fatal(err)
	}
	if again.KMSKeyID != first.KMSKeyID || again.Kid != first.Kid || again.PublicKeyJwk != first.PublicKeyJwk {
		t.Fatalf("retry made another key: %s/%s, first %s/%s", again.Kid, again.KMSKeyID, first.Kid, first.KMSKeyID)
	}
	other, err := c.NewKey(ctx, keys.ES256, version(2), clk.now())
	if err != nil {
		t.Fatal(err)
	}
	if other.KMSKeyID == first.KMSKeyID {
		t.Fatal("another version reused the key")
	}
	if all, _ := api.ListKeysTagged(ctx, kmscustody.TagStack, stackTag); len(all) != 2 {
		t.Fatalf("%d keys, want 2", len(all))
	}

	// A key that was disabled, or is too old to be safe from Tidy, is not reused.
	if err := api.DisableKey(ctx, other.KMSKeyID); err != nil {
		t.Fatal(err)
	}
	fresh, err := c.NewKey(ctx, keys.ES256, version(2), clk.now())
	if err != nil {
		t.Fatal(err)
	}
	if fresh.KMSKeyID == other.KMSKeyID {
		t.Error("reused a disabled key")
	}
	clk.advance(time.Hour)
	late, err := c.NewKey(ctx, keys.ES256, version(1), clk.now())
	if err != nil {
		t.Fatal(err)
	}
	if late.KMSKeyID == first.KMSKeyID {
		t.Error("a retry past the reuse age reused a key Tidy may be deleting")
	}
}

func TestTidy(t *testing.T) {
	ctx := context.Background()
	c, api, clk := newCustody(t)
	newKey := func(n int) keys.Record {
		t.Helper()
		rec, err := c.NewKey(ctx, keys.ES256, version(n), clk.now())
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	live, retired, revoked, revokedGone, orphan, pending := newKey(1), newKey(2), newKey(3), newKey(4), newKey(5), newKey(6)
	if err := api.ScheduleKeyDeletion(ctx, pending.KMSKeyID, 30); err != nil {
		t.Fatal(err)
	}
	// Another stack's key, and one made outside the custody: never touched.
	foreign, err := api.CreateKey(ctx, store.CreateKeyRequest{Spec: store.KeySpecP256, Tags: map[string]string{kmscustody.TagStack: "other-stack"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := api.DisableKey(ctx, revokedGone.KMSKeyID); err != nil { // revoked by an earlier Tidy
		t.Fatal(err)
	}
	clk.advance(kmscustody.OrphanAge + time.Minute)
	young := newKey(7)        // an in-flight createSecret's key: not referenced yet
	droppedYoung := newKey(8) // retired past retention, however young: goes at once

	var calls []string
	api.SetHook(func(op string) error { calls = append(calls, op); return nil })
	dropped := []string{retired.KMSKeyID, droppedYoung.KMSKeyID}
	if err := c.Tidy(ctx, []string{live.KMSKeyID}, []string{revoked.KMSKeyID}, dropped); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		droppedYoung.KMSKeyID: store.KeyPendingDeletion,
		live.KMSKeyID:         store.KeyEnabled,
		retired.KMSKeyID:      store.KeyPendingDeletion,
		revoked.KMSKeyID:      store.KeyDisabled,
		revokedGone.KMSKeyID:  store.KeyPendingDeletion, // out of the revoked list: deleted
		orphan.KMSKeyID:       store.KeyPendingDeletion,
		pending.KMSKeyID:      store.KeyPendingDeletion,
		young.KMSKeyID:        store.KeyEnabled,
		foreign.ARN:           store.KeyEnabled,
	}
	for arn, state := range want {
		if k, err := api.DescribeKey(ctx, arn); err != nil || k.State != state {
			t.Errorf("key %s: %s, %v; want %s", arn, k.State, err, state)
		}
	}
	if n := strings.Count(strings.Join(calls, " "), memstore.OpScheduleKeyDeletion); n != 4 {
		t.Errorf("%d ScheduleKeyDeletion calls, want 4 (the pending key is not scheduled again): %v", n, calls)
	}

	// Tidy is idempotent: a second run only lists.
	calls = nil
	if err := c.Tidy(ctx, []string{live.KMSKeyID}, []string{revoked.KMSKeyID}, dropped); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || calls[0] != memstore.OpListKeysTagged {
		t.Errorf("second Tidy made calls %v, want only the listing", calls)
	}
}

// One key failing does not stop the others, and the error names it.
func TestTidyGoesOnAfterAnError(t *testing.T) {
	ctx := context.Background()
	c, api, clk := newCustody(t)
	var recs []keys.Record
	for i := range 3 {
		rec, err := c.NewKey(ctx, keys.ES256, version(i), clk.now())
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	clk.advance(2 * kmscustody.OrphanAge)
	var once sync.Once
	api.SetHook(func(op string) error {
		var err error
		if op == memstore.OpScheduleKeyDeletion {
			once.Do(func() { err = errors.New("injected") })
		}
		return err
	})
	err := c.Tidy(ctx, nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "injected") || !strings.Contains(err.Error(), "arn:") {
		t.Fatalf("Tidy: err = %v, want the injected error naming the key", err)
	}
	scheduled := 0
	for _, rec := range recs {
		if k, _ := api.DescribeKey(ctx, rec.KMSKeyID); k.State == store.KeyPendingDeletion {
			scheduled++
		}
	}
	if scheduled != 2 {
		t.Errorf("%d keys scheduled, want the 2 that did not fail", scheduled)
	}
}

func TestCheckKeys(t *testing.T) {
	ctx := context.Background()
	c, api, _ := newCustody(t)
	a, err := c.NewKey(ctx, keys.ES256, version(1), t0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.NewKey(ctx, keys.ES256, version(2), t0)
	if err != nil {
		t.Fatal(err)
	}
	local, err := keys.NewRecord(keys.ES256, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckKeys(ctx, a, b, local); err != nil {
		t.Fatalf("CheckKeys of enabled keys and a local one: %v", err)
	}

	swapped := a
	swapped.KMSKeyID = b.KMSKeyID
	missing := a
	missing.KMSKeyID = "arn:aws:kms:us-east-1:000000000000:key/00000000-0000-4000-8000-000000000000"
	if err := api.DisableKey(ctx, b.KMSKeyID); err != nil {
		t.Fatal(err)
	}
	for _, c2 := range []struct {
		rec  keys.Record
		want []string
	}{
		{b, []string{b.Kid, b.KMSKeyID, "Disabled"}},
		{missing, []string{a.Kid, missing.KMSKeyID, "not found"}},
	} {
		if err := c.CheckKeys(ctx, a, c2.rec); err == nil {
			t.Errorf("CheckKeys(%s): err = nil", c2.rec.KMSKeyID)
		} else {
			for _, w := range c2.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("CheckKeys: %v, want it to name %q", err, w)
				}
			}
		}
	}
	other, err := c.NewKey(ctx, keys.ES256, version(3), t0)
	if err != nil {
		t.Fatal(err)
	}
	swapped.KMSKeyID = other.KMSKeyID
	if err := c.CheckKeys(ctx, swapped); err == nil || !strings.Contains(err.Error(), "different public key") {
		t.Errorf("CheckKeys of a record pointing at another key: %v", err)
	}
}

// throttled makes the first n Sign calls fail as KMS throttling does, and
// counts all Sign calls.
func throttled(api *memstore.KMS, n int) *int {
	var mu sync.Mutex
	calls := new(int)
	api.SetHook(func(op string) error {
		if op != memstore.OpSign {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		*calls++
		if n < 0 || *calls <= n {
			return fmt.Errorf("sign: %w: ThrottlingException: Rate exceeded", store.ErrThrottled)
		}
		return nil
	})
	return calls
}

func TestSignerRetriesThrottling(t *testing.T) {
	ctx := context.Background()
	c, api, _ := newCustody(t)
	rec, err := c.NewKey(ctx, keys.ES256, version(1), t0)
	if err != nil {
		t.Fatal(err)
	}
	key, err := c.SigningKey(rec)
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{"exp": time.Now().Add(time.Hour).Unix()}

	calls := throttled(api, 0)
	tok, err := key.SignProbe(ctx, claims)
	if err != nil || *calls != 1 {
		t.Fatalf("unthrottled: %d calls, %v; want exactly 1", *calls, err)
	}
	verifyJWT(t, tok, rec)

	calls = throttled(api, 3)
	tok, err = key.SignProbe(ctx, claims)
	if err != nil || *calls != 4 {
		t.Fatalf("throttled 3 times: %d calls, %v; want success on the 4th", *calls, err)
	}
	verifyJWT(t, tok, rec)

	// Throttled for good: a clear error before the deadline, not a timeout.
	calls = throttled(api, -1)
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	start := time.Now()
	_, err = key.SignProbe(dctx, claims)
	took := time.Since(start)
	if !errors.Is(err, store.ErrThrottled) || !strings.Contains(err.Error(), "quota") || dctx.Err() != nil {
		t.Fatalf("always throttled: err = %v after %s (ctx %v); want a throttling error before the deadline", err, took, dctx.Err())
	}
	if *calls < 3 {
		t.Errorf("gave up after %d calls in %s, want retries while the deadline allowed", *calls, took)
	}
	t.Logf("always throttled: %d calls in %s, then: %v", *calls, took.Round(time.Millisecond), err)

	// Anything else is not retried.
	api.SetHook(nil)
	if err := api.DisableKey(ctx, rec.KMSKeyID); err != nil {
		t.Fatal(err)
	}
	calls = throttled(api, 0)
	if _, err := key.SignProbe(ctx, claims); !errors.Is(err, store.ErrKeyState) || *calls != 1 {
		t.Errorf("disabled key: %d calls, %v; want 1 call and ErrKeyState", *calls, err)
	}
}

// A signing input over KMS's 4,096-byte RAW limit is hashed locally and
// sent as a DIGEST (which the twin, unlike moto, checks).
func TestSignerLongInputSendsDigest(t *testing.T) {
	ctx := context.Background()
	c, _, _ := newCustody(t)
	for i, alg := range keys.Algorithms {
		rec, err := c.NewKey(ctx, alg, version(i), t0)
		if err != nil {
			t.Fatal(err)
		}
		key, err := c.SigningKey(rec)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := key.SignProbe(ctx, map[string]any{"exp": time.Now().Add(time.Hour).Unix(), "pad": strings.Repeat("x", 5000)})
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		verifyJWT(t, tok, rec)
	}
}
