// Package rotation runs the Secrets Manager rotation protocol for signing
// keys (createSecret, setSecret, testSecret, finishSecret) and the scheduled
// cleanup, and publishes the key set. Decisions come from package lifecycle;
// this package reads and writes the stores.
package rotation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/store"
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

func (LocalCustody) NewKey(_ context.Context, alg keys.Algorithm, _ string, now time.Time) (keys.Record, error) {
	return keys.NewRecord(alg, now)
}

func (LocalCustody) SigningKey(rec keys.Record) (*token.Key, error) {
	return token.KeyFromRecord(rec, nil)
}

// Config is the rotator's configuration.
type Config struct {
	Lifecycle lifecycle.Config
	Algorithm keys.Algorithm
	// SecretID is the secret this rotator serves, to refuse events for others.
	SecretID string
	// PublishAttempts bounds the recompute-and-retry loop of a conflicting
	// key-set write.
	PublishAttempts int
}

// Rotator rotates the keys of one secret and publishes its key set.
type Rotator struct {
	cfg     Config
	secret  store.Secrets
	jwks    store.Objects
	custody Custody
	now     func() time.Time
	log     *slog.Logger
}

// New validates cfg and returns a rotator.
func New(cfg Config, secret store.Secrets, jwks store.Objects, custody Custody, now func() time.Time, log *slog.Logger) (*Rotator, error) {
	if err := cfg.Lifecycle.Validate(); err != nil {
		return nil, err
	}
	if _, err := keys.ParseAlgorithm(string(cfg.Algorithm)); err != nil {
		return nil, fmt.Errorf("KEY_ALGORITHM: %w", err)
	}
	if cfg.PublishAttempts <= 0 {
		cfg.PublishAttempts = 5
	}
	return &Rotator{cfg: cfg, secret: secret, jwks: jwks, custody: custody, now: now, log: log}, nil
}

// Event is a Secrets Manager rotation event, or {"action":"cleanup"}.
type Event struct {
	Step               string `json:"Step"`
	SecretID           string `json:"SecretId"`
	ClientRequestToken string `json:"ClientRequestToken"`
	Action             string `json:"action"`
}

// Invoke is the Lambda entry point.
func (r *Rotator) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var ev Event
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("invalid event: %w", err)
	}
	if err := r.Handle(ctx, ev); err != nil {
		r.log.Error("rotation step failed", "step", ev.Step, "action", ev.Action, "token", ev.ClientRequestToken, "error", err.Error())
		return nil, err
	}
	return []byte("null"), nil
}

// Handle runs one event.
func (r *Rotator) Handle(ctx context.Context, ev Event) error {
	if ev.Action != "" {
		if ev.Action != "cleanup" {
			return fmt.Errorf("invalid event: action %q is unknown (expected \"cleanup\")", ev.Action)
		}
		return r.Cleanup(ctx)
	}
	if !sameSecret(r.cfg.SecretID, ev.SecretID) {
		return fmt.Errorf("invalid event: SecretId %q is not this rotator's secret %q", ev.SecretID, r.cfg.SecretID)
	}
	if ev.ClientRequestToken == "" {
		return errors.New("invalid event: ClientRequestToken is required")
	}
	r.log.Info("rotation step", "step", ev.Step, "token", ev.ClientRequestToken)
	switch ev.Step {
	case "createSecret":
		return r.CreateSecret(ctx, ev.ClientRequestToken)
	case "setSecret":
		return r.SetSecret(ctx, ev.ClientRequestToken)
	case "testSecret":
		return r.TestSecret(ctx, ev.ClientRequestToken)
	case "finishSecret":
		return r.FinishSecret(ctx, ev.ClientRequestToken)
	}
	return fmt.Errorf("invalid event: Step %q is unknown (expected createSecret, setSecret, testSecret or finishSecret)", ev.Step)
}

// sameSecret compares a configured secret id (name or ARN) with the ARN of
// an event.
func sameSecret(configured, event string) bool {
	if configured == "" || configured == event {
		return true
	}
	// arn:aws:secretsmanager:region:account:secret:NAME-6RandomChars
	if i := strings.Index(event, ":secret:"); i >= 0 {
		name := event[i+len(":secret:"):]
		if j := strings.LastIndexByte(name, '-'); j > 0 && name[:j] == configured {
			return true
		}
		return name == configured
	}
	return false
}

// CreateSecret writes whatever the rotation still misses, in order: the
// pending record under the token (the only guarded write), a new NEXT under a
// version id derived from the token, and the publication of all of them.
func (r *Rotator) CreateSecret(ctx context.Context, tok string) error {
	snap, err := r.load(ctx)
	if err != nil {
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
	now := r.now()
	st := snap.state
	var pending keys.Record
	switch {
	case snap.emergency():
		fresh, err := r.custody.NewKey(ctx, r.cfg.Algorithm, tok, now)
		if err != nil {
			return keys.Record{}, fmt.Errorf("generate emergency key: %w", err)
		}
		pending = lifecycle.Rollover(st, r.cfg.Lifecycle, now, fresh)
		r.log.Warn("emergency rollover: revoking the current and next keys", "kid", fresh.Kid)
		// The revocations are tagged before the record that carries them is
		// written: if this rotation dies and is abandoned, the leaked keys
		// must stay revoked rather than return with the old state.
		if err := r.tagRevocations(ctx, pending); err != nil {
			return keys.Record{}, err
		}
	case st.Current == nil:
		// First rotation: nothing can depend on the new key yet, so it
		// skips the activation grace.
		if pending, err = r.custody.NewKey(ctx, r.cfg.Algorithm, tok, now); err != nil {
			return keys.Record{}, fmt.Errorf("generate first key: %w", err)
		}
	default:
		if st, err = r.readyNext(ctx, tok, snap); err != nil {
			return keys.Record{}, err
		}
		now = r.now()
		if err := lifecycle.CheckPromotion(st, r.cfg.Lifecycle, now); err != nil {
			return keys.Record{}, errors.Join(err, r.dropStubPending(ctx, tok, snap))
		}
		pending = lifecycle.Promote(st, r.cfg.Lifecycle, now)
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

// readyNext makes sure a published NEXT exists before promotion is
// considered: a missing NEXT (an adopted secret) is made and published, an
// unpublished one is published, so that a refused rotation still lets a later
// one proceed.
func (r *Rotator) readyNext(ctx context.Context, tok string, snap snapshot) (lifecycle.State, error) {
	st := snap.state
	if st.Next == nil || st.IsRevoked(st.Next.Kid) {
		if err := r.putNext(ctx, derivedVersion(tok, "standby"), snap.version(store.StageNext)); err != nil {
			return st, err
		}
	} else if _, ok := st.Published[st.Next.Kid]; ok || st.Next.PublishedAt != nil {
		return st, nil
	}
	fresh, err := r.publish(ctx)
	if err != nil {
		return st, err
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
	next := snap.state.Next
	if next != nil && next.Kid != pending.Kid && !revokedIn(pending, next.Kid) && !snap.state.IsRevoked(next.Kid) {
		return nil
	}
	return r.putNext(ctx, derivedVersion(tok, "next"), snap.version(store.StageNext))
}

func revokedIn(rec keys.Record, kid string) bool {
	for _, k := range rec.Revoked {
		if k.JWK.Kid == kid {
			return true
		}
	}
	return false
}

// putNext writes a new NEXT record under versionID and labels it NEXT. If
// the version already exists (an earlier attempt), its key is kept.
func (r *Rotator) putNext(ctx context.Context, versionID, labelledVersion string) error {
	existing, err := r.record(ctx, versionID)
	if err != nil {
		return fmt.Errorf("read next version: %w", err)
	}
	if existing != nil {
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
	rec, err := r.custody.NewKey(ctx, r.cfg.Algorithm, versionID, r.now())
	if err != nil {
		return fmt.Errorf("generate next key: %w", err)
	}
	err = r.secret.PutVersion(ctx, versionID, rec.Marshal(), []string{store.StageNext})
	if errors.Is(err, store.ErrVersionExists) {
		return r.putNext(ctx, versionID, labelledVersion) // a concurrent attempt wrote it first
	}
	if err != nil {
		return fmt.Errorf("write next version: %w", err)
	}
	r.log.Info("new NEXT key", "kid", rec.Kid, "version", versionID)
	return nil
}

// tagRevocations records an emergency's revocations as tags too, so that they
// stay in force even if the rotation is abandoned and its version dropped.
func (r *Rotator) tagRevocations(ctx context.Context, pending keys.Record) error {
	meta, err := r.secret.Describe(ctx)
	if err != nil {
		return fmt.Errorf("describe secret: %w", err)
	}
	tags := map[string]string{}
	for _, k := range pending.Revoked {
		if _, ok := meta.Tags[tagRevoked+k.JWK.Kid]; !ok {
			tags[tagRevoked+k.JWK.Kid] = timeTag(k.RevokedAt)
		}
	}
	if len(tags) == 0 {
		return nil
	}
	if err := r.secret.Tag(ctx, tags); err != nil {
		return fmt.Errorf("tag revocations: %w", err)
	}
	return nil
}

// SetSecret checks, in KMS custody, that the pending and NEXT keys are
// usable; with keys in the secret there is nothing outside it to update.
func (r *Rotator) SetSecret(ctx context.Context, tok string) error {
	checker, ok := r.custody.(KeyChecker)
	if !ok {
		return nil
	}
	snap, err := r.load(ctx)
	if err != nil {
		return fmt.Errorf("setSecret: %w", err)
	}
	pending, err := r.record(ctx, tok)
	if err != nil {
		return fmt.Errorf("setSecret: read pending version: %w", err)
	}
	var recs []keys.Record
	for _, rec := range []*keys.Record{pending, snap.state.Next} {
		if rec != nil {
			recs = append(recs, *rec)
		}
	}
	if err := checker.CheckKeys(ctx, recs...); err != nil {
		return fmt.Errorf("setSecret: %w", err)
	}
	return nil
}
