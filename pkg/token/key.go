package token

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"jwks-issuer/pkg/keys"
)

// Key is a signing key ready for the hot path: its protected header is
// encoded once, not per token.
type Key struct {
	Kid    string
	Alg    keys.Algorithm
	signer Signer
	// prefix is base64url(header) + ".", the start of every signing input.
	prefix []byte
	// sigLen bounds the length of a signature, for sizing buffers.
	sigLen int
	// inFlight is how many Sign calls a batch may have outstanding: 1 for
	// a signer computing here, RemoteSigner's bound for a round trip.
	inFlight int
}

// NewKey prepares a key for signing.
func NewKey(kid string, alg keys.Algorithm, signer Signer) *Key {
	header, _ := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{string(alg), kid, "JWT"})
	prefix := base64.RawURLEncoding.AppendEncode(nil, header)
	k := &Key{Kid: kid, Alg: alg, signer: signer, prefix: append(prefix, '.'),
		sigLen: alg.SignatureSize(), inFlight: 1}
	if k.sigLen == 0 {
		k.sigLen = 512 // RSA up to 4096 bits
	}
	if r, ok := signer.(RemoteSigner); ok {
		k.inFlight = max(1, r.MaxInFlight())
	}
	return k
}

func (k *Key) maxInFlight() int { return k.inFlight }

// KMSSignerFunc makes a signer for a key kept in KMS; nil when the signer
// runs without KMS custody.
type KMSSignerFunc func(keyID string, alg keys.Algorithm) Signer

// KeyFromRecord prepares the signing key a record describes.
func KeyFromRecord(rec keys.Record, kms KMSSignerFunc) (*Key, error) {
	if rec.PrivateKeyPem == "" {
		if kms == nil {
			return nil, fmt.Errorf("key %s is kept in KMS (%s) but this signer has no KMS client: set KEY_CUSTODY=kms", rec.Kid, rec.KMSKeyID)
		}
		return NewKey(rec.Kid, rec.Alg, kms(rec.KMSKeyID, rec.Alg)), nil
	}
	priv, err := rec.PrivateKey()
	if err != nil {
		return nil, err
	}
	s, err := NewLocalSigner(rec.Alg, priv)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", rec.Kid, err)
	}
	return NewKey(rec.Kid, rec.Alg, s), nil
}

// ErrNoKey: the secret has not been initialised by a first rotation.
var ErrNoKey = errors.New("the secret holds no signing key yet: run its first rotation " +
	"(aws secretsmanager rotate-secret --secret-id SECRET_ID)")

// CurrentSecret reads the AWSCURRENT version of the key secret.
type CurrentSecret interface {
	GetStage(ctx context.Context, stage string) (versionID string, value []byte, err error)
}

// SecretKeyLoader loads the key of the secret's AWSCURRENT version.
func SecretKeyLoader(secret CurrentSecret, kms KMSSignerFunc) func(context.Context) (*Key, error) {
	return func(ctx context.Context) (*Key, error) {
		_, value, err := secret.GetStage(ctx, "AWSCURRENT")
		if err != nil {
			return nil, fmt.Errorf("read signing key: %w", err)
		}
		rec, err := keys.ParseRecord(value)
		if errors.Is(err, keys.ErrNotRecord) {
			return nil, ErrNoKey
		}
		if err != nil {
			return nil, fmt.Errorf("read signing key: %w", err)
		}
		return KeyFromRecord(rec, kms)
	}
}

// KeyCache keeps the signing key between invocations. A key fetched at f is
// refreshed by the first call after f + S/2; if that refresh fails the cached
// key keeps signing until f + S and never after: S bounds how long a retired
// key can go on signing, and retention relies on it.
type KeyCache struct {
	load   func(context.Context) (*Key, error)
	maxAge time.Duration
	now    func() time.Time
	log    *slog.Logger
	// observe, when set, learns of every read of the key (metrics.go).
	observe func(KeyRefresh)

	mu      sync.Mutex
	key     *Key
	fetched time.Time
}

// NewKeyCache caches what load returns for at most maxAge (S).
func NewKeyCache(load func(context.Context) (*Key, error), maxAge time.Duration, now func() time.Time, log *slog.Logger) *KeyCache {
	return &KeyCache{load: load, maxAge: maxAge, now: now, log: log}
}

// Key returns the key to sign with now.
func (c *KeyCache) Key(ctx context.Context) (*Key, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	age := now.Sub(c.fetched)
	if c.key != nil && age < c.maxAge/2 {
		return c.key, nil
	}
	// The fetch time is taken before the read, so the age is never understated.
	key, err := c.load(ctx)
	if c.observe != nil {
		c.observe(KeyRefresh{Cached: c.key != nil, Age: age, Err: err})
	}
	if err == nil {
		if c.key != nil && c.key.Kid != key.Kid {
			c.log.Info("signing key changed", "old_kid", c.key.Kid, "kid", key.Kid)
		}
		c.key, c.fetched = key, now
		return key, nil
	}
	if c.key != nil && age < c.maxAge {
		c.log.Warn("signing key refresh failed; signing with the cached key",
			"kid", c.key.Kid, "cached_for", age.String(), "limit", c.maxAge.String(), "error", err.Error())
		return c.key, nil
	}
	if c.key != nil {
		return nil, fmt.Errorf("signing key refresh failed and the cached key is older than KEY_CACHE_SECONDS (%s): %w", c.maxAge, err)
	}
	return nil, err
}
