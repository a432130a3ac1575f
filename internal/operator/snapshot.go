package operator

import (
	"context"
	"errors"
	"fmt"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/awsstore"
)

// snapshot is the secret as read at one moment, as the rotator reads it
// (pkg/rotation/snapshot.go): labels, tags and the records of AWSCURRENT,
// AWSPENDING (when it is another version) and NEXT.
type snapshot struct {
	meta  store.SecretMeta
	state lifecycle.State
	// pendingEmpty: AWSPENDING is on a version other than AWSCURRENT that
	// holds no key record yet (a rotation Secrets Manager has started and
	// whose createSecret has not written it).
	pendingEmpty bool
}

func readSnapshot(ctx context.Context, c *clients, secretID string) (snapshot, error) {
	secret := awsstore.NewSecrets(c.sm, secretID)
	meta, err := secret.Describe(ctx)
	if err != nil {
		return snapshot{}, err
	}
	currentVersion := meta.Stages[store.StageCurrent]
	current, err := readRecord(ctx, secret, currentVersion)
	if err != nil {
		return snapshot{}, fmt.Errorf("read AWSCURRENT: %w", err)
	}
	var pending *keys.Record
	pendingVersion := meta.Stages[store.StagePending]
	if pendingVersion != "" && pendingVersion != currentVersion {
		if pending, err = readRecord(ctx, secret, pendingVersion); err != nil {
			return snapshot{}, fmt.Errorf("read AWSPENDING: %w", err)
		}
	}
	next, err := readRecord(ctx, secret, meta.Stages[store.StageNext])
	if err != nil {
		return snapshot{}, fmt.Errorf("read NEXT: %w", err)
	}
	return snapshot{
		meta:         meta,
		state:        lifecycle.NewState(current, pending, next, meta.Tags),
		pendingEmpty: pendingVersion != "" && pendingVersion != currentVersion && pending == nil,
	}, nil
}

// readRecord reads and parses one version; nil when there is no version, no
// value, or a value that is not a key record.
func readRecord(ctx context.Context, secret store.Secrets, versionID string) (*keys.Record, error) {
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
