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
// operator go from a token's kid to its KMS key; the secret tag names the
// secret the key was made for.
//
// Tags prove nothing about who made a key: anyone allowed to tag a key can
// give it these. What the custody deletes, reuses or disables it first
// proves to be its own through the key policy (see made).
const (
	TagStack   = "jwks-issuer:stack"
	TagVersion = "jwks-issuer:version"
	TagKid     = "jwks-issuer:kid"
	TagSecret  = "jwks-issuer:secret"
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
	secret string
	window int
	// policy is the key policy of every key the custody makes, and the
	// proof that a key is one of them.
	policy string
	now    func() time.Time
	log    *slog.Logger
}

// The assertions that Custody implements the rotation interfaces are in
// functions/rotator: importing package rotation here would link it into the
// signer, which uses only this package's Signer.

// Option configures a Custody.
type Option func(*options)

type options struct {
	secret, signerRole, rotatorRole string
}

// ForSecret names the secret the keys are made for (SECRET_ID): every key
// carries it as the jwks-issuer:secret tag, and the custody deletes,
// disables or reuses only keys that carry it.
func ForSecret(secretID string) Option {
	return func(o *options) { o.secret = secretID }
}

// WithRoles gives the roles of the signer and the rotator (SIGNER_ROLE_ARN,
// ROTATOR_ROLE_ARN): the keys' policy lets exactly these two sign with a
// key and read its public key, and leaves the account only administration.
// Without them the policy lets the account grant signing through IAM, as
// KMS's default policy does; the account is then taken from the secret's
// ARN.
func WithRoles(signerRoleARN, rotatorRoleARN string) Option {
	return func(o *options) { o.signerRole, o.rotatorRole = signerRoleARN, rotatorRoleARN }
}

// New returns a custody creating keys tagged jwks-issuer:stack=stackTag and
// scheduling dropped keys for deletion after deletionWindowDays (7 to 30).
// now is the clock Tidy ages keys by.
func New(api store.KMS, stackTag string, deletionWindowDays int, now func() time.Time, log *slog.Logger, opts ...Option) (*Custody, error) {
	if stackTag == "" {
		return nil, errors.New("KMS_KEY_TAG is empty: KMS custody needs the stack tag its keys carry")
	}
	if !store.ValidDeletionWindow(deletionWindowDays) {
		return nil, fmt.Errorf("KMS_DELETION_WINDOW_DAYS is %d, must be between %d and %d",
			deletionWindowDays, store.MinDeletionWindow, store.MaxDeletionWindow)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	partition, accountID, err := account(o.signerRole, o.rotatorRole, o.secret)
	if err != nil {
		return nil, err
	}
	if o.signerRole == "" {
		log.Warn("SIGNER_ROLE_ARN and ROTATOR_ROLE_ARN are not set: new KMS keys let IAM policies of the account grant kms:Sign",
			"account", accountID)
	}
	return &Custody{
		api: api, stack: stackTag, secret: o.secret, window: deletionWindowDays,
		policy: keyPolicy(partition, accountID, o.signerRole, o.rotatorRole),
		now:    now, log: log,
	}, nil
}

// Policy is the key policy the custody gives its keys.
func (c *Custody) Policy() string { return c.policy }

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
		tags := map[string]string{TagStack: c.stack, TagVersion: versionID, TagKid: kid}
		if c.secret != "" {
			tags[TagSecret] = c.secret
		}
		key, err = c.api.CreateKey(ctx, store.CreateKeyRequest{
			Spec:        spec,
			Description: fmt.Sprintf("jwks-issuer signing key %s (%s) of stack %s", kid, alg, c.stack),
			Policy:      c.policy,
			// The policy leaves kms:PutKeyPolicy to the account, not to the
			// rotator that makes the key: without the bypass KMS would
			// refuse a policy its caller cannot change later.
			BypassPolicyLockoutSafetyCheck: true,
			Tags:                           tags,
		})
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

// findKey returns the enabled key this custody made for versionID less
// than reuseAge ago, if any (a zero KeyInfo if none), with the kid it was
// made for.
// A disabled or pending-deletion one is not reused: Tidy has judged it an
// orphan. Nor is a key that merely carries the tags: a key someone else made
// and tagged to look like the retry's would otherwise sign every token.
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
	// Two racing attempts may each have made one: take the oldest of ours,
	// so that every retry settles on the same key; Tidy deletes the other.
	slices.SortFunc(found, func(a, b store.KeyInfo) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
	})
	for _, k := range found {
		ours, err := c.made(ctx, k)
		if err != nil {
			return store.KeyInfo{}, "", fmt.Errorf("look for the KMS key of version %s: %w", versionID, err)
		}
		if ours {
			return k, k.Tags[TagKid], nil
		}
		c.log.Warn("not reusing a KMS key tagged as this version's: its policy is not the one this rotator gives its keys",
			"key", k.ARN, "version", versionID)
	}
	return store.KeyInfo{}, "", nil
}

// made reports whether the custody made k for its secret: k carries the
// tags NewKey writes (with this secret's), and its key policy is the one
// NewKey gives. Tags alone prove nothing, since anyone allowed to tag a key
// can copy them; the policy can be set only by whoever makes the key or may
// change its policy, and such a principal could delete the key anyway. A
// key whose policy the rotator may not read is not its own.
func (c *Custody) made(ctx context.Context, k store.KeyInfo) (bool, error) {
	if k.Tags[TagStack] != c.stack || k.Tags[TagVersion] == "" || k.Tags[TagKid] == "" ||
		(c.secret != "" && k.Tags[TagSecret] != c.secret) {
		return false, nil
	}
	policy, err := c.api.KeyPolicy(ctx, k.ID)
	if errors.Is(err, store.ErrAccessDenied) || errors.Is(err, store.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read the policy of KMS key %s: %w", k.ARN, err)
	}
	return samePolicy(policy, c.policy), nil
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

// mayDisable: k, listed as revoked by the secret, carries the tags NewKey
// writes, and names no other secret (a key made before keys carried the
// secret tag and their own policy names none).
func (c *Custody) mayDisable(k store.KeyInfo) bool {
	return k.Tags[TagVersion] != "" && k.Tags[TagKid] != "" && (k.Tags[TagSecret] == "" || k.Tags[TagSecret] == c.secret)
}

// Tidy disables the revoked keys at once, and schedules the deletion of
// every key this custody made that is neither live nor revoked: at once for
// the dropped ones (retired past retention, as the secret says), and after
// OrphanAge for the others (a revoked key that has left the record, or an
// orphan of an abandoned rotation, or an in-flight createSecret's key, which
// the age protects). live, revoked and dropped hold ARNs or ids. Errors on
// one key do not stop the others.
//
// Tidy never deletes a key it cannot prove it made (see made), whatever its
// tags say: not a key someone else tagged with this stack's tag, and not a
// key made before keys carried their own policy (those are left for an
// operator to delete; see docs/runbook.md). A revoked key is disabled if it
// is provably this custody's, or if it carries this stack's tags and the
// secret lists it: disabling is undone by EnableKey, and only the rotator
// writes the secret.
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
		keep[store.BareKeyID(ref)] = true // disabled, not deleted, while the record lists it
		if err := c.disableRevoked(ctx, ref, byID); err != nil {
			errs = append(errs, err)
		}
	}
	cutoff := c.now().Add(-OrphanAge)
	for _, k := range ours {
		if keep[k.ID] || (!gone[k.ID] && k.Created.After(cutoff)) || (k.State != store.KeyEnabled && k.State != store.KeyDisabled) {
			continue
		}
		if err := c.deleteUnneeded(ctx, k, gone[k.ID]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// disableRevoked disables the KMS key of a revoked signing key, if it is
// this custody's to disable (see Tidy).
func (c *Custody) disableRevoked(ctx context.Context, ref string, byID map[string]store.KeyInfo) error {
	k, ok := byID[store.BareKeyID(ref)]
	if !ok {
		if _, err := c.api.DescribeKey(ctx, ref); errors.Is(err, store.ErrKeyNotFound) {
			return nil // deleted already
		}
		c.log.Warn("a revoked signing key's KMS key does not carry this stack's tag: not disabling it; "+
			"disable it by hand", "key", ref)
		return nil
	}
	if k.State != store.KeyEnabled {
		return nil
	}
	mine, err := c.made(ctx, k)
	if err != nil {
		return fmt.Errorf("revoked KMS key %s: %w", k.ARN, err)
	}
	if !mine && !c.mayDisable(k) {
		c.log.Warn("a revoked signing key's KMS key lacks the tags this rotator writes: not disabling it; "+
			"disable it by hand", "key", k.ARN)
		return nil
	}
	if err := c.api.DisableKey(ctx, k.ID); err != nil {
		return fmt.Errorf("disable revoked KMS key %s: %w", k.ARN, err)
	}
	c.log.Warn("disabled the KMS key of a revoked signing key", "key", k.ARN, "kid", k.Tags[TagKid])
	return nil
}

// deleteUnneeded schedules the deletion of a key the secret no longer
// needs, if this custody can prove it made it (see Tidy).
func (c *Custody) deleteUnneeded(ctx context.Context, k store.KeyInfo, dropped bool) error {
	mine, err := c.made(ctx, k)
	if err != nil {
		return fmt.Errorf("KMS key %s: %w", k.ARN, err)
	}
	if !mine {
		c.log.Info("not scheduling the deletion of a KMS key this rotator cannot prove it made "+
			"(made by someone else, or before keys carried their own policy): delete it by hand if it is not needed",
			"key", k.ARN, "kid", k.Tags[TagKid], "dropped", dropped)
		return nil
	}
	if err := c.api.ScheduleKeyDeletion(ctx, k.ID, c.window); err != nil {
		return fmt.Errorf("schedule deletion of KMS key %s: %w", k.ARN, err)
	}
	c.log.Info("scheduled the deletion of a KMS key the secret no longer needs",
		"key", k.ARN, "kid", k.Tags[TagKid], "was", k.State, "window_days", c.window)
	return nil
}
