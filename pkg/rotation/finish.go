package rotation

import (
	"context"
	"fmt"

	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/store"
)

// FinishSecret makes the token's version AWSCURRENT, records the moment,
// clears an emergency mark the promoted record answers, takes AWSPENDING
// off, publishes, and prunes the tags the new record has folded in.
func (r *Rotator) FinishSecret(ctx context.Context, tok string) error {
	meta, err := r.secret.Describe(ctx)
	if err != nil {
		return fmt.Errorf("finishSecret: describe secret: %w", err)
	}
	done, err := authorize(meta, "finishSecret", tok)
	if err != nil {
		return err
	}
	if done {
		// The labels are in place; a retry still completes the publication
		// (an attempt may have died before it), which only writes what the
		// secret already says, as the hourly cleanup does.
		return r.publishAndPrune(ctx)
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
	// Recorded after the move (and, in Parameter Store custody, after the
	// parameter follows it): if this attempt dies in between, the retry
	// records a later moment, which only lengthens the old key's retention.
	if r.parameter != nil {
		if err := r.followCurrent(ctx, meta.Tags); err != nil {
			return fmt.Errorf("finishSecret: %w", err)
		}
	} else if tags := lifecycle.ActivationTags(meta.Tags, rec.Kid, r.now()); len(tags) > 0 {
		if err := r.secret.Tag(ctx, tags); err != nil {
			return fmt.Errorf("finishSecret: record activation: %w", err)
		}
	}
	if lifecycle.RolloverAnswered(meta.Tags, *rec) {
		if err := r.secret.Untag(ctx, []string{lifecycle.TagRollover}); err != nil {
			return fmt.Errorf("finishSecret: clear rollover mark: %w", err)
		}
	}
	// Last of the label work: once AWSPENDING is off, a retry of this step
	// counts the rotation as finished and does nothing.
	if err := r.secret.MoveStage(ctx, store.StagePending, "", tok); err != nil {
		return fmt.Errorf("finishSecret: remove AWSPENDING: %w", err)
	}
	if err := r.publishAndPrune(ctx); err != nil {
		return err
	}
	r.log.Info("finishSecret done", "kid", rec.Kid)
	return nil
}

func (r *Rotator) publishAndPrune(ctx context.Context) error {
	snap, err := r.publish(ctx)
	if err != nil {
		return fmt.Errorf("finishSecret: %w", err)
	}
	r.pruneTags(ctx, snap)
	return nil
}

// pruneTags removes the tags whose facts the current record now carries, so
// that only a few live at once. A failure is harmless: the next finish
// retries, and stale tags change no decision.
func (r *Rotator) pruneTags(ctx context.Context, snap snapshot) {
	stale := lifecycle.StaleTags(snap.state, snap.meta.Tags)
	if len(stale) == 0 {
		return
	}
	if err := r.secret.Untag(ctx, stale); err != nil {
		r.log.Warn("could not remove folded tags; they are harmless and will be retried", "error", err.Error())
	}
}
