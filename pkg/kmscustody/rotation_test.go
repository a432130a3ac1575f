package kmscustody_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/kmscustody"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/rotation"
	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/memstore"
)

// rotationEnv is the rotator in KMS custody over the twins.
type rotationEnv struct {
	secret *memstore.Secrets
	jwks   *memstore.Object
	kms    *memstore.KMS
	clk    *clock
	rot    *rotation.Rotator
	cust   *kmscustody.Custody
}

func newRotationEnv(t *testing.T) *rotationEnv {
	t.Helper()
	clk := &clock{t: t0}
	e := &rotationEnv{secret: memstore.NewSecrets(), jwks: memstore.NewObject(), kms: memstore.NewKMS(clk.now), clk: clk}
	if err := e.secret.PutVersion(context.Background(), version(0), []byte("{}"), []string{store.StageCurrent}); err != nil {
		t.Fatal(err)
	}
	var err error
	if e.cust, err = kmscustody.New(e.kms, stackTag, 7, clk.now, quiet(), ofStack()...); err != nil {
		t.Fatal(err)
	}
	cfg := lifecycle.Config{MaxTokenTTL: time.Minute} // compressed: nothing holds rotations back
	e.rot, err = rotation.New(rotation.Config{Lifecycle: cfg, Algorithm: keys.ES256, SecretID: "test"},
		e.secret, e.jwks, e.cust, clk.now, quiet())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// rotate runs the four steps as Secrets Manager does, checking after each
// that no version holds private key material.
func (e *rotationEnv) rotate(t *testing.T, tok string) {
	t.Helper()
	if err := e.secret.BeginRotation(tok); err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"createSecret", "setSecret", "testSecret", "finishSecret"} {
		if err := e.rot.Handle(context.Background(), rotation.Event{Step: step, SecretID: "test", ClientRequestToken: tok}); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		e.noPrivateKeys(t)
	}
}

func (e *rotationEnv) noPrivateKeys(t *testing.T) {
	t.Helper()
	for _, v := range e.secret.Versions() {
		value, err := e.secret.GetVersion(context.Background(), v)
		if err != nil {
			continue // a version without a value
		}
		if strings.Contains(string(value), "PRIVATE KEY") || strings.Contains(string(value), "privateKeyPem") {
			t.Fatalf("secret version %s holds private key material: %s", v, value)
		}
	}
}

func (e *rotationEnv) current(t *testing.T) keys.Record {
	t.Helper()
	_, value, err := e.secret.GetStage(context.Background(), store.StageCurrent)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := keys.ParseRecord(value)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func (e *rotationEnv) states(t *testing.T) map[string]string {
	t.Helper()
	all, err := e.kms.ListKeysTagged(context.Background(), kmscustody.TagStack, stackTag)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range all {
		out[k.ARN] = k.State
	}
	return out
}

func (e *rotationEnv) cleanup(t *testing.T) {
	t.Helper()
	if err := e.rot.Handle(context.Background(), rotation.Event{Action: "cleanup"}); err != nil {
		t.Fatal(err)
	}
}

// Rotations in KMS custody: every key is a KMS key, no version ever holds a
// private key, a retired key's KMS key is scheduled for deletion once it
// has left the published set, and an emergency disables the revoked keys.
func TestRotationInKMSCustody(t *testing.T) {
	ctx := context.Background()
	e := newRotationEnv(t)
	e.rotate(t, version(1))
	first := e.current(t)
	e.clk.advance(time.Minute)
	e.rotate(t, version(2))
	second := e.current(t)
	if second.Kid == first.Kid || second.KMSKeyID == first.KMSKeyID {
		t.Fatal("rotation did not move to a new KMS key")
	}
	key, err := e.cust.SigningKey(second)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := key.SignProbe(ctx, map[string]any{"exp": time.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	verifyJWT(t, tok, second)

	// 2 signing keys and NEXT: 3 KMS keys, all enabled while referenced.
	states := e.states(t)
	if len(states) != 3 || states[first.KMSKeyID] != store.KeyEnabled {
		t.Fatalf("KMS keys after two rotations: %v", states)
	}
	// Past retention (T = 1 min here) the retired key leaves the key set and
	// cleanup schedules its KMS key for deletion, however young the key.
	e.cleanup(t)
	if states := e.states(t); states[first.KMSKeyID] != store.KeyEnabled {
		t.Fatalf("retired key's KMS key is %s within retention, want Enabled", states[first.KMSKeyID])
	}
	e.clk.advance(time.Minute + time.Second)
	e.cleanup(t)
	states = e.states(t)
	if states[first.KMSKeyID] != store.KeyPendingDeletion {
		t.Errorf("retired key's KMS key is %s after retention and cleanup, want PendingDeletion", states[first.KMSKeyID])
	}
	if states[second.KMSKeyID] != store.KeyEnabled {
		t.Errorf("current key's KMS key is %s, want Enabled", states[second.KMSKeyID])
	}

	// Emergency: the current and NEXT keys are revoked; their KMS keys are
	// disabled in createSecret, before the rotation even finishes.
	if err := e.secret.Tag(ctx, map[string]string{lifecycle.TagRollover: lifecycle.RolloverEmergency}); err != nil {
		t.Fatal(err)
	}
	before := e.states(t)
	if err := e.secret.BeginRotation(version(3)); err != nil {
		t.Fatal(err)
	}
	if err := e.rot.Handle(ctx, rotation.Event{Step: "createSecret", SecretID: "test", ClientRequestToken: version(3)}); err != nil {
		t.Fatal(err)
	}
	after := e.states(t)
	var disabled []string
	for arn, state := range after {
		if state == store.KeyDisabled {
			disabled = append(disabled, arn)
		}
		if before[arn] == store.KeyPendingDeletion && state != store.KeyPendingDeletion {
			t.Errorf("key %s left PendingDeletion", arn)
		}
	}
	if len(disabled) != 2 || !slices.Contains(disabled, second.KMSKeyID) {
		t.Errorf("after the emergency createSecret, disabled keys %v; want the current %s and NEXT", disabled, second.KMSKeyID)
	}
	e.noPrivateKeys(t)
}
