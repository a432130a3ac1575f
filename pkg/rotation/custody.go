package rotation

import (
	"context"
	"time"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/token"
)

// Custody makes new keys and the signers of existing ones: private keys in
// the secret, or in KMS.
type Custody interface {
	// NewKey makes a key for alg. versionID names the secret version the
	// record will be written to; a custody that creates outside resources
	// uses it to find what an earlier attempt made.
	NewKey(ctx context.Context, alg keys.Algorithm, versionID string, now time.Time) (keys.Record, error)
	// SigningKey prepares rec for signing.
	SigningKey(rec keys.Record) (*token.Key, error)
}

// KeyJanitor is implemented by a custody whose keys live outside the secret
// (KMS): it disables revoked keys at once and schedules the deletion of keys
// it made that the secret no longer references. dropped are keys the secret
// still lists as retired but no longer needs (past retention): unlike a key
// no record mentions, which may be an in-flight createSecret's, they can go
// at once.
type KeyJanitor interface {
	Tidy(ctx context.Context, live, revoked, dropped []string) error
}

// KeyChecker is implemented by a custody whose keys live outside the secret:
// setSecret checks that the keys the rotation needs are usable.
type KeyChecker interface {
	CheckKeys(ctx context.Context, recs ...keys.Record) error
}

// LocalCustody keeps private keys in the secret.
type LocalCustody struct{}

var _ Custody = LocalCustody{}

func (LocalCustody) NewKey(_ context.Context, alg keys.Algorithm, _ string, now time.Time) (keys.Record, error) {
	return keys.NewRecord(alg, now)
}

func (LocalCustody) SigningKey(rec keys.Record) (*token.Key, error) {
	return token.KeyFromRecord(rec, nil)
}
