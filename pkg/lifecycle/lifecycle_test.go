package lifecycle

import (
	"strings"
	"testing"
	"time"

	"jwks-issuer/pkg/keys"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func cfg() Config { return Defaults() }

func record(t *testing.T) *keys.Record {
	t.Helper()
	r, err := keys.NewRecord(keys.ES256, t0)
	if err != nil {
		t.Fatal(err)
	}
	return &r
}

func kidsOf(set []keys.JWK) string {
	var s []string
	for _, k := range set {
		s = append(s, k.Kid)
	}
	return strings.Join(s, ",")
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"defaults", func(*Config) {}, ""},
		{"all zero but T", func(c *Config) { *c = Config{MaxTokenTTL: time.Second} }, ""},
		{"grace below max-age", func(c *Config) { c.ActivationGrace = time.Minute },
			"ACTIVATION_GRACE_SECONDS (60) is below JWKS_MAX_AGE_SECONDS (300)"},
		{"negative skew", func(c *Config) { c.ClockSkew = -time.Second }, "CLOCK_SKEW_SECONDS is -1"},
		{"zero ttl", func(c *Config) { c.MaxTokenTTL = 0 }, "MAX_TOKEN_TTL_SECONDS is 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg()
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestRetention(t *testing.T) {
	if got, want := cfg().Retention(), time.Minute+time.Hour+time.Hour+time.Minute; got != want {
		t.Fatalf("Retention = %v, want S+T+Gr+k = %v", got, want)
	}
}

func TestCheckPromotion(t *testing.T) {
	next := record(t)
	published := t0.Add(time.Hour)
	tests := []struct {
		name      string
		state     State
		grace     time.Duration
		now       time.Time
		allowed   bool
		notBefore time.Time
	}{
		{"no next", State{}, time.Hour, t0, false, time.Time{}},
		{"never published", State{Next: next}, time.Hour, t0.Add(100 * time.Hour), false, time.Time{}},
		{"never published, zero grace", State{Next: next}, 0, t0, true, time.Time{}},
		{"grace counted from publication, not creation", State{Next: next, Published: map[string]time.Time{next.Kid: published}},
			time.Hour, t0.Add(90 * time.Minute), false, published.Add(time.Hour)},
		{"grace passed", State{Next: next, Published: map[string]time.Time{next.Kid: published}},
			time.Hour, published.Add(time.Hour), true, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg()
			c.ActivationGrace, c.JWKSMaxAge = tt.grace, 0
			err := CheckPromotion(tt.state, c, tt.now)
			if (err == nil) != tt.allowed {
				t.Fatalf("CheckPromotion = %v, allowed want %v", err, tt.allowed)
			}
			if err != nil {
				refused := err.(*PromotionRefused)
				if !refused.NotBefore.Equal(tt.notBefore) {
					t.Fatalf("NotBefore = %v, want %v", refused.NotBefore, tt.notBefore)
				}
			}
		})
	}
}

// A sequence of rotations inside one token lifetime keeps every key whose
// tokens may still be alive, then lets each go exactly at r + S + T + Gr + k.
func TestRetiredKeysStayUntilTheirTokensExpire(t *testing.T) {
	c := cfg()
	k1, k2, k3, k4 := record(t), record(t), record(t), record(t)
	st := State{Current: k1, CurrentSince: t0, Next: k2}

	// Two rotations ten minutes apart: k1 retires at r1, k2 at r2.
	r1, r2 := t0.Add(10*time.Minute), t0.Add(20*time.Minute)
	p2 := Promote(st, c, r1)
	st = State{Current: &p2, CurrentSince: r1, Next: k3}
	p3 := Promote(st, c, r2)
	st = State{Current: &p3, CurrentSince: r2, Next: k4}

	want := []struct {
		at   time.Time
		kids []*keys.Record
	}{
		{r2, []*keys.Record{k3, k4, k2, k1}},
		{r1.Add(c.Retention() - time.Second), []*keys.Record{k3, k4, k2, k1}},
		{r1.Add(c.Retention()), []*keys.Record{k3, k4, k2}},
		{r2.Add(c.Retention() - time.Second), []*keys.Record{k3, k4, k2}},
		{r2.Add(c.Retention()), []*keys.Record{k3, k4}},
	}
	for _, w := range want {
		var exp []string
		for _, r := range w.kids {
			exp = append(exp, r.Kid)
		}
		if got := kidsOf(KeySet(st, c, w.at)); got != strings.Join(exp, ",") {
			t.Errorf("at %v: key set %s, want %s", w.at.Sub(t0), got, strings.Join(exp, ","))
		}
	}
}

// The retirement moment is when AWSCURRENT left the key, not when the
// pending record was written: a rotation stuck for days keeps the old key.
func TestRetirementCountsFromFinishNotCreate(t *testing.T) {
	c := cfg()
	k1, k2, k3 := record(t), record(t), record(t)
	st := State{Current: k1, CurrentSince: t0, Next: k2}
	created := t0.Add(time.Hour)
	pending := Promote(st, c, created)

	stuck := State{Current: k1, CurrentSince: t0, Pending: &pending, Next: k3}
	later := created.Add(10 * 24 * time.Hour)
	if got := kidsOf(KeySet(stuck, c, later)); got != k1.Kid+","+k2.Kid+","+k3.Kid {
		t.Fatalf("stuck rotation: key set %s, want current, pending, next", got)
	}
	finished := State{Current: &pending, CurrentSince: later, Next: k3}
	if got := kidsOf(KeySet(finished, c, later.Add(c.Retention()-time.Second))); !strings.Contains(got, k1.Kid) {
		t.Fatalf("k1 dropped before finish + retention: %s", got)
	}
	if got := kidsOf(KeySet(finished, c, later.Add(c.Retention()))); strings.Contains(got, k1.Kid) {
		t.Fatalf("k1 kept after finish + retention: %s", got)
	}
	// Not knowing when the record became current keeps the key.
	unknown := State{Current: &pending, Next: k3}
	if got := kidsOf(KeySet(unknown, c, later.Add(100*c.Retention()))); !strings.Contains(got, k1.Kid) {
		t.Fatalf("k1 dropped while its retirement time is unknown: %s", got)
	}
}

func TestRolloverRevokesCurrentAndNext(t *testing.T) {
	c := cfg()
	k0, k1, k2, fresh, k3 := record(t), record(t), record(t), record(t), record(t)
	p1 := Promote(State{Current: k0, CurrentSince: t0, Next: k1}, c, t0.Add(time.Minute))
	st := State{Current: &p1, CurrentSince: t0.Add(time.Minute), Next: k2}
	now := t0.Add(2 * time.Minute)
	rec := Rollover(st, c, now, *fresh)
	if !rec.Emergency {
		t.Fatal("rollover record not marked emergency")
	}
	during := State{Current: &p1, CurrentSince: st.CurrentSince, Pending: &rec, Next: k3}
	got := kidsOf(KeySet(during, c, now))
	if want := fresh.Kid + "," + k3.Kid + "," + k0.Kid; got != want {
		t.Fatalf("key set during rollover %s, want fresh, new next, retired k0 (%s)", got, want)
	}
	after := State{Current: &rec, CurrentSince: now, Next: k3}
	for _, at := range []time.Time{now, now.Add(c.Retention() - time.Second)} {
		if got := kidsOf(KeySet(after, c, at)); strings.Contains(got, k1.Kid) || strings.Contains(got, k2.Kid) {
			t.Fatalf("revoked key published again: %s", got)
		}
	}
	// A later normal rotation carries the revocation forward.
	k4 := record(t)
	p5 := Promote(State{Current: &rec, CurrentSince: now, Next: k3}, c, now.Add(time.Hour))
	final := State{Current: &p5, CurrentSince: now.Add(time.Hour), Next: k4}
	if got := kidsOf(KeySet(final, c, now.Add(time.Hour))); strings.Contains(got, k1.Kid) || strings.Contains(got, k2.Kid) {
		t.Fatalf("revoked key published again after next rotation: %s", got)
	}
	// Revocations in tags alone (an abandoned rollover) still apply.
	tagged := State{Current: &p1, CurrentSince: st.CurrentSince, Next: k2, Revoked: map[string]time.Time{k1.Kid: now}}
	if got := kidsOf(KeySet(tagged, c, now)); strings.Contains(got, k1.Kid) {
		t.Fatalf("tag-revoked key published: %s", got)
	}
}

func TestKeySetOrderIsCurrentPendingNextRetired(t *testing.T) {
	c := cfg()
	k0, k1, k2, k3 := record(t), record(t), record(t), record(t)
	p1 := Promote(State{Current: k0, CurrentSince: t0, Next: k1}, c, t0)
	st := State{Current: &p1, CurrentSince: t0, Next: k2}
	pending := Promote(st, c, t0.Add(time.Minute))
	during := State{Current: &p1, CurrentSince: t0, Pending: &pending, Next: k3}
	want := strings.Join([]string{k1.Kid, k2.Kid, k3.Kid, k0.Kid}, ",")
	if got := kidsOf(KeySet(during, c, t0.Add(time.Minute))); got != want {
		t.Fatalf("order %s, want %s", got, want)
	}
}
