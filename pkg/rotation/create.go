package rotation

import (
	"context"
	"errors"
	"fmt"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/store"
)

// CreateSecret writes whatever the rotation still misses, in order: the
// pending record under the token (the only guarded write), a new NEXT under a
// version id derived from the token, and the publication of all of them. A
// retry after a death at any point finishes the job with what the earlier
// attempt wrote, instead of skipping it or making a second key.
func (r *Rotator) CreateSecret(ctx context.Context, tok string) error {
	snap, err := r.load(ctx)
	if err != nil {
		return fmt.Errorf("createSecret: %w", err)
	}
	if done, err := authorize(snap.meta, "createSecret", tok); err != nil || done {
		return err
	}
	if err := r.checkAdoption(snap); err != nil {
		return fmt.Errorf("createSecret: %w", err)
	}
	pending, err := r.ensurePending(ctx, tok, snap)
	if err != nil {
		return fmt.Errorf("createSecret: %w", err)
	}
	if err := r.ensureNext(ctx, tok, pending); err != nil {
		return fmt.Errorf("createSecret: %w", err)
	}
	snap, err = r.publish(ctx)
	if err != nil {
		return fmt.Errorf("createSecret: %w", err)
	}
	if pending.Emergency {
		if err := r.tidy(ctx, snap); err != nil {
			return fmt.Errorf("createSecret: %w", err)
		}
	}
	r.log.Info("createSecret done", "pending_kid", pending.Kid, "emergency", pending.Emergency)
	return nil
}

// ensurePending returns the record under the token, writing it if missing.
func (r *Rotator) ensurePending(ctx context.Context, tok string, snap snapshot) (keys.Record, error) {
	existing, err := r.record(ctx, tok)
	if err != nil {
		return keys.Record{}, fmt.Errorf("read pending version: %w", err)
	}
	if existing != nil {
		return *existing, nil // a retry: never rebuild with a fresh key or time
	}
	pending, err := r.pendingRecord(ctx, tok, snap)
	if err != nil {
		return keys.Record{}, err
	}
	err = r.secret.PutVersion(ctx, tok, pending.Marshal(), []string{store.StagePending})
	if errors.Is(err, store.ErrVersionExists) {
		// Another attempt won the race: use what it wrote.
		rec, rerr := r.record(ctx, tok)
		if rerr != nil || rec == nil {
			return keys.Record{}, fmt.Errorf("write pending version: %w", err)
		}
		return *rec, nil
	}
	if err != nil {
		return keys.Record{}, fmt.Errorf("write pending version: %w", err)
	}
	return pending, nil
}

// pendingRecord builds the record the token's version will hold: an
// emergency rollover's fresh key, the first key of a new secret, or NEXT
// promoted once lifecycle allows it.
func (r *Rotator) pendingRecord(ctx context.Context, tok string, snap snapshot) (keys.Record, error) {
	now := r.now()
	switch {
	case lifecycle.EmergencyRequested(snap.meta.Tags):
		fresh, err := r.custody.NewKey(ctx, r.cfg.Algorithm, tok, now)
		if err != nil {
			return keys.Record{}, fmt.Errorf("generate emergency key: %w", err)
		}
		pending := lifecycle.Rollover(snap.state, r.cfg.Lifecycle, now, fresh)
		r.log.Warn("emergency rollover: revoking the current and next keys", "kid", fresh.Kid)
		// The revocations are tagged before the record that carries them is
		// written: if this rotation dies and is abandoned, the leaked keys
		// must stay revoked rather than return with the old state.
		if err := r.tagRevocations(ctx, pending); err != nil {
			return keys.Record{}, err
		}
		return pending, nil
	case snap.state.Current == nil && r.adoption != nil:
		// An adopted key already signs for a running issuer: it skips the
		// activation grace as a first key does.
		return r.adopt(ctx, now)
	case snap.state.Current == nil:
		// First rotation: nothing can depend on the new key yet, so it
		// skips the activation grace.
		first, err := r.custody.NewKey(ctx, r.cfg.Algorithm, tok, now)
		if err != nil {
			return keys.Record{}, fmt.Errorf("generate first key: %w", err)
		}
		return first, nil
	}
	st, err := r.readyNext(ctx, tok, snap)
	if err != nil {
		return keys.Record{}, err
	}
	now = r.now()
	if err := lifecycle.CheckPromotion(st, r.cfg.Lifecycle, now); err != nil {
		return keys.Record{}, errors.Join(err, r.dropStubPending(ctx, tok, snap))
	}
	return lifecycle.Promote(st, r.cfg.Lifecycle, now), nil
}

// readyNext gives the secret what lifecycle.NextReadiness says NEXT lacks
// before promotion is considered, and returns the state after: a missing
// NEXT (an adopted secret, a revoked one) is made and published, an
// unpublished one is published, so that a refused rotation still lets a
// later one proceed.
func (r *Rotator) readyNext(ctx context.Context, tok string, snap snapshot) (lifecycle.State, error) {
	switch lifecycle.NextReadiness(snap.state) {
	case lifecycle.NextReady:
		return snap.state, nil
	case lifecycle.NextMissing:
		if err := r.putNext(ctx, derivedVersion(tok, "standby"), snap.version(store.StageNext)); err != nil {
			return snap.state, err
		}
	}
	fresh, err := r.publish(ctx)
	if err != nil {
		return snap.state, err
	}
	return fresh.state, nil
}

// dropStubPending takes AWSPENDING off a value-less version Secrets Manager
// made under the token, so that a refused rotation leaves no rotation "in
// progress" that would block the next rotate-secret. If that fails the
// rotation stays in progress, and Secrets Manager's retry refuses (and
// tries again) or proceeds once the grace has passed.
func (r *Rotator) dropStubPending(ctx context.Context, tok string, snap snapshot) error {
	if snap.version(store.StagePending) != tok {
		return nil
	}
	if err := r.secret.MoveStage(ctx, store.StagePending, "", tok); err != nil {
		return fmt.Errorf("remove AWSPENDING from the refused rotation's version: %w", err)
	}
	return nil
}

// ensureNext gives the secret a NEXT key other than the pending one and not
// revoked, under a version id derived from the token.
func (r *Rotator) ensureNext(ctx context.Context, tok string, pending keys.Record) error {
	snap, err := r.load(ctx)
	if err != nil {
		return err
	}
	if lifecycle.NextUsable(snap.state, &pending) {
		return nil
	}
	return r.putNext(ctx, derivedVersion(tok, "next"), snap.version(store.StageNext))
}

// putNext writes a new NEXT record under versionID and labels it NEXT,
// moving the label from labelledVersion. If the version already exists (an
// earlier or concurrent attempt wrote it), its key is kept: a retry never
// makes a second key.
func (r *Rotator) putNext(ctx context.Context, versionID, labelledVersion string) error {
	existing, err := r.record(ctx, versionID)
	if err != nil {
		return fmt.Errorf("read next version: %w", err)
	}
	if existing == nil {
		written, err := r.writeNext(ctx, versionID)
		if err != nil || written {
			return err
		}
	}
	if labelledVersion == versionID {
		return nil
	}
	if err := r.secret.MoveStage(ctx, store.StageNext, versionID, labelledVersion); err != nil {
		// A concurrent attempt of the same rotation may have moved the
		// label first; that is success, anything else is not.
		if meta, derr := r.secret.Describe(ctx); derr == nil && meta.Stages[store.StageNext] == versionID {
			return nil
		}
		return fmt.Errorf("label NEXT: %w", err)
	}
	return nil
}

// writeNext makes a key and writes it under versionID labelled NEXT.
// written is false when a concurrent attempt wrote the version first: its
// key stands, and the caller labels it.
func (r *Rotator) writeNext(ctx context.Context, versionID string) (written bool, err error) {
	rec, err := r.custody.NewKey(ctx, r.cfg.Algorithm, versionID, r.now())
	if err != nil {
		return false, fmt.Errorf("generate next key: %w", err)
	}
	err = r.secret.PutVersion(ctx, versionID, rec.Marshal(), []string{store.StageNext})
	if errors.Is(err, store.ErrVersionExists) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("write next version: %w", err)
	}
	r.log.Info("new NEXT key", "kid", rec.Kid, "version", versionID)
	return true, nil
}

// tagRevocations records an emergency's revocations as tags too, so that they
// stay in force even if the rotation is abandoned and its version dropped.
func (r *Rotator) tagRevocations(ctx context.Context, pending keys.Record) error {
	meta, err := r.secret.Describe(ctx)
	if err != nil {
		return fmt.Errorf("describe secret: %w", err)
	}
	tags := lifecycle.RevocationTags(meta.Tags, pending)
	if len(tags) == 0 {
		return nil
	}
	if err := r.secret.Tag(ctx, tags); err != nil {
		return fmt.Errorf("tag revocations: %w", err)
	}
	return nil
}
