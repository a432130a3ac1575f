package rotation

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/store"
)

// snapshot is the secret as read at one moment.
type snapshot struct {
	meta  store.SecretMeta
	state lifecycle.State
}

func (s snapshot) version(stage string) string { return s.meta.Stages[stage] }

// load reads the secret's labels, tags and the records of AWSCURRENT,
// AWSPENDING and NEXT.
func (r *Rotator) load(ctx context.Context) (snapshot, error) {
	meta, state, err := ReadState(ctx, r.secret)
	return snapshot{meta: meta, state: state}, err
}

// record reads and parses one version of the rotator's secret.
func (r *Rotator) record(ctx context.Context, versionID string) (*keys.Record, error) {
	return ReadRecord(ctx, r.secret, versionID)
}

// currentRecord reads AWSCURRENT's record; nil before the first rotation.
func (r *Rotator) currentRecord(ctx context.Context) (*keys.Record, error) {
	_, value, err := r.secret.GetStage(ctx, store.StageCurrent)
	if err != nil {
		return nil, fmt.Errorf("read AWSCURRENT: %w", err)
	}
	rec, err := keys.ParseRecord(value)
	if errors.Is(err, keys.ErrNotRecord) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read AWSCURRENT: %w", err)
	}
	return &rec, nil
}

// ReadState reads what every rotation decision is taken on: the secret's
// labels and tags, and the records of AWSCURRENT, AWSPENDING (when it is
// another version) and NEXT. The operator command reads it the same way.
func ReadState(ctx context.Context, secret store.Secrets) (store.SecretMeta, lifecycle.State, error) {
	meta, err := secret.Describe(ctx)
	if err != nil {
		return store.SecretMeta{}, lifecycle.State{}, fmt.Errorf("describe secret: %w", err)
	}
	currentVersion := meta.Stages[store.StageCurrent]
	current, err := ReadRecord(ctx, secret, currentVersion)
	if err != nil {
		return store.SecretMeta{}, lifecycle.State{}, fmt.Errorf("read AWSCURRENT: %w", err)
	}
	var pending *keys.Record
	if v := meta.Stages[store.StagePending]; v != "" && v != currentVersion {
		if pending, err = ReadRecord(ctx, secret, v); err != nil {
			return store.SecretMeta{}, lifecycle.State{}, fmt.Errorf("read AWSPENDING: %w", err)
		}
	}
	next, err := ReadRecord(ctx, secret, meta.Stages[store.StageNext])
	if err != nil {
		return store.SecretMeta{}, lifecycle.State{}, fmt.Errorf("read NEXT: %w", err)
	}
	return meta, lifecycle.NewState(current, pending, next, meta.Tags), nil
}

// ReadRecord reads and parses one version; nil when there is no version, no
// value, or a value that is not a key record.
func ReadRecord(ctx context.Context, secret store.Secrets, versionID string) (*keys.Record, error) {
	if versionID == "" {
		return nil, nil
	}
	value, err := secret.GetVersion(ctx, versionID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rec, err := keys.ParseRecord(value)
	if errors.Is(err, keys.ErrNotRecord) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("version %s: %w", versionID, err)
	}
	return &rec, nil
}

// derivedVersion returns a version id that depends only on the rotation
// token and purpose, so that a retried step finds what an earlier attempt
// wrote instead of making a second key.
func derivedVersion(token, purpose string) string {
	sum := sha256.Sum256([]byte(token + "/" + purpose))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
