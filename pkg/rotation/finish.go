package rotation

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/store"
)

// TestSecret signs a probe token with the pending key through the signer's
// own code, reads the published key set back, and verifies the probe with it
// using an independent JOSE implementation.
func (r *Rotator) TestSecret(ctx context.Context, tok string) error {
	rec, err := r.record(ctx, tok)
	if err != nil {
		return fmt.Errorf("testSecret: read pending version: %w", err)
	}
	if rec == nil {
		// rotate-secret --no-rotate-immediately tests a version Secrets
		// Manager made itself, holding no key: test the current key instead.
		_, value, err := r.secret.GetStage(ctx, store.StageCurrent)
		if err != nil {
			return fmt.Errorf("testSecret: read AWSCURRENT: %w", err)
		}
		cur, err := keys.ParseRecord(value)
		if errors.Is(err, keys.ErrNotRecord) {
			r.log.Info("testSecret: no key under the token and none current yet; nothing to test", "token", tok)
			return nil
		}
		if err != nil {
			return fmt.Errorf("testSecret: %w", err)
		}
		rec = &cur
	}
	if err := r.probe(ctx, *rec); err != nil {
		return fmt.Errorf("testSecret: %w", err)
	}
	r.log.Info("testSecret passed", "kid", rec.Kid)
	return nil
}

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

// FinishSecret makes the token's version AWSCURRENT, records the moment,
// takes AWSPENDING off, clears an emergency mark the promoted record answers,
// and publishes.
func (r *Rotator) FinishSecret(ctx context.Context, tok string) error {
	meta, err := r.secret.Describe(ctx)
	if err != nil {
		return fmt.Errorf("finishSecret: describe secret: %w", err)
	}
	rec, err := r.record(ctx, tok)
	if err != nil {
		return fmt.Errorf("finishSecret: read pending version: %w", err)
	}
	if rec == nil {
		return fmt.Errorf("finishSecret: version %s holds no key record; createSecret has not run for this token", tok)
	}
	if current := meta.Stages[store.StageCurrent]; current != tok {
		if err := r.secret.MoveStage(ctx, store.StageCurrent, tok, current); err != nil {
			return fmt.Errorf("finishSecret: move AWSCURRENT: %w", err)
		}
		r.log.Info("AWSCURRENT moved", "kid", rec.Kid, "version", tok)
	}
	// Recorded after the move: if this attempt dies in between, the retry
	// records a later moment, which only lengthens the old key's retention.
	if _, ok := meta.Tags[tagCurrent+rec.Kid]; !ok {
		if err := r.secret.Tag(ctx, map[string]string{tagCurrent + rec.Kid: timeTag(r.now())}); err != nil {
			return fmt.Errorf("finishSecret: record activation: %w", err)
		}
	}
	if meta.Stages[store.StagePending] == tok {
		if err := r.secret.MoveStage(ctx, store.StagePending, "", tok); err != nil {
			return fmt.Errorf("finishSecret: remove AWSPENDING: %w", err)
		}
	}
	if rec.Emergency && meta.Tags[TagRollover] != "" {
		if err := r.secret.Untag(ctx, []string{TagRollover}); err != nil {
			return fmt.Errorf("finishSecret: clear rollover mark: %w", err)
		}
	}
	snap, err := r.publish(ctx)
	if err != nil {
		return fmt.Errorf("finishSecret: %w", err)
	}
	r.pruneTags(ctx, snap)
	r.log.Info("finishSecret done", "kid", rec.Kid)
	return nil
}

// pruneTags removes the tags whose facts the current record now carries, so
// that only a few live at once (a secret holds at most 50 tags).
func (r *Rotator) pruneTags(ctx context.Context, snap snapshot) {
	st := snap.state
	if st.Current == nil {
		return
	}
	var stale []string
	for k := range snap.meta.Tags {
		kid, _, ok := parseTimeTag(k, snap.meta.Tags[k])
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(k, tagCurrent):
			ok = kid != st.Current.Kid
		case strings.HasPrefix(k, tagPublished):
			ok = (st.Next == nil || kid != st.Next.Kid) && (st.Pending == nil || kid != st.Pending.Kid)
		case strings.HasPrefix(k, tagRevoked):
			ok = revokedIn(*st.Current, kid)
		}
		if ok {
			stale = append(stale, k)
		}
	}
	if len(stale) == 0 {
		return
	}
	if err := r.secret.Untag(ctx, stale); err != nil {
		r.log.Warn("could not remove folded tags; they are harmless and will be retried", "error", err.Error())
	}
}

// Cleanup republishes the key set for the current state at the current
// time: retired keys past retention leave, and a deleted, truncated or stale
// jwks.json is restored from the secret.
func (r *Rotator) Cleanup(ctx context.Context) error {
	snap, err := r.publish(ctx)
	if err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	if err := r.tidy(ctx, snap); err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	return nil
}

// tidy lets a custody with outside keys disable and delete what the state no
// longer needs. It runs after a publish, so a key is deleted only once it has
// left the published set.
func (r *Rotator) tidy(ctx context.Context, snap snapshot) error {
	janitor, ok := r.custody.(KeyJanitor)
	if !ok {
		return nil
	}
	live, revoked, dropped := lifecycle.ExternalKeys(snap.state, r.cfg.Lifecycle, r.now())
	if err := janitor.Tidy(ctx, live, revoked, dropped); err != nil {
		return fmt.Errorf("tidy KMS keys: %w", err)
	}
	return nil
}
