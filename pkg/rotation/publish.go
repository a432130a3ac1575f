package rotation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/store"
)

// ErrConflict: the key set kept changing under this writer.
var ErrConflict = errors.New("the published key set kept changing during the write")

// publish writes the key set of the current state. Every writer reads the
// object's ETag before the state, and writes only if the ETag is unchanged,
// so a writer holding an older state can never overwrite the set of a newer
// one; on a conflict it reads both again. After a write it records the first
// publication of the keys that lacked one.
func (r *Rotator) publish(ctx context.Context) (snapshot, error) {
	for attempt := 1; ; attempt++ {
		obj, err := r.jwks.Get(ctx)
		missing := errors.Is(err, store.ErrNotFound)
		if err != nil && !missing {
			return snapshot{}, fmt.Errorf("publish jwks: read: %w", err)
		}
		snap, err := r.load(ctx)
		if err != nil {
			return snapshot{}, fmt.Errorf("publish jwks: %w", err)
		}
		set := lifecycle.KeySet(snap.state, r.cfg.Lifecycle, r.now())
		body := keys.MarshalSet(set)
		cacheControl := fmt.Sprintf("public, max-age=%d", int64(r.cfg.Lifecycle.JWKSMaxAge/time.Second))
		if missing || string(obj.Body) != string(body) || obj.CacheControl != cacheControl || obj.ContentType != "application/json" {
			cond := store.PutCondition{IfMatch: obj.ETag, IfNoneMatch: missing}
			_, err = r.jwks.Put(ctx, body, "application/json", cacheControl, cond)
			if errors.Is(err, store.ErrPrecondition) {
				if attempt < r.cfg.PublishAttempts {
					r.log.Info("jwks changed during publish; recomputing", "attempt", attempt)
					continue
				}
				return snapshot{}, fmt.Errorf("publish jwks: %w after %d attempts", ErrConflict, attempt)
			}
			if err != nil {
				return snapshot{}, fmt.Errorf("publish jwks: write: %w", err)
			}
			r.log.Info("jwks published", "kids", kids(set))
		}
		// Recorded even when the object was already up to date: an earlier
		// attempt may have written it and died before tagging.
		if tags := lifecycle.PublicationTags(snap.state, set, r.now()); len(tags) > 0 {
			if err := r.secret.Tag(ctx, tags); err != nil {
				return snapshot{}, fmt.Errorf("publish jwks: record publication: %w", err)
			}
		}
		return snap, nil
	}
}

func kids(set []keys.JWK) []string {
	out := make([]string, len(set))
	for i, k := range set {
		out[i] = k.Kid
	}
	return out
}
