package rotation

import (
	"context"
	"fmt"

	"jwks-issuer/pkg/lifecycle"
)

// Cleanup republishes the key set for the current state at the current
// time: retired keys past retention leave, and a deleted, truncated or stale
// jwks.json is restored from the secret. In Parameter Store custody it
// repairs the signing-key parameter too. It writes S3, the parameter and
// tags, never a secret version or a label.
func (r *Rotator) Cleanup(ctx context.Context) error {
	snap, err := r.publish(ctx)
	if err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	if err := r.tidy(ctx, snap); err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	if r.parameter != nil {
		if err := r.followCurrent(ctx, snap.meta.Tags); err != nil {
			return fmt.Errorf("cleanup: %w", err)
		}
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
