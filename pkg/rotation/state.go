package rotation

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/store"
)

// Secret tags. Versions are immutable, so events learned after a version was
// written (a key's first publication, the moment a version became
// AWSCURRENT, a revocation in flight) are kept as tags, each written only
// after its event succeeded, and folded into the next record.
const (
	tagPublished = "jwks-issuer:published:"
	tagCurrent   = "jwks-issuer:current:"
	tagRevoked   = "jwks-issuer:revoked:"
	// TagRollover, set to RolloverEmergency by an operator, makes the next
	// rotation an emergency rollover.
	TagRollover       = "jwks-issuer:rollover"
	RolloverEmergency = "emergency"
)

// snapshot is the secret as read at one moment.
type snapshot struct {
	meta  store.SecretMeta
	state lifecycle.State
}

func (s snapshot) version(stage string) string { return s.meta.Stages[stage] }

func (s snapshot) emergency() bool { return s.meta.Tags[TagRollover] == RolloverEmergency }

// load reads the secret's labels, tags and the records of AWSCURRENT,
// AWSPENDING and NEXT.
func (r *Rotator) load(ctx context.Context) (snapshot, error) {
	meta, err := r.secret.Describe(ctx)
	if err != nil {
		return snapshot{}, fmt.Errorf("describe secret: %w", err)
	}
	snap := snapshot{meta: meta, state: lifecycle.State{
		Published: map[string]time.Time{},
		Revoked:   map[string]time.Time{},
	}}
	st := &snap.state
	currentVersion := meta.Stages[store.StageCurrent]
	if st.Current, err = r.record(ctx, currentVersion); err != nil {
		return snapshot{}, fmt.Errorf("read AWSCURRENT: %w", err)
	}
	if v := meta.Stages[store.StagePending]; v != "" && v != currentVersion {
		if st.Pending, err = r.record(ctx, v); err != nil {
			return snapshot{}, fmt.Errorf("read AWSPENDING: %w", err)
		}
	}
	if st.Next, err = r.record(ctx, meta.Stages[store.StageNext]); err != nil {
		return snapshot{}, fmt.Errorf("read NEXT: %w", err)
	}
	for k, v := range meta.Tags {
		kid, at, ok := parseTimeTag(k, v)
		switch {
		case !ok:
		case strings.HasPrefix(k, tagPublished):
			st.Published[kid] = at
		case strings.HasPrefix(k, tagRevoked):
			st.Revoked[kid] = at
		case strings.HasPrefix(k, tagCurrent) && st.Current != nil && kid == st.Current.Kid:
			st.CurrentSince = at
		}
	}
	if st.CurrentSince.IsZero() && st.Current != nil && st.Current.ActivatedAt != nil {
		st.CurrentSince = *st.Current.ActivatedAt // an adopted cdk-jwks-rotation record
	}
	return snap, nil
}

// record reads and parses one version; nil when there is no version, no
// value, or a value that is not a key record.
func (r *Rotator) record(ctx context.Context, versionID string) (*keys.Record, error) {
	if versionID == "" {
		return nil, nil
	}
	value, err := r.secret.GetVersion(ctx, versionID)
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

func parseTimeTag(key, value string) (kid string, at time.Time, ok bool) {
	for _, p := range []string{tagPublished, tagCurrent, tagRevoked} {
		if strings.HasPrefix(key, p) {
			at, err := time.Parse(time.RFC3339Nano, value)
			return key[len(p):], at, err == nil
		}
	}
	return "", time.Time{}, false
}

func timeTag(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// derivedVersion returns a version id that depends only on the rotation
// token and purpose, so that a retried step finds what an earlier attempt
// wrote instead of making a second key.
func derivedVersion(token, purpose string) string {
	sum := sha256.Sum256([]byte(token + "/" + purpose))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
