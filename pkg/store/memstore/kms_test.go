package memstore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/memstore"
	"jwks-issuer/pkg/store/storetest"
)

func TestKMSContract(t *testing.T) {
	storetest.RunKMS(t, func(*testing.T) store.KMS { return memstore.NewKMS(nil) })
}

// The twin refuses what AWS refuses and moto allows: signing with a disabled
// or pending-deletion key, disabling or rescheduling a pending-deletion key,
// RAW messages over 4,096 bytes. And it signs DIGEST messages correctly.
func TestKMSAWSRules(t *testing.T) {
	ctx := context.Background()
	k := memstore.NewKMS(nil)
	create := func() store.KeyInfo {
		info, err := k.CreateKey(ctx, store.CreateKeyRequest{Spec: store.KeySpecP256, Tags: map[string]string{"t": "v"}})
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	sign := func(id string, msg []byte, digest bool) ([]byte, error) {
		return k.Sign(ctx, store.SignRequest{KeyID: id, Algorithm: store.ECDSASHA256, Message: msg, Digest: digest})
	}

	disabled, pending := create(), create()
	if err := k.DisableKey(ctx, disabled.ARN); err != nil {
		t.Fatal(err)
	}
	if err := k.ScheduleKeyDeletion(ctx, pending.ARN, 7); err != nil {
		t.Fatal(err)
	}
	for _, key := range []store.KeyInfo{disabled, pending} {
		if _, err := sign(key.ID, []byte("x"), false); !errors.Is(err, store.ErrKeyState) {
			t.Errorf("Sign with a %s key: err = %v, want ErrKeyState", key.State, err)
		}
		if _, err := k.GetPublicKey(ctx, key.ID); !errors.Is(err, store.ErrKeyState) {
			t.Errorf("GetPublicKey of a disabled or pending key: err = %v, want ErrKeyState", err)
		}
	}
	if err := k.DisableKey(ctx, pending.ID); !errors.Is(err, store.ErrKeyState) {
		t.Errorf("DisableKey of a pending-deletion key: err = %v, want ErrKeyState", err)
	}
	if err := k.ScheduleKeyDeletion(ctx, pending.ID, 7); !errors.Is(err, store.ErrKeyState) {
		t.Errorf("ScheduleKeyDeletion twice: err = %v, want ErrKeyState", err)
	}

	key := create()
	if _, err := sign(key.ID, []byte(strings.Repeat("a", store.MaxRawSignMessage+1)), false); err == nil {
		t.Error("Sign of a RAW message over 4096 bytes: err = nil, want an error")
	}
	if _, err := k.Sign(ctx, store.SignRequest{KeyID: key.ID, Algorithm: store.ECDSASHA384, Message: []byte("x")}); err == nil {
		t.Error("Sign with an algorithm that does not fit the key: err = nil, want an error")
	}
	digest := sha256.Sum256([]byte("message"))
	sig, err := sign(key.ID, digest[:], true)
	if err != nil {
		t.Fatal(err)
	}
	der, err := k.GetPublicKey(ctx, key.ID)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], sig) {
		t.Error("DIGEST signature does not verify over the digest (the twin must not hash it again, as moto does)")
	}
	if _, err := sign(key.ID, digest[:5], true); err == nil {
		t.Error("Sign of a DIGEST of the wrong size: err = nil, want an error")
	}
}

func TestKMSHookFailsEachOperation(t *testing.T) {
	ctx := context.Background()
	k := memstore.NewKMS(nil)
	key, err := k.CreateKey(ctx, store.CreateKeyRequest{Spec: store.KeySpecP256})
	if err != nil {
		t.Fatal(err)
	}
	ops := []struct {
		op   string
		call func() error
	}{
		{memstore.OpCreateKey, func() error { _, err := k.CreateKey(ctx, store.CreateKeyRequest{Spec: store.KeySpecP256}); return err }},
		{memstore.OpGetPublicKey, func() error { _, err := k.GetPublicKey(ctx, key.ID); return err }},
		{memstore.OpSign, func() error {
			_, err := k.Sign(ctx, store.SignRequest{KeyID: key.ID, Algorithm: store.ECDSASHA256, Message: []byte("x")})
			return err
		}},
		{memstore.OpDescribeKey, func() error { _, err := k.DescribeKey(ctx, key.ID); return err }},
		{memstore.OpKeyPolicy, func() error { _, err := k.KeyPolicy(ctx, key.ID); return err }},
		{memstore.OpListKeysTagged, func() error { _, err := k.ListKeysTagged(ctx, "a", "b"); return err }},
		{memstore.OpDisableKey, func() error { return k.DisableKey(ctx, key.ID) }},
		{memstore.OpScheduleKeyDeletion, func() error { return k.ScheduleKeyDeletion(ctx, key.ID, 7) }},
	}
	var seen []string
	k.SetHook(func(op string) error { seen = append(seen, op); return errInjected })
	for _, c := range ops {
		if err := c.call(); !errors.Is(err, errInjected) {
			t.Errorf("%s: err = %v, want the injected error", c.op, err)
		}
	}
	for i, c := range ops {
		if i >= len(seen) || seen[i] != c.op {
			t.Fatalf("hook saw %v, want the operations in call order", seen)
		}
	}
	k.SetHook(nil)
	if info, err := k.DescribeKey(ctx, key.ID); err != nil || info.State != store.KeyEnabled {
		t.Errorf("after failed operations the key is %+v, %v; want it Enabled", info, err)
	}
}

// Tag and HidePolicy stand for what someone else does to a key: tag it as
// if it were ours, or keep its policy from us.
func TestKMSTagAndHidePolicy(t *testing.T) {
	ctx := context.Background()
	k := memstore.NewKMS(nil)
	key, err := k.CreateKey(ctx, store.CreateKeyRequest{Spec: store.KeySpecP256})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Tag(key.ARN, map[string]string{"a": "1"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := k.ListKeysTagged(ctx, "a", "1"); len(got) != 1 || got[0].ID != key.ID {
		t.Errorf("after Tag, ListKeysTagged = %v, want the key", got)
	}
	if err := k.HidePolicy(key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := k.KeyPolicy(ctx, key.ID); !errors.Is(err, store.ErrAccessDenied) {
		t.Errorf("KeyPolicy of a hidden policy: err = %v, want ErrAccessDenied", err)
	}
	if _, err := k.CreateKey(ctx, store.CreateKeyRequest{Spec: store.KeySpecP256, Policy: "{not json"}); err == nil {
		t.Error("CreateKey with a malformed policy: err = nil, want an error")
	}
	if err := k.Tag("0badc0de-0000-4000-8000-000000000000", map[string]string{"a": "1"}); !errors.Is(err, store.ErrKeyNotFound) {
		t.Errorf("Tag of a missing key: %v, want ErrKeyNotFound", err)
	}
}
