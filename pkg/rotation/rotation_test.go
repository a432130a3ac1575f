package rotation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/memstore"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func quiet() *slog.Logger                { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }
func tokenN(n int) string                { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }
func testConfig() lifecycle.Config       { return lifecycle.Defaults() }

type env struct {
	secret *memstore.Secrets
	jwks   *memstore.Object
	clock  *clock
	rot    *Rotator
	cfg    lifecycle.Config
}

func newEnv(t *testing.T, cfg lifecycle.Config) *env {
	t.Helper()
	e := &env{secret: memstore.NewSecrets(), jwks: memstore.NewObject(), clock: &clock{t0}, cfg: cfg}
	if err := e.secret.PutVersion(context.Background(), tokenN(0), []byte("{}"), []string{store.StageCurrent}); err != nil {
		t.Fatal(err)
	}
	rot, err := New(Config{Lifecycle: cfg, Algorithm: keys.ES256, SecretID: "test"}, e.secret, e.jwks, LocalCustody{}, e.clock.now, quiet())
	if err != nil {
		t.Fatal(err)
	}
	e.rot = rot
	return e
}

var steps = []string{"createSecret", "setSecret", "testSecret", "finishSecret"}

// rotate runs the four steps as Secrets Manager does.
func (e *env) rotate(tok string) error {
	if err := e.secret.BeginRotation(tok); err != nil {
		return err
	}
	for _, s := range steps {
		if err := e.rot.Handle(context.Background(), Event{Step: s, SecretID: "test", ClientRequestToken: tok}); err != nil {
			return err
		}
	}
	return nil
}

func (e *env) mustRotate(t *testing.T, tok string) {
	t.Helper()
	if err := e.rotate(tok); err != nil {
		t.Fatalf("rotation %s: %v", tok, err)
	}
}

func (e *env) state(t *testing.T) snapshot {
	t.Helper()
	s, err := e.rot.load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *env) published(t *testing.T) []string {
	t.Helper()
	obj, err := e.jwks.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	set, err := keys.ParseSet(obj.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	return out
}

// fingerprint is everything a step may change, to compare runs.
func (e *env) fingerprint(t *testing.T) string {
	t.Helper()
	meta, _ := e.secret.Describe(context.Background())
	obj, _ := e.jwks.Get(context.Background())
	return fmt.Sprintf("versions=%v stages=%v tags=%v jwks=%s", e.secret.Versions(), meta.Stages, meta.Tags, obj.Body)
}

func TestFirstRotationInitialisesTheSecret(t *testing.T) {
	e := newEnv(t, testConfig())
	e.mustRotate(t, tokenN(1))
	s := e.state(t)
	meta := s.meta
	if meta.Stages[store.StageCurrent] != tokenN(1) || meta.Stages["AWSPREVIOUS"] != tokenN(0) {
		t.Fatalf("stages %v: want AWSCURRENT on the token, AWSPREVIOUS on the {} version", meta.Stages)
	}
	if _, ok := meta.Stages[store.StagePending]; ok {
		t.Fatalf("AWSPENDING left behind: %v", meta.Stages)
	}
	nextVersion := meta.Stages[store.StageNext]
	if nextVersion == "" || nextVersion == tokenN(1) || s.state.Next == nil {
		t.Fatalf("no separate NEXT version: %v", meta.Stages)
	}
	if got, want := strings.Join(e.published(t), ","), s.state.Current.Kid+","+s.state.Next.Kid; got != want {
		t.Fatalf("jwks %s, want {K1, K2} = %s", got, want)
	}
	obj, _ := e.jwks.Get(context.Background())
	if obj.CacheControl != "public, max-age=300" || obj.ContentType != "application/json" {
		t.Fatalf("headers %q %q", obj.CacheControl, obj.ContentType)
	}
	if strings.Contains(string(obj.Body), "PRIVATE") || strings.Contains(string(obj.Body), `"d"`) {
		t.Fatal("private material published")
	}
}

// Every step, run again, changes nothing: no second key, no label moved twice.
func TestEveryStepIsIdempotent(t *testing.T) {
	for _, cfg := range []struct {
		name   string
		first  bool
		urgent bool
	}{{"first rotation", true, false}, {"normal rotation", false, false}, {"emergency rollover", false, true}} {
		t.Run(cfg.name, func(t *testing.T) {
			e := newEnv(t, testConfig())
			tok := tokenN(1)
			if !cfg.first {
				e.mustRotate(t, tokenN(1))
				e.clock.advance(25 * time.Hour)
				tok = tokenN(2)
			}
			if cfg.urgent {
				_ = e.secret.Tag(context.Background(), map[string]string{lifecycle.TagRollover: lifecycle.RolloverEmergency})
			}
			if err := e.secret.BeginRotation(tok); err != nil {
				t.Fatal(err)
			}
			for _, s := range steps {
				ev := Event{Step: s, SecretID: "test", ClientRequestToken: tok}
				if err := e.rot.Handle(context.Background(), ev); err != nil {
					t.Fatalf("%s: %v", s, err)
				}
				before := e.fingerprint(t)
				e.clock.advance(time.Minute) // a retry comes later, with a later clock
				if err := e.rot.Handle(context.Background(), ev); err != nil {
					t.Fatalf("%s again: %v", s, err)
				}
				if after := e.fingerprint(t); after != before {
					t.Fatalf("%s run twice changed state:\nbefore %s\nafter  %s", s, before, after)
				}
			}
		})
	}
}

func TestEarlyRotationIsRefusedAndChangesNothing(t *testing.T) {
	e := newEnv(t, testConfig())
	e.mustRotate(t, tokenN(1))
	e.clock.advance(23 * time.Hour)
	before := e.fingerprint(t)
	err := e.rotate(tokenN(2))
	var refused *lifecycle.PromotionRefused
	if !errors.As(err, &refused) {
		t.Fatalf("early rotation: %v, want a refusal", err)
	}
	if !strings.Contains(err.Error(), "rotation may proceed at 2026-01-02T00:00:00Z") {
		t.Fatalf("refusal does not say when: %v", err)
	}
	meta, _ := e.secret.Describe(context.Background())
	if _, ok := meta.Stages[store.StagePending]; ok {
		t.Fatalf("refused rotation left AWSPENDING: %v", meta.Stages)
	}
	// Apart from the stub version RotateSecret itself made, nothing changed.
	after := strings.Replace(e.fingerprint(t), " "+tokenN(2), "", 1)
	if after != before {
		t.Fatalf("refused rotation changed state:\nbefore %s\nafter  %s", before, after)
	}
	e.clock.advance(time.Hour)
	e.mustRotate(t, tokenN(3))
}

func TestRotationRetiresAndCleanupDropsAfterRetention(t *testing.T) {
	cfg := testConfig()
	e := newEnv(t, cfg)
	e.mustRotate(t, tokenN(1))
	k1 := e.state(t).state.Current.Kid
	k2 := e.state(t).state.Next.Kid
	e.clock.advance(24 * time.Hour)
	e.mustRotate(t, tokenN(2))
	retiredAt := e.clock.t
	s := e.state(t).state
	if s.Current.Kid != k2 {
		t.Fatalf("current %s, want the former NEXT %s", s.Current.Kid, k2)
	}
	k3 := s.Next.Kid
	if got := strings.Join(e.published(t), ","); got != k2+","+k3+","+k1 {
		t.Fatalf("jwks %s, want current, next, retired", got)
	}
	for _, c := range []struct {
		at   time.Time
		want string
	}{
		{retiredAt.Add(cfg.Retention() - time.Second), k2 + "," + k3 + "," + k1},
		{retiredAt.Add(cfg.Retention()), k2 + "," + k3},
	} {
		e.clock.t = c.at
		if err := e.rot.Handle(context.Background(), Event{Action: "cleanup"}); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(e.published(t), ","); got != c.want {
			t.Fatalf("at retirement + %v: jwks %s, want %s", c.at.Sub(retiredAt), got, c.want)
		}
	}
}

// A rotation whose steps are days apart retires the old key when finishSecret
// ran, not when createSecret wrote the pending record.
func TestStepsDaysApart(t *testing.T) {
	cfg := testConfig()
	e := newEnv(t, cfg)
	e.mustRotate(t, tokenN(1))
	k1 := e.state(t).state.Current.Kid
	e.clock.advance(24 * time.Hour)
	tok := tokenN(2)
	_ = e.secret.BeginRotation(tok)
	for _, s := range steps[:3] {
		if err := e.rot.Handle(context.Background(), Event{Step: s, SecretID: "test", ClientRequestToken: tok}); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.advance(5 * 24 * time.Hour)
	if err := e.rot.Handle(context.Background(), Event{Action: "cleanup"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(e.published(t), ","), k1) {
		t.Fatal("the still-current key left the set while its rotation was unfinished")
	}
	if err := e.rot.Handle(context.Background(), Event{Step: "finishSecret", SecretID: "test", ClientRequestToken: tok}); err != nil {
		t.Fatal(err)
	}
	finished := e.clock.t
	e.clock.t = finished.Add(cfg.Retention() - time.Second)
	_ = e.rot.Cleanup(context.Background())
	if !strings.Contains(strings.Join(e.published(t), ","), k1) {
		t.Fatal("retired key dropped before finish + retention")
	}
	e.clock.t = finished.Add(cfg.Retention())
	_ = e.rot.Cleanup(context.Background())
	if strings.Contains(strings.Join(e.published(t), ","), k1) {
		t.Fatal("retired key kept after finish + retention")
	}
}

func TestManyRetiredKeysAndFewTags(t *testing.T) {
	cfg := testConfig()
	cfg.ActivationGrace, cfg.JWKSMaxAge = 0, 0
	e := newEnv(t, cfg)
	var current []string
	for i := 1; i <= 6; i++ {
		e.mustRotate(t, tokenN(i))
		current = append(current, e.state(t).state.Current.Kid)
		e.clock.advance(time.Minute)
	}
	got := e.published(t)
	// CURRENT, NEXT, then the five retired keys newest first.
	if len(got) != 7 || got[0] != current[5] {
		t.Fatalf("jwks %v", got)
	}
	for i := 0; i < 5; i++ {
		if got[2+i] != current[4-i] {
			t.Fatalf("retired order %v, want newest first %v", got[2:], current[:5])
		}
	}
	meta, _ := e.secret.Describe(context.Background())
	if len(meta.Tags) > 3 {
		t.Fatalf("%d tags left, want folded into the record: %v", len(meta.Tags), meta.Tags)
	}
}

func TestEventValidation(t *testing.T) {
	e := newEnv(t, testConfig())
	for _, c := range []struct {
		payload, want string
	}{
		{`{"Step":"rotate","SecretId":"test","ClientRequestToken":"x"}`, `Step "rotate" is unknown`},
		{`{"action":"purge"}`, `action "purge" is unknown`},
		{`{"Step":"createSecret","SecretId":"other","ClientRequestToken":"x"}`, `not this rotator's secret`},
		{`{"Step":"createSecret","SecretId":"test"}`, `ClientRequestToken is required`},
		{`nope`, `invalid event`},
	} {
		_, err := e.rot.Invoke(context.Background(), []byte(c.payload))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.payload, err, c.want)
		}
	}
	if !sameSecret("jwks", "arn:aws:secretsmanager:us-east-1:123456789012:secret:jwks-AbCdEf") {
		t.Error("name does not match its ARN")
	}
}

func TestCleanupRestoresDamagedKeySet(t *testing.T) {
	e := newEnv(t, testConfig())
	e.mustRotate(t, tokenN(1))
	good, _ := e.jwks.Get(context.Background())
	for _, damage := range []string{"", `{"keys":[`, `{"keys":[]}`} {
		if _, err := e.jwks.Put(context.Background(), []byte(damage), "application/json", "", store.PutCondition{}); err != nil {
			t.Fatal(err)
		}
		if err := e.rot.Cleanup(context.Background()); err != nil {
			t.Fatal(err)
		}
		got, _ := e.jwks.Get(context.Background())
		if string(got.Body) != string(good.Body) {
			t.Fatalf("after %q: %s, want %s", damage, got.Body, good.Body)
		}
	}
}

// A cleanup that read the state before a whole rotation ran, and writes
// after it, must not take the rotation's new NEXT out of the published set.
func TestStaleCleanupCannotUndoARotation(t *testing.T) {
	e := newEnv(t, testConfig())
	e.mustRotate(t, tokenN(1))
	e.clock.advance(25 * time.Hour)
	// Make the set change at cleanup time, so that cleanup must write.
	if _, err := e.jwks.Put(context.Background(), []byte(`{"keys":[]}`), "application/json", "", store.PutCondition{}); err != nil {
		t.Fatal(err)
	}
	raced := false
	e.jwks.SetHook(func(op string) error {
		if op == memstore.OpPut && !raced {
			raced = true
			e.mustRotate(t, tokenN(2))
		}
		return nil
	})
	if err := e.rot.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !raced {
		t.Fatal("the cleanup never wrote")
	}
	s := e.state(t).state
	got := strings.Join(e.published(t), ",")
	if !strings.Contains(got, s.Current.Kid) || !strings.Contains(got, s.Next.Kid) {
		t.Fatalf("after the race the set is %s; CURRENT %s and NEXT %s must be in it", got, s.Current.Kid, s.Next.Kid)
	}
}

// beforeGet runs a function once, just before the first read of a version.
type beforeGet struct {
	store.Secrets
	version string
	run     func()
}

func (b *beforeGet) GetVersion(ctx context.Context, id string) ([]byte, error) {
	if id == b.version && b.run != nil {
		run := b.run
		b.run = nil
		run()
	}
	return b.Secrets.GetVersion(ctx, id)
}

// Two overlapping attempts of the same createSecret: the slower one finds
// the label already moved by the faster one and succeeds, without moving it
// again.
func TestOverlappingAttemptsOfOneStep(t *testing.T) {
	e := newEnv(t, testConfig())
	e.mustRotate(t, tokenN(1))
	e.clock.advance(25 * time.Hour)
	tok := tokenN(2)
	_ = e.secret.BeginRotation(tok)
	slow := &beforeGet{Secrets: e.secret, version: derivedVersion(tok, "next")}
	slowRot, err := New(e.rot.cfg, slow, e.jwks, LocalCustody{}, e.clock.now, quiet())
	if err != nil {
		t.Fatal(err)
	}
	// The fast attempt writes the pending record and NEXT first; the slow
	// one, which read the labels before, then finds NEXT moved.
	fastRan := false
	slow.run = func() {
		fastRan = true
		if err := e.rot.CreateSecret(context.Background(), tok); err != nil {
			t.Errorf("fast attempt: %v", err)
		}
	}
	if err := slowRot.CreateSecret(context.Background(), tok); err != nil {
		t.Fatalf("slow attempt: %v", err)
	}
	if !fastRan {
		t.Fatal("the attempts did not overlap")
	}
	for _, s := range steps[1:] {
		if err := e.rot.Handle(context.Background(), Event{Step: s, SecretID: "test", ClientRequestToken: tok}); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.state(t).meta.Stages[store.StageNext]; got != derivedVersion(tok, "next") {
		t.Fatalf("NEXT on %s, want the derived version", got)
	}
}

// rotate-secret --no-rotate-immediately runs testSecret alone against a
// version Secrets Manager made without a value: it tests the current key,
// changes nothing, and fails when the published set lacks that key.
func TestTestSecretWithoutAPendingKey(t *testing.T) {
	e := newEnv(t, testConfig())
	ctx := context.Background()
	_ = e.secret.BeginRotation(tokenN(1))
	if err := e.rot.TestSecret(ctx, tokenN(1)); err != nil {
		t.Fatalf("on a secret with no key yet: %v", err)
	}
	_ = e.secret.MoveStage(ctx, store.StagePending, "", tokenN(1))
	e.mustRotate(t, tokenN(2))
	_ = e.secret.BeginRotation(tokenN(3))
	before := e.fingerprint(t)
	if err := e.rot.TestSecret(ctx, tokenN(3)); err != nil {
		t.Fatalf("testing the current key: %v", err)
	}
	if after := e.fingerprint(t); after != before {
		t.Fatalf("testSecret changed state:\nbefore %s\nafter  %s", before, after)
	}
	if _, err := e.jwks.Put(ctx, []byte(`{"keys":[]}`), "application/json", "", store.PutCondition{}); err != nil {
		t.Fatal(err)
	}
	if err := e.rot.TestSecret(ctx, tokenN(3)); err == nil || !strings.Contains(err.Error(), "is not in the published key set") {
		t.Fatalf("testSecret against a set without the current key: %v", err)
	}
}
