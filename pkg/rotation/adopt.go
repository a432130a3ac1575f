package rotation

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/store"
)

// Adoption is a key that the first rotation of an uninitialised secret takes
// over instead of making one: the key of a running single-key issuer (the
// hotsock jwt-issuer's parameter, or an existing KMS key). It becomes the
// first CURRENT at once, as it already signs, keeps its kid, and from then
// on follows the normal lifecycle.
type Adoption struct {
	// Setting names where the key comes from, for errors and logs
	// (ADOPT_KEY=ssm:/jwt-issuer/...).
	Setting string
	Kid     string
	load    func(ctx context.Context, now time.Time) (keys.Record, error)
}

// AdoptParameter adopts the PEM private key in a SecureString parameter
// (PKCS #8, SEC 1, or PKCS #8 under an "EC PRIVATE KEY" header as the
// hotsock jwt-issuer writes it). The key's own type gives the algorithm.
func AdoptParameter(p store.Parameter, setting, kid string) Adoption {
	return Adoption{Setting: setting, Kid: kid, load: func(ctx context.Context, now time.Time) (keys.Record, error) {
		value, err := p.Get(ctx)
		if err != nil {
			return keys.Record{}, fmt.Errorf("read the key to adopt: %w", err)
		}
		priv, err := keys.ParsePrivateKey(string(value))
		if err != nil {
			return keys.Record{}, err
		}
		alg, err := keys.AlgorithmOf(priv.Public())
		if err != nil {
			return keys.Record{}, err
		}
		return keys.RecordFor(priv, alg, kid, now)
	}}
}

// AdoptKMS adopts an existing asymmetric KMS key: the secret records its
// ARN and public key, and nothing is created, disabled or deleted for it.
func AdoptKMS(api store.KMS, keyID, setting, kid string) Adoption {
	return Adoption{Setting: setting, Kid: kid, load: func(ctx context.Context, now time.Time) (keys.Record, error) {
		info, err := api.DescribeKey(ctx, keyID)
		if err != nil {
			return keys.Record{}, fmt.Errorf("describe the KMS key to adopt: %w", err)
		}
		if info.State != store.KeyEnabled {
			return keys.Record{}, fmt.Errorf("KMS key %s is %s, must be Enabled", info.ARN, info.State)
		}
		der, err := api.GetPublicKey(ctx, keyID)
		if err != nil {
			return keys.Record{}, fmt.Errorf("read the public key of KMS key %s: %w", info.ARN, err)
		}
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return keys.Record{}, fmt.Errorf("KMS key %s: public key: %w", info.ARN, err)
		}
		alg, err := keys.AlgorithmOf(pub)
		if err != nil {
			return keys.Record{}, fmt.Errorf("KMS key %s (%s): %w", info.ARN, info.Spec, err)
		}
		jwk, err := keys.PublicJWK(pub, kid, alg)
		if err != nil {
			return keys.Record{}, fmt.Errorf("KMS key %s: %w", info.ARN, err)
		}
		return keys.Record{PublicKeyJwk: jwk, Kid: kid, Alg: alg, CreatedAt: now.UTC(), KMSKeyID: info.ARN}, nil
	}}
}

// WithAdoption makes the first rotation of an uninitialised secret adopt a.
func WithAdoption(a Adoption) Option {
	return func(r *Rotator) { r.adoption = &a }
}

// adopt returns the first key: the adopted one. The adoption is tagged
// before the record that carries it is written, so that later rotations,
// with the setting still in place, know it is done.
func (r *Rotator) adopt(ctx context.Context, now time.Time) (keys.Record, error) {
	a := r.adoption
	rec, err := a.load(ctx, now)
	if err != nil {
		return keys.Record{}, fmt.Errorf("%s: %w", a.Setting, err)
	}
	if err := r.secret.Tag(ctx, lifecycle.AdoptionTags(rec.Kid)); err != nil {
		return keys.Record{}, fmt.Errorf("%s: record the adoption: %w", a.Setting, err)
	}
	r.log.Info("adopting an existing key as the first CURRENT", "kid", rec.Kid, "alg", rec.Alg, "source", a.Setting)
	return rec, nil
}

// checkAdoption refuses a rotation of an initialised secret while an
// adoption is configured that did not happen: the setting would silently do
// nothing, and the operator expects the old key to be taken over.
func (r *Rotator) checkAdoption(snap snapshot) error {
	if r.adoption == nil || snap.state.Current == nil || lifecycle.Adopted(snap.meta.Tags) != "" {
		return nil
	}
	return errors.New(r.adoption.Setting + ": the secret is already initialised (AWSCURRENT holds key " +
		snap.state.Current.Kid + "); a key is adopted only by the first rotation of a secret holding {}: remove the setting")
}
