package storetest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"jwks-issuer/pkg/store"
)

// RunKMS runs the KMS contract: what both AWS (through moto) and the twin do.
// Key states are checked through DescribeKey and the listing only, since moto
// signs with disabled keys where AWS refuses. newAPI may return the same
// KMS to every subtest: each tags its keys with a value of its own.
// Subtests run in parallel.
func RunKMS(t *testing.T, newAPI func(t *testing.T) store.KMS) {
	ctx := context.Background()
	const tag = "storetest:case"
	fresh := func(t *testing.T) (store.KMS, func(spec store.KeySpec) store.KeyInfo, string) {
		t.Helper()
		t.Parallel()
		api := newAPI(t)
		value := NewVersionID(t)
		create := func(spec store.KeySpec) store.KeyInfo {
			t.Helper()
			k, err := api.CreateKey(ctx, store.CreateKeyRequest{Spec: spec, Description: "storetest",
				Tags: map[string]string{tag: value, "other": "x"}})
			if err != nil {
				t.Fatalf("CreateKey(%s): %v", spec, err)
			}
			return k
		}
		return api, create, value
	}
	specs := []struct {
		spec store.KeySpec
		alg  store.SigningAlgorithm
		hash crypto.Hash
	}{
		{store.KeySpecP256, store.ECDSASHA256, crypto.SHA256},
		{store.KeySpecP384, store.ECDSASHA384, crypto.SHA384},
		{store.KeySpecRSA2048, store.RSAPKCS1SHA256, crypto.SHA256},
	}

	t.Run("CreateKey, DescribeKey by id and ARN, GetPublicKey", func(t *testing.T) {
		api, create, _ := fresh(t)
		for _, c := range specs {
			k := create(c.spec)
			if k.ID == "" || k.ARN != kmsARNPrefix(k.ARN)+k.ID || k.State != store.KeyEnabled || k.Spec != c.spec {
				t.Errorf("CreateKey(%s) = %+v: want an id, its ARN, Enabled, the spec", c.spec, k)
			}
			if d := time.Since(k.Created); d < -time.Minute || d > time.Minute {
				t.Errorf("CreateKey(%s): Created %v is not now", c.spec, k.Created)
			}
			for _, ref := range []string{k.ID, k.ARN} {
				got, err := api.DescribeKey(ctx, ref)
				if err != nil {
					t.Fatalf("DescribeKey(%s): %v", ref, err)
				}
				if got.ID != k.ID || got.ARN != k.ARN || got.State != k.State || got.Spec != k.Spec || !got.Created.Equal(k.Created) {
					t.Errorf("DescribeKey(%s) = %+v, want %+v", ref, got, k)
				}
			}
			pub := kmsPublicKey(t, api, k.ARN)
			if err := kmsFitsSpec(pub, c.spec); err != nil {
				t.Errorf("GetPublicKey(%s): %v", c.spec, err)
			}
		}
	})

	t.Run("Sign RAW verifies with the public key", func(t *testing.T) {
		api, create, _ := fresh(t)
		for _, c := range specs {
			k := create(c.spec)
			pub := kmsPublicKey(t, api, k.ARN)
			for _, ref := range []string{k.ARN, k.ID} {
				msg := []byte("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0." + string(c.alg))
				sig, err := api.Sign(ctx, store.SignRequest{KeyID: ref, Algorithm: c.alg, Message: msg})
				if err != nil {
					t.Fatalf("Sign(%s, %s): %v", c.spec, ref, err)
				}
				if err := kmsVerify(pub, c.hash, msg, sig); err != nil {
					t.Errorf("Sign(%s, %s): signature does not verify: %v", c.spec, ref, err)
				}
			}
		}
	})

	t.Run("ListKeysTagged finds exactly the tagged keys, with their tags and states", func(t *testing.T) {
		api, create, value := fresh(t)
		a, b := create(store.KeySpecP256), create(store.KeySpecP256)
		if _, err := api.CreateKey(ctx, store.CreateKeyRequest{Spec: store.KeySpecP256, Description: "storetest",
			Tags: map[string]string{tag: value + "-other"}}); err != nil {
			t.Fatal(err)
		}
		mustDo(t, "DisableKey", api.DisableKey(ctx, b.ID))
		got, err := api.ListKeysTagged(ctx, tag, value)
		if err != nil {
			t.Fatalf("ListKeysTagged: %v", err)
		}
		states := map[string]string{}
		for _, k := range got {
			states[k.ID] = k.State
			if want := map[string]string{tag: value, "other": "x"}; !maps.Equal(k.Tags, want) {
				t.Errorf("key %s tags = %v, want %v", k.ID, k.Tags, want)
			}
			if k.ARN != kmsARNPrefix(k.ARN)+k.ID || k.Spec != store.KeySpecP256 || k.Created.IsZero() {
				t.Errorf("listed key %+v lacks its ARN, spec or creation date", k)
			}
		}
		want := map[string]string{a.ID: store.KeyEnabled, b.ID: store.KeyDisabled}
		if !maps.Equal(states, want) {
			t.Errorf("ListKeysTagged = %v, want %v", states, want)
		}
	})

	t.Run("CreateKey with a policy: KeyPolicy returns it; without one, KMS's default", func(t *testing.T) {
		api, create, value := fresh(t)
		policy := `{"Version":"2012-10-17","Statement":[` +
			`{"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},` +
			`"Action":["kms:DescribeKey","kms:PutKeyPolicy"],"Resource":"*"},` +
			`{"Sid":"Use","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:role/a","arn:aws:iam::123456789012:role/b"]},` +
			`"Action":["kms:Sign","kms:GetPublicKey"],"Resource":"*"}]}`
		k, err := api.CreateKey(ctx, store.CreateKeyRequest{Spec: store.KeySpecP256, Description: "storetest",
			Policy: policy, BypassPolicyLockoutSafetyCheck: true, Tags: map[string]string{tag: value}})
		if err != nil {
			t.Fatalf("CreateKey with a policy: %v", err)
		}
		for _, ref := range []string{k.ID, k.ARN} {
			got, err := api.KeyPolicy(ctx, ref)
			if err != nil {
				t.Fatalf("KeyPolicy(%s): %v", ref, err)
			}
			if !sameJSON(got, policy) {
				t.Errorf("KeyPolicy(%s) = %s, want %s", ref, got, policy)
			}
		}
		mustDo(t, "DisableKey", api.DisableKey(ctx, k.ID))
		if got, err := api.KeyPolicy(ctx, k.ID); err != nil || !sameJSON(got, policy) {
			t.Errorf("KeyPolicy of a disabled key = %s, %v; want the policy", got, err)
		}
		plain := create(store.KeySpecP256)
		got, err := api.KeyPolicy(ctx, plain.ID)
		if err != nil {
			t.Fatalf("KeyPolicy of a key made without a policy: %v", err)
		}
		var doc struct{ Statement []any }
		if json.Unmarshal([]byte(got), &doc) != nil || len(doc.Statement) == 0 || sameJSON(got, policy) {
			t.Errorf("KeyPolicy of a key made without a policy = %s, want KMS's default policy", got)
		}
	})

	t.Run("DisableKey by ARN, twice", func(t *testing.T) {
		api, create, _ := fresh(t)
		k := create(store.KeySpecP256)
		mustDo(t, "DisableKey", api.DisableKey(ctx, k.ARN))
		mustDo(t, "DisableKey again", api.DisableKey(ctx, k.ARN))
		kmsWantState(t, api, k.ID, store.KeyDisabled)
	})

	t.Run("ScheduleKeyDeletion by ARN; out-of-range windows refused", func(t *testing.T) {
		api, create, _ := fresh(t)
		k := create(store.KeySpecP256)
		for _, days := range []int{0, 6, 31} {
			if err := api.ScheduleKeyDeletion(ctx, k.ARN, days); err == nil {
				t.Errorf("ScheduleKeyDeletion(%d days): err = nil, want an error", days)
			}
		}
		kmsWantState(t, api, k.ID, store.KeyEnabled)
		mustDo(t, "ScheduleKeyDeletion", api.ScheduleKeyDeletion(ctx, k.ARN, 7))
		kmsWantState(t, api, k.ID, store.KeyPendingDeletion)
		// A disabled key can be scheduled too.
		d := create(store.KeySpecP256)
		mustDo(t, "DisableKey", api.DisableKey(ctx, d.ID))
		mustDo(t, "ScheduleKeyDeletion", api.ScheduleKeyDeletion(ctx, d.ID, 30))
		kmsWantState(t, api, d.ID, store.KeyPendingDeletion)
	})

	t.Run("a missing key is ErrNotFound", func(t *testing.T) {
		api, create, _ := fresh(t)
		k := create(store.KeySpecP256) // for the ARN shape
		id := "0badc0de-0000-4000-8000-" + NewVersionID(t)[:12]
		for _, ref := range []string{id, kmsARNPrefix(k.ARN) + id} {
			for name, call := range map[string]func() error{
				"DescribeKey":  func() error { _, err := api.DescribeKey(ctx, ref); return err },
				"GetPublicKey": func() error { _, err := api.GetPublicKey(ctx, ref); return err },
				"Sign": func() error {
					_, err := api.Sign(ctx, store.SignRequest{KeyID: ref, Algorithm: store.ECDSASHA256, Message: []byte("x")})
					return err
				},
				"DisableKey":          func() error { return api.DisableKey(ctx, ref) },
				"KeyPolicy":           func() error { _, err := api.KeyPolicy(ctx, ref); return err },
				"ScheduleKeyDeletion": func() error { return api.ScheduleKeyDeletion(ctx, ref, 7) },
			} {
				if err := call(); !errors.Is(err, store.ErrKeyNotFound) {
					t.Errorf("%s(%s): err = %v, want ErrNotFound", name, ref, err)
				}
			}
		}
	})
}

// sameJSON reports whether a and b are the same JSON value, whatever their
// spacing and key order.
func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// kmsARNPrefix is a key ARN up to and including "key/".
func kmsARNPrefix(arn string) string {
	if i := strings.Index(arn, ":key/"); i >= 0 {
		return arn[:i+len(":key/")]
	}
	return "(not a key ARN: " + arn + ")"
}

func kmsPublicKey(t *testing.T, api store.KMS, ref string) crypto.PublicKey {
	t.Helper()
	der, err := api.GetPublicKey(context.Background(), ref)
	if err != nil {
		t.Fatalf("GetPublicKey(%s): %v", ref, err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatalf("GetPublicKey(%s): not a DER SubjectPublicKeyInfo: %v", ref, err)
	}
	return pub
}

func kmsFitsSpec(pub crypto.PublicKey, spec store.KeySpec) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if (spec == store.KeySpecP256 && k.Curve == elliptic.P256()) || (spec == store.KeySpecP384 && k.Curve == elliptic.P384()) {
			return nil
		}
		return fmt.Errorf("curve %s for spec %s", k.Curve.Params().Name, spec)
	case *rsa.PublicKey:
		if spec == store.KeySpecRSA2048 && k.N.BitLen() == 2048 {
			return nil
		}
		return fmt.Errorf("%d-bit RSA for spec %s", k.N.BitLen(), spec)
	}
	return fmt.Errorf("key type %T for spec %s", pub, spec)
}

func kmsVerify(pub crypto.PublicKey, hash crypto.Hash, msg, sig []byte) error {
	h := hash.New()
	h.Write(msg)
	digest := h.Sum(nil)
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, digest, sig) {
			return errors.New("ECDSA verification failed")
		}
		return nil
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, hash, digest, sig)
	}
	return fmt.Errorf("key type %T", pub)
}

func kmsWantState(t *testing.T, api store.KMS, id, state string) {
	t.Helper()
	k, err := api.DescribeKey(context.Background(), id)
	if err != nil {
		t.Fatalf("DescribeKey(%s): %v", id, err)
	}
	if k.State != state {
		t.Errorf("key %s is %s, want %s", id, k.State, state)
	}
}
