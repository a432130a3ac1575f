package kmscustody

import (
	"cmp"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/token"
)

// Tags put on every key the custody creates. The stack tag is what IAM
// scopes the functions' KMS permissions by; the version tag lets a retried
// createSecret find the key an earlier attempt made; the kid tag lets an
// operator go from a token's kid to its KMS key.
const (
	TagStack   = "jwks-issuer:stack"
	TagVersion = "jwks-issuer:version"
	TagKid     = "jwks-issuer:kid"
)

// OrphanAge is how old a key of this stack that the secret does not mention
// must be before Tidy schedules its deletion. A createSecret makes the key
// before it writes the record that references it; a younger key may be that
// one, in flight. (Retired keys past retention, which the secret does
// mention, go at once.)
const OrphanAge = time.Hour

// reuseAge bounds the age of a key NewKey reuses for a retried step. Past
// it, a concurrent Tidy could be scheduling that very key's deletion as an
// orphan while the retry writes a record referencing it; a retry that late
// makes a fresh key instead, and the old one is tidied away.
const reuseAge = OrphanAge / 2

// Custody keeps private keys in KMS. It implements rotation.Custody and
// the optional rotation.KeyJanitor and rotation.KeyChecker.
type Custody struct {
	api    store.KMS
	stack  string
	window int
	now    func() time.Time
	log    *slog.Logger
}

// The assertions that Custody implements the rotation interfaces are in
// functions/rotator: importing package rotation here would link it into the
// signer, which uses only this package's Signer.

// New returns a custody creating keys tagged jwks-issuer:stack=stackTag and
// scheduling dropped keys for deletion after deletionWindowDays (7 to 30).
// now is the clock Tidy ages keys by.
func New(api store.KMS, stackTag string, deletionWindowDays int, now func() time.Time, log *slog.Logger) (*Custody, error) {
	if stackTag == "" {
		return nil, errors.New("KMS_KEY_TAG is empty: KMS custody needs the stack tag its keys carry")
	}
	if !store.ValidDeletionWindow(deletionWindowDays) {
		return nil, fmt.Errorf("KMS_DELETION_WINDOW_DAYS is %d, must be between %d and %d",
			deletionWindowDays, store.MinDeletionWindow, store.MaxDeletionWindow)
	}
	return &Custody{api: api, stack: stackTag, window: deletionWindowDays, now: now, log: log}, nil
}

// NewKey makes (or, for a retried step, finds) the KMS key for the secret
// version versionID and returns its record: the key's ARN and public JWK,
// no private material.
func (c *Custody) NewKey(ctx context.Context, alg keys.Algorithm, versionID string, now time.Time) (keys.Record, error) {
	spec, _, err := specFor(alg)
	if err != nil {
		return keys.Record{}, err
	}
	key, kid, err := c.findKey(ctx, versionID, spec)
	if err != nil {
		return keys.Record{}, err
	}
	if key.ARN == "" {
		kid = keys.NewKid()
		key, err = c.api.CreateKey(ctx, spec,
			fmt.Sprintf("jwks-issuer signing key %s (%s) of stack %s", kid, alg, c.stack),
			map[string]string{TagStack: c.stack, TagVersion: versionID, TagKid: kid})
		if err != nil {
			return keys.Record{}, fmt.Errorf("create KMS key for version %s: %w", versionID, err)
		}
		c.log.Info("created KMS key", "kid", kid, "key", key.ARN, "version", versionID)
	} else {
		c.log.Info("reusing the KMS key an earlier attempt made", "kid", kid, "key", key.ARN, "version", versionID)
	}
	pub, err := c.publicKey(ctx, key.ARN)
	if err != nil {
		return keys.Record{}, err
	}
	jwk, err := keys.PublicJWK(pub, kid, alg)
	if err != nil {
		return keys.Record{}, fmt.Errorf("KMS key %s: %w", key.ARN, err)
	}
	return keys.Record{PublicKeyJwk: jwk, Kid: kid, Alg: alg, CreatedAt: now.UTC(), KMSKeyID: key.ARN}, nil
}

// findKey returns the enabled key of this stack made for versionID less than
// reuseAge ago, if any (a zero KeyInfo if none), with the kid it was made
// for.
// A disabled or pending-deletion one is not reused: Tidy has judged it an
// orphan.
func (c *Custody) findKey(ctx context.Context, versionID string, spec store.KeySpec) (store.KeyInfo, string, error) {
	all, err := c.api.ListKeysTagged(ctx, TagStack, c.stack)
	if err != nil {
		return store.KeyInfo{}, "", fmt.Errorf("look for the KMS key of version %s: %w", versionID, err)
	}
	since := c.now().Add(-reuseAge)
	var found []store.KeyInfo
	for _, k := range all {
		if k.Tags[TagVersion] == versionID && k.State == store.KeyEnabled && k.Spec == spec &&
			k.Tags[TagKid] != "" && k.Created.After(since) {
			found = append(found, k)
		}
	}
	if len(found) == 0 {
		return store.KeyInfo{}, "", nil
	}
	// Two racing attempts may each have made one: take the oldest, so that
	// every retry settles on the same key; Tidy deletes the other.
	oldest := slices.MinFunc(found, func(a, b store.KeyInfo) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
	})
	return oldest, oldest.Tags[TagKid], nil
}

func (c *Custody) publicKey(ctx context.Context, keyID string) (crypto.PublicKey, error) {
	der, err := c.api.GetPublicKey(ctx, keyID)
	if err != nil {
		return nil, fmt.Errorf("get public key of %s: %w", keyID, err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("public key of %s: %w", keyID, err)
	}
	return pub, nil
}

// SigningKey prepares rec for signing: through KMS, or locally for a record
// that still holds its private key (one made before the switch to KMS
// custody, which keeps signing until it is rotated out).
func (c *Custody) SigningKey(rec keys.Record) (*token.Key, error) {
	return token.KeyFromRecord(rec, SignerFunc(c.api))
}

// CheckKeys makes sure the KMS keys of recs exist, are enabled, and hold the
// public keys the records publish (setSecret's check: a key that cannot
// sign, or signs for another kid, must not be promoted).
func (c *Custody) CheckKeys(ctx context.Context, recs ...keys.Record) error {
	for _, rec := range recs {
		if rec.KMSKeyID == "" {
			continue // a locally held key: nothing in KMS to check
		}
		info, err := c.api.DescribeKey(ctx, rec.KMSKeyID)
		if err != nil {
			return fmt.Errorf("key %s: KMS key %s: %w", rec.Kid, rec.KMSKeyID, err)
		}
		if info.State != store.KeyEnabled {
			return fmt.Errorf("key %s: KMS key %s is %s, not Enabled, so it cannot sign", rec.Kid, rec.KMSKeyID, info.State)
		}
		pub, err := c.publicKey(ctx, rec.KMSKeyID)
		if err != nil {
			return fmt.Errorf("key %s: %w", rec.Kid, err)
		}
		want, err := rec.PublicKeyJwk.PublicKey()
		if err != nil {
			return fmt.Errorf("key %s: %w", rec.Kid, err)
		}
		if eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(want) {
			return fmt.Errorf("key %s: KMS key %s holds a different public key than the record publishes", rec.Kid, rec.KMSKeyID)
		}
	}
	return nil
}

// Tidy disables the revoked keys at once, and schedules the deletion of
// every key of this stack that is neither live nor revoked: at once for the
// dropped ones (retired past retention, as the secret says), and after
// OrphanAge for the others (a revoked key that has left the record, or an
// orphan of an abandoned rotation, or an in-flight createSecret's key, which
// the age protects). live, revoked and dropped hold ARNs or ids. Errors on
// one key do not stop the others.
func (c *Custody) Tidy(ctx context.Context, live, revoked, dropped []string) error {
	ours, err := c.api.ListKeysTagged(ctx, TagStack, c.stack)
	if err != nil {
		return fmt.Errorf("list the stack's KMS keys: %w", err)
	}
	byID := make(map[string]store.KeyInfo, len(ours))
	for _, k := range ours {
		byID[k.ID] = k
	}
	keep, gone := map[string]bool{}, map[string]bool{}
	for _, ref := range live {
		keep[store.BareKeyID(ref)] = true
	}
	for _, ref := range dropped {
		gone[store.BareKeyID(ref)] = true
	}
	var errs []error
	for _, ref := range revoked {
		id := store.BareKeyID(ref)
		keep[id] = true // disabled, not deleted, while the record lists it
		k, ok := byID[id]
		if !ok { // not tagged as ours (an adopted key?): ask for it directly
			k, err = c.api.DescribeKey(ctx, ref)
			if errors.Is(err, store.ErrKeyNotFound) {
				continue // deleted already
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("revoked KMS key %s: %w", ref, err))
				continue
			}
		}
		if k.State != store.KeyEnabled {
			continue
		}
		if err := c.api.DisableKey(ctx, k.ID); err != nil {
			errs = append(errs, fmt.Errorf("disable revoked KMS key %s: %w", k.ARN, err))
			continue
		}
		c.log.Warn("disabled the KMS key of a revoked signing key", "key", k.ARN, "kid", k.Tags[TagKid])
	}
	cutoff := c.now().Add(-OrphanAge)
	for _, k := range ours {
		if keep[k.ID] || (!gone[k.ID] && k.Created.After(cutoff)) || (k.State != store.KeyEnabled && k.State != store.KeyDisabled) {
			continue
		}
		if err := c.api.ScheduleKeyDeletion(ctx, k.ID, c.window); err != nil {
			errs = append(errs, fmt.Errorf("schedule deletion of KMS key %s: %w", k.ARN, err))
			continue
		}
		c.log.Info("scheduled the deletion of a KMS key the secret no longer needs",
			"key", k.ARN, "kid", k.Tags[TagKid], "was", k.State, "window_days", c.window)
	}
	return errors.Join(errs...)
}
