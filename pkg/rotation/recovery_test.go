package rotation

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/store"
)

var errDied = errors.New("process died")

// crashing fails the n-th store call of a step, before or after it runs.
type crashing struct {
	n, calls int
	after    bool
}

func (c *crashing) around(op func() error) error {
	c.calls++
	if c.calls != c.n {
		return op()
	}
	if !c.after {
		return fmt.Errorf("call %d: %w", c.calls, errDied)
	}
	if err := op(); err != nil {
		return err
	}
	return fmt.Errorf("call %d, after it ran: %w", c.calls, errDied)
}

type crashingSecrets struct {
	store.Secrets
	c *crashing
}

func (s crashingSecrets) Describe(ctx context.Context) (m store.SecretMeta, err error) {
	err = s.c.around(func() error { m, err = s.Secrets.Describe(ctx); return err })
	return m, err
}
func (s crashingSecrets) GetVersion(ctx context.Context, id string) (v []byte, err error) {
	err = s.c.around(func() error { v, err = s.Secrets.GetVersion(ctx, id); return err })
	return v, err
}
func (s crashingSecrets) GetStage(ctx context.Context, st string) (id string, v []byte, err error) {
	err = s.c.around(func() error { id, v, err = s.Secrets.GetStage(ctx, st); return err })
	return id, v, err
}
func (s crashingSecrets) PutVersion(ctx context.Context, id string, v []byte, st []string) error {
	return s.c.around(func() error { return s.Secrets.PutVersion(ctx, id, v, st) })
}
func (s crashingSecrets) MoveStage(ctx context.Context, st, to, from string) error {
	return s.c.around(func() error { return s.Secrets.MoveStage(ctx, st, to, from) })
}
func (s crashingSecrets) Tag(ctx context.Context, t map[string]string) error {
	return s.c.around(func() error { return s.Secrets.Tag(ctx, t) })
}
func (s crashingSecrets) Untag(ctx context.Context, k []string) error {
	return s.c.around(func() error { return s.Secrets.Untag(ctx, k) })
}

type crashingObject struct {
	store.Objects
	c *crashing
}

func (o crashingObject) Get(ctx context.Context) (obj store.Object, err error) {
	err = o.c.around(func() error { obj, err = o.Objects.Get(ctx); return err })
	return obj, err
}
func (o crashingObject) Put(ctx context.Context, b []byte, ct, cc string, cond store.PutCondition) (etag string, err error) {
	err = o.c.around(func() error { etag, err = o.Objects.Put(ctx, b, ct, cc, cond); return err })
	return etag, err
}

// Every step can die at any store call, before or after it runs; Secrets
// Manager's retry of the whole rotation then finishes the job with the key
// the first attempt made, or the operator abandons it and a later rotation
// succeeds.
func TestRecoveryFromADeathAtEveryCall(t *testing.T) {
	for _, step := range steps {
		for _, after := range []bool{false, true} {
			for n := 1; ; n++ {
				name := fmt.Sprintf("%s/call%d/after=%v", step, n, after)
				ran := t.Run(name, func(t *testing.T) { recoverAt(t, step, &crashing{n: n, after: after}) })
				if !ran {
					return
				}
				if n > 40 {
					t.Fatalf("%s makes more than 40 store calls", step)
				}
				// Stop once the step finished before the n-th call.
				probe := &crashing{n: n + 1, after: after}
				if !diesAt(t, step, probe) {
					break
				}
			}
		}
	}
}

// setUp returns an env after a first rotation, a day later, with a rotation
// begun under tok, and a rotator whose store calls go through c.
func setUp(t *testing.T, c *crashing, tok string) (*env, *Rotator) {
	e := newEnv(t, testConfig())
	e.mustRotate(t, tokenN(1))
	e.clock.advance(25 * time.Hour)
	if err := e.secret.BeginRotation(tok); err != nil {
		t.Fatal(err)
	}
	crashy, err := New(e.rot.cfg, crashingSecrets{e.secret, c}, crashingObject{e.jwks, c}, LocalCustody{}, e.clock.now, quiet())
	if err != nil {
		t.Fatal(err)
	}
	return e, crashy
}

func runUpTo(e *env, r *Rotator, tok, last string) error {
	for _, s := range steps {
		if err := r.Handle(context.Background(), Event{Step: s, SecretID: "test", ClientRequestToken: tok}); err != nil {
			return err
		}
		if s == last {
			return nil
		}
	}
	return nil
}

func diesAt(t *testing.T, step string, c *crashing) bool {
	tok := tokenN(2)
	e, crashy := setUp(t, c, tok)
	for _, s := range steps {
		if s == step {
			break
		}
		_ = e.rot.Handle(context.Background(), Event{Step: s, SecretID: "test", ClientRequestToken: tok})
	}
	c.calls = 0
	err := crashy.Handle(context.Background(), Event{Step: step, SecretID: "test", ClientRequestToken: tok})
	return errors.Is(err, errDied)
}

func recoverAt(t *testing.T, step string, c *crashing) {
	tok := tokenN(2)
	e, crashy := setUp(t, c, tok)
	before := e.state(t).state
	oldKid, nextKid := before.Current.Kid, before.Next.Kid
	for _, s := range steps {
		if s == step {
			break
		}
		if err := e.rot.Handle(context.Background(), Event{Step: s, SecretID: "test", ClientRequestToken: tok}); err != nil {
			t.Fatal(err)
		}
	}
	c.calls = 0
	err := crashy.Handle(context.Background(), Event{Step: step, SecretID: "test", ClientRequestToken: tok})
	if err != nil && !errors.Is(err, errDied) {
		t.Fatalf("%s: %v", step, err)
	}
	// Whatever died, the published set is whole.
	published := e.published(t)
	if !contains(published, oldKid) || !contains(published, nextKid) {
		t.Fatalf("after the death the key set %v lacks CURRENT %s or NEXT %s", published, oldKid, nextKid)
	}
	pendingAfterCrash, _ := e.rot.record(context.Background(), tok)

	// Secrets Manager retries the whole rotation with the same token (soon
	// enough that the old key is still within retention).
	e.clock.advance(10 * time.Minute)
	if err := runUpTo(e, e.rot, tok, "finishSecret"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	after := e.state(t)
	if after.state.Current.Kid != nextKid {
		t.Fatalf("current %s after recovery, want the former NEXT %s", after.state.Current.Kid, nextKid)
	}
	if pendingAfterCrash != nil && pendingAfterCrash.Kid != after.state.Current.Kid {
		t.Fatal("the retry rebuilt the pending record with another key")
	}
	if v, ok := after.meta.Stages[store.StagePending]; ok && v != after.meta.Stages[store.StageCurrent] {
		t.Fatalf("AWSPENDING left on %s", v)
	}
	published = e.published(t)
	if published[0] != nextKid || !contains(published, oldKid) || !contains(published, after.state.Next.Kid) {
		t.Fatalf("key set %v after recovery", published)
	}
	if n := len(e.secret.Versions()); n > 5 {
		t.Fatalf("%d versions: a retry made extra keys", n)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// A failed rotation abandoned by the operator (AWSPENDING removed) does not
// block the next one.
func TestAbandonedRotationDoesNotBlockTheNext(t *testing.T) {
	e := newEnv(t, testConfig())
	e.mustRotate(t, tokenN(1))
	e.clock.advance(25 * time.Hour)
	tok := tokenN(2)
	_ = e.secret.BeginRotation(tok)
	if err := e.rot.CreateSecret(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	if err := e.secret.BeginRotation(tokenN(3)); err == nil {
		t.Fatal("a second rotation began while one is in progress")
	}
	// The runbook: update-secret-version-stage --remove-from-version-id.
	if err := e.secret.MoveStage(context.Background(), store.StagePending, "", tok); err != nil {
		t.Fatal(err)
	}
	// The abandoned attempt made a new NEXT and published it: a new rotation
	// waits for that key's activation grace.
	var refused *lifecycle.PromotionRefused
	if err := e.rotate(tokenN(3)); !errors.As(err, &refused) {
		t.Fatalf("rotation right after abandoning: %v, want a refusal", err)
	}
	e.clock.advance(25 * time.Hour)
	e.mustRotate(t, tokenN(4))
	if got := e.state(t).meta.Stages[store.StageCurrent]; got != tokenN(4) {
		t.Fatalf("AWSCURRENT on %s", got)
	}
}

// Once any write of an emergency rollover has revoked a key, the key stays
// out of the published set, even if the rollover dies there and the operator
// abandons it.
func TestEmergencyRevocationSurvivesAnAbandonedRollover(t *testing.T) {
	for _, after := range []bool{false, true} {
		for n := 1; n <= 30; n++ {
			t.Run(fmt.Sprintf("call%d/after=%v", n, after), func(t *testing.T) {
				c := &crashing{n: n, after: after}
				tok := tokenN(2)
				e, crashy := setUp(t, c, tok)
				_ = e.secret.Tag(context.Background(), map[string]string{lifecycle.TagRollover: lifecycle.RolloverEmergency})
				c.calls = 0
				err := crashy.CreateSecret(context.Background(), tok)
				if err != nil && !errors.Is(err, errDied) {
					t.Fatal(err)
				}
				revoked := e.state(t).state.Revoked
				if pending, _ := e.rot.record(context.Background(), tok); pending != nil && len(revoked) < len(pending.Revoked) {
					t.Fatalf("the rollover record revokes %d keys but only %d revocations are tagged", len(pending.Revoked), len(revoked))
				}
				// The operator abandons the rollover; the hourly cleanup runs.
				if e.state(t).meta.Stages[store.StagePending] == tok {
					if err := e.secret.MoveStage(context.Background(), store.StagePending, "", tok); err != nil {
						t.Fatal(err)
					}
				}
				if err := e.rot.Cleanup(context.Background()); err != nil {
					t.Fatal(err)
				}
				for kid := range revoked {
					if contains(e.published(t), kid) {
						t.Fatalf("revoked key %s published again after the rollover was abandoned", kid)
					}
				}
			})
		}
	}
}

// An emergency rollover whose first attempt died after tagging its
// revocations, retried later than the retention time: the revoked NEXT is
// replaced, not promoted by the next rotation (simulation seed 2).
func TestRolloverRetriedAfterRetentionReplacesRevokedNext(t *testing.T) {
	e := newEnv(t, testConfig())
	e.mustRotate(t, tokenN(1))
	e.clock.advance(25 * time.Hour)
	before := e.state(t).state
	leaked, next := before.Current.Kid, before.Next.Kid
	ctx := context.Background()
	_ = e.secret.Tag(ctx, map[string]string{
		lifecycle.TagRollover:         lifecycle.RolloverEmergency,
		lifecycle.TagRevoked + leaked: e.clock.t.Format(time.RFC3339Nano),
		lifecycle.TagRevoked + next:   e.clock.t.Format(time.RFC3339Nano),
	})
	e.clock.advance(36 * time.Hour)
	e.mustRotate(t, tokenN(2))
	after := e.state(t).state
	if after.Next.Kid == next || after.Current.Kid == next {
		t.Fatalf("the revoked NEXT %s is still in line to sign", next)
	}
	if !revokedByRecord(*after.Current, leaked) || !revokedByRecord(*after.Current, next) {
		t.Fatalf("the rollover record does not carry the revocations: %+v", after.Current.Revoked)
	}
	e.clock.advance(25 * time.Hour)
	e.mustRotate(t, tokenN(3))
	for _, kid := range []string{leaked, next} {
		if contains(e.published(t), kid) {
			t.Fatalf("revoked key %s published", kid)
		}
	}
}

func revokedByRecord(rec keys.Record, kid string) bool {
	for _, k := range rec.Revoked {
		if k.JWK.Kid == kid {
			return true
		}
	}
	return false
}
