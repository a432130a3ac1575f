package rotation

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/memstore"
)

const hotsockKid = "5d7a1c40-7c0e-11ef-9b8c-0a1b2c3d4e5f"

// hotsockParameter is a parameter as the hotsock jwt-issuer writes it:
// PKCS #8 bytes under an "EC PRIVATE KEY" header.
func hotsockParameter(t *testing.T) (*memstore.Parameter, *ecdsa.PrivateKey) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	p := memstore.NewParameter()
	if err := p.Put(context.Background(), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})); err != nil {
		t.Fatal(err)
	}
	return p, priv
}

func withAdoption(t *testing.T, e *env, a Adoption) {
	t.Helper()
	rot, err := New(e.rot.cfg, e.secret, e.jwks, e.rot.custody, e.clock.now, quiet(), WithAdoption(a))
	if err != nil {
		t.Fatal(err)
	}
	e.rot = rot
}

// The first rotation takes over a running issuer's key with its kid; it
// signs at once, retires at the next rotation and leaves the key set after
// retention, like any key; the setting left in place changes nothing later.
func TestAdoptsAHotsockKey(t *testing.T) {
	cfg := testConfig()
	e := newEnv(t, cfg)
	p, priv := hotsockParameter(t)
	withAdoption(t, e, AdoptParameter(p, "ADOPT_KEY=ssm:/jwt-issuer/stack/chat/"+hotsockKid+"/private-key", hotsockKid))
	e.mustRotate(t, tokenN(1))
	s := e.state(t).state
	if s.Current.Kid != hotsockKid {
		t.Fatalf("current %s, want the adopted %s", s.Current.Kid, hotsockKid)
	}
	got, err := s.Current.PrivateKey()
	if err != nil || !priv.Equal(got) {
		t.Fatalf("the adopted record holds another key (%v)", err)
	}
	if s.Next == nil || s.Next.Kid == hotsockKid || s.Next.Alg != keys.ES256 {
		t.Fatalf("next %+v, want a fresh ES256 key", s.Next)
	}
	if pub := e.published(t); len(pub) != 2 || pub[0] != hotsockKid {
		t.Fatalf("published %v, want the adopted key first, then NEXT", pub)
	}
	e.clock.advance(25 * time.Hour)
	e.mustRotate(t, tokenN(2))
	retired := e.clock.t
	if pub := e.published(t); !contains(pub, hotsockKid) {
		t.Fatalf("the adopted key left at its retirement: %v", pub)
	}
	e.clock.t = retired.Add(cfg.Retention())
	if err := e.rot.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if pub := e.published(t); contains(pub, hotsockKid) {
		t.Fatalf("the adopted key is still published after retention: %v", pub)
	}
}

func TestAdoptionRefusals(t *testing.T) {
	ctx := context.Background()
	p521 := func(t *testing.T) *memstore.Parameter {
		k, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		p := memstore.NewParameter()
		_ = p.Put(ctx, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		return p
	}
	pub := func(t *testing.T) *memstore.Parameter {
		p := memstore.NewParameter()
		_ = p.Put(ctx, []byte("-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"))
		return p
	}
	tests := []struct {
		name        string
		param       func(t *testing.T) *memstore.Parameter
		initialised bool
		want        string
	}{
		{"the secret is already initialised", func(t *testing.T) *memstore.Parameter { p, _ := hotsockParameter(t); return p }, true,
			"ADOPT_KEY=ssm:/old: the secret is already initialised"},
		{"the source cannot be read", func(t *testing.T) *memstore.Parameter { return memstore.NewParameter() }, false,
			"ADOPT_KEY=ssm:/old: read the key to adopt"},
		{"a key of no supported algorithm", p521, false, "ADOPT_KEY=ssm:/old: key on curve P-521"},
		{"not a private key", pub, false, `ADOPT_KEY=ssm:/old: private key: unsupported PEM type "PUBLIC KEY"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, testConfig())
			if tt.initialised {
				e.mustRotate(t, tokenN(1))
				e.clock.advance(25 * time.Hour)
			}
			withAdoption(t, e, AdoptParameter(tt.param(t), "ADOPT_KEY=ssm:/old", "old-kid"))
			before := e.fingerprint(t)
			err := e.rotate(tokenN(2))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("rotation: %v, want %q", err, tt.want)
			}
			// Apart from the valueless AWSPENDING version Secrets Manager
			// made (it retries the rotation), nothing changed.
			if _, err := e.secret.GetVersion(ctx, tokenN(2)); err == nil {
				t.Fatal("a refused adoption wrote the pending version")
			}
			_ = e.secret.MoveStage(ctx, store.StagePending, "", tokenN(2))
			if after := strings.Replace(e.fingerprint(t), " "+tokenN(2), "", 1); after != before {
				t.Fatalf("a refused adoption changed state:\n%s\n%s", before, after)
			}
		})
	}
}

// A KMS key is adopted by reference: the record names it, keeps its key id
// as the kid, and no key is created.
func TestAdoptsAKMSKey(t *testing.T) {
	e := newEnv(t, testConfig())
	api := memstore.NewKMS(e.clock.now)
	existing, err := api.CreateKey(context.Background(), store.CreateKeyRequest{Spec: store.KeySpecP256})
	if err != nil {
		t.Fatal(err)
	}
	withAdoption(t, e, AdoptKMS(api, existing.ARN, "ADOPT_KEY=kms:"+existing.ARN, existing.ID))
	if err := e.secret.BeginRotation(tokenN(1)); err != nil {
		t.Fatal(err)
	}
	// createSecret alone: a local custody cannot sign with a KMS key, which
	// is the part of the rotation this test leaves to KMS custody.
	if err := e.rot.CreateSecret(context.Background(), tokenN(1)); err != nil {
		t.Fatal(err)
	}
	rec, _ := e.rot.record(context.Background(), tokenN(1))
	if rec == nil || rec.Kid != existing.ID || rec.KMSKeyID != existing.ARN || rec.PrivateKeyPem != "" || rec.Alg != keys.ES256 {
		t.Fatalf("pending record %+v, want the KMS key by reference", rec)
	}
	if tags, _ := e.secret.Describe(context.Background()); lifecycle.Adopted(tags.Tags) != existing.ID {
		t.Fatalf("adoption not recorded: %v", tags.Tags)
	}
	if keys, _ := api.ListKeysTagged(context.Background(), "jwks-issuer:stack", "jwks-issuer"); len(keys) != 0 {
		t.Fatalf("adoption created KMS keys: %v", keys)
	}
}
