package rotation

import (
	"context"
	"fmt"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"jwks-issuer/pkg/keys"
)

// SetSecret checks, in KMS custody, that the pending and NEXT keys are
// usable; with keys in the secret there is nothing outside it to update.
func (r *Rotator) SetSecret(ctx context.Context, tok string) error {
	meta, err := r.secret.Describe(ctx)
	if err != nil {
		return fmt.Errorf("setSecret: describe secret: %w", err)
	}
	if done, err := authorize(meta, "setSecret", tok); err != nil || done {
		return err
	}
	checker, ok := r.custody.(KeyChecker)
	if !ok {
		return nil
	}
	snap, err := r.load(ctx)
	if err != nil {
		return fmt.Errorf("setSecret: %w", err)
	}
	pending, err := r.record(ctx, tok)
	if err != nil {
		return fmt.Errorf("setSecret: read pending version: %w", err)
	}
	var recs []keys.Record
	for _, rec := range []*keys.Record{pending, snap.state.Next} {
		if rec != nil {
			recs = append(recs, *rec)
		}
	}
	if err := checker.CheckKeys(ctx, recs...); err != nil {
		return fmt.Errorf("setSecret: %w", err)
	}
	return nil
}

// TestSecret signs a probe token with the pending key through the signer's
// own code, reads the published key set back, and verifies the probe with it
// using an independent JOSE implementation.
func (r *Rotator) TestSecret(ctx context.Context, tok string) error {
	meta, err := r.secret.Describe(ctx)
	if err != nil {
		return fmt.Errorf("testSecret: describe secret: %w", err)
	}
	if done, err := authorize(meta, "testSecret", tok); err != nil || done {
		return err
	}
	rec, err := r.record(ctx, tok)
	if err != nil {
		return fmt.Errorf("testSecret: read pending version: %w", err)
	}
	if rec == nil {
		// rotate-secret --no-rotate-immediately tests a version Secrets
		// Manager made itself, holding no key: test the current key instead.
		cur, err := r.currentRecord(ctx)
		if err != nil {
			return fmt.Errorf("testSecret: %w", err)
		}
		if cur == nil {
			r.log.Info("testSecret: no key under the token and none current yet; nothing to test", "token", tok)
			return nil
		}
		rec = cur
	}
	if err := r.probe(ctx, *rec); err != nil {
		return fmt.Errorf("testSecret: %w", err)
	}
	r.log.Info("testSecret passed", "kid", rec.Kid)
	return nil
}

// probe signs a short-lived token with rec's key and verifies it against
// the key set as published, the way a verifier would.
func (r *Rotator) probe(ctx context.Context, rec keys.Record) error {
	key, err := r.custody.SigningKey(rec)
	if err != nil {
		return err
	}
	now := r.now().Unix()
	probe, err := key.SignProbe(ctx, map[string]any{"sub": "jwks-issuer-probe", "iat": now, "exp": now + 300})
	if err != nil {
		return fmt.Errorf("sign probe: %w", err)
	}
	obj, err := r.jwks.Get(ctx)
	if err != nil {
		return fmt.Errorf("read published key set: %w", err)
	}
	set, err := jwk.Parse(obj.Body)
	if err != nil {
		return fmt.Errorf("published key set does not parse: %w", err)
	}
	if _, ok := set.LookupKeyID(rec.Kid); !ok {
		return fmt.Errorf("key %s is not in the published key set", rec.Kid)
	}
	if _, err := jws.Verify([]byte(probe), jws.WithKeySet(set, jws.WithRequireKid(true))); err != nil {
		return fmt.Errorf("probe token signed by %s does not verify against the published key set: %w", rec.Kid, err)
	}
	return nil
}
