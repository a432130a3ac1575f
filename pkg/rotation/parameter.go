package rotation

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/store"
)

// WithParameter makes the rotator keep the signing-key parameter equal to
// AWSCURRENT's key (Parameter Store custody): finishSecret writes it right
// after moving the label, and every cleanup repairs it.
func WithParameter(p store.Parameter) Option {
	return func(r *Rotator) { r.parameter = p }
}

// followCurrent makes the parameter hold AWSCURRENT's key, then records the
// moment that key began to reach signers (the activation tag the old key's
// retention counts from). Signers follow the parameter, not the label, so
// the old key stops signing only once the parameter no longer holds it:
// the tag is written after the parameter, and when this call had to write
// the parameter the moment is now, later than any moment recorded before.
func (r *Rotator) followCurrent(ctx context.Context, tags map[string]string) error {
	kid, wrote, err := r.syncParameter(ctx)
	if err != nil || kid == "" {
		return err
	}
	if wrote {
		tags = nil
	}
	if t := lifecycle.ActivationTags(tags, kid, r.now()); len(t) > 0 {
		if err := r.secret.Tag(ctx, t); err != nil {
			return fmt.Errorf("record activation: %w", err)
		}
	}
	return nil
}

// syncParameter writes AWSCURRENT's key to the parameter unless it already
// holds it, and returns its kid ("" before the first rotation). AWSCURRENT
// is read afresh before the write and again after it: a cleanup holding an
// older state must not leave a retired key where signers read it, and a
// label moved meanwhile is followed.
func (r *Rotator) syncParameter(ctx context.Context) (kid string, wrote bool, err error) {
	for range 3 {
		readAt := r.now()
		snap, err := r.load(ctx)
		if err != nil {
			return "", wrote, err
		}
		cur := snap.state.Current
		if cur == nil {
			return "", wrote, nil
		}
		want := cur.SigningOnly().Marshal()
		have, err := r.parameter.Get(ctx)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", wrote, fmt.Errorf("read signing key parameter: %w", err)
		}
		if err == nil && bytes.Equal(have, want) {
			return cur.Kid, wrote, nil
		}
		var held *keys.Record
		if rec, perr := keys.ParseRecord(have); err == nil && perr == nil {
			held = &rec
		}
		if !lifecycle.ParameterNeedsWrite(snap.state, held, readAt) {
			r.log.Info("signing key parameter holds a key newer than this view of the secret; left to its rotation",
				"kid", held.Kid, "current_kid", cur.Kid)
			return "", wrote, nil
		}
		if err := r.parameter.Put(ctx, want); err != nil {
			return "", wrote, fmt.Errorf("write signing key parameter: %w", err)
		}
		wrote = true
		r.log.Info("signing key parameter written", "kid", cur.Kid)
		after, err := r.currentRecord(ctx)
		if err != nil {
			return "", wrote, err
		}
		if after != nil && after.Kid == cur.Kid {
			return cur.Kid, wrote, nil
		}
	}
	return "", wrote, errors.New("write signing key parameter: AWSCURRENT kept changing during the write")
}
