package keys

import (
	"bytes"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrNotRecord: the secret value is not a key record (a fresh secret holds
// "{}"), so the first rotation initialises it.
var ErrNotRecord = errors.New("secret value is not a key record")

// Record is the JSON kept in one secret version. Its first six fields are the
// cdk-jwks-rotation SecretValue, so a secret of that construct can be adopted;
// the rest is what the issuer adds. A version labelled AWSCURRENT holds the
// signing key and the key history (retired and revoked keys, public halves
// only), so the published set can always be rebuilt from it alone.
type Record struct {
	PrivateKeyPem string     `json:"privateKeyPem,omitempty"`
	PublicKeyJwk  JWK        `json:"publicKeyJwk"`
	Kid           string     `json:"kid"`
	Alg           Algorithm  `json:"alg"`
	CreatedAt     time.Time  `json:"createdAt"`
	ActivatedAt   *time.Time `json:"activatedAt,omitempty"`

	// KMSKeyID is the KMS key holding the private half (KMS custody).
	KMSKeyID string `json:"kmsKeyArn,omitempty"`
	// PublishedAt is when the key first appeared in the published set, once
	// known (it is learned after the version holding the key was written).
	PublishedAt *time.Time `json:"publishedAt,omitempty"`
	// Emergency marks a key made by an emergency rollover.
	Emergency bool         `json:"emergency,omitempty"`
	Retired   []RetiredKey `json:"retired,omitempty"`
	Revoked   []RevokedKey `json:"revoked,omitempty"`
}

// RetiredKey is a former signing key that still verifies.
type RetiredKey struct {
	JWK JWK `json:"publicKeyJwk"`
	// KMSKeyID is the KMS key of the private half (KMS custody), kept so
	// that it can be deleted once the key leaves the published set.
	KMSKeyID string `json:"kmsKeyArn,omitempty"`
	// RetiredAt is when AWSCURRENT left the key. Nil means "when the record
	// holding this entry became AWSCURRENT", a moment that cannot be written
	// into the record itself because versions are immutable.
	RetiredAt *time.Time `json:"retiredAt,omitempty"`
}

// RevokedKey is a key withdrawn in an emergency: never published again.
type RevokedKey struct {
	JWK       JWK       `json:"publicKeyJwk"`
	KMSKeyID  string    `json:"kmsKeyArn,omitempty"`
	RevokedAt time.Time `json:"revokedAt"`
}

// NewRecord generates a key for alg and returns its record.
func NewRecord(alg Algorithm, now time.Time) (Record, error) {
	priv, err := Generate(alg)
	if err != nil {
		return Record{}, err
	}
	return RecordFor(priv, alg, NewKid(), now)
}

// RecordFor builds the record of an existing private key.
func RecordFor(priv crypto.Signer, alg Algorithm, kid string, now time.Time) (Record, error) {
	jwk, err := PublicJWK(priv.Public(), kid, alg)
	if err != nil {
		return Record{}, err
	}
	pemText, err := EncodePrivateKey(priv)
	if err != nil {
		return Record{}, err
	}
	return Record{PrivateKeyPem: pemText, PublicKeyJwk: jwk, Kid: kid, Alg: alg, CreatedAt: now.UTC()}, nil
}

// ParseRecord reads a secret value. A value that is not a JSON object with a
// kid gives ErrNotRecord; a value with a kid that is inconsistent gives an
// error naming the field, because overwriting it would drop a live key.
func ParseRecord(value []byte) (Record, error) {
	var probe struct {
		Kid json.RawMessage `json:"kid"`
	}
	if len(bytes.TrimSpace(value)) == 0 || json.Unmarshal(value, &probe) != nil || probe.Kid == nil {
		return Record{}, ErrNotRecord
	}
	var r Record
	if err := json.Unmarshal(value, &r); err != nil {
		return Record{}, fmt.Errorf("key record: %w", err)
	}
	if err := r.validate(); err != nil {
		return Record{}, fmt.Errorf("key record %q: %w", r.Kid, err)
	}
	return r, nil
}

func (r *Record) validate() error {
	if r.Kid == "" {
		return errors.New("kid is empty")
	}
	if _, err := ParseAlgorithm(string(r.Alg)); err != nil {
		return fmt.Errorf("alg: %w", err)
	}
	if r.PrivateKeyPem == "" && r.KMSKeyID == "" {
		return errors.New("neither privateKeyPem nor kmsKeyArn is set")
	}
	// cdk-jwks-rotation's JWK may lack kid, alg or use: the record's own
	// fields are authoritative.
	jwk := r.PublicKeyJwk
	if jwk.Kid != "" && jwk.Kid != r.Kid {
		return fmt.Errorf("publicKeyJwk.kid %q differs from kid", jwk.Kid)
	}
	jwk.Kid, jwk.Alg, jwk.Use = r.Kid, string(r.Alg), "sig"
	pub, err := jwk.PublicKey()
	if err != nil {
		return fmt.Errorf("publicKeyJwk: %w", err)
	}
	if err := r.Alg.checkPublic(pub); err != nil {
		return fmt.Errorf("publicKeyJwk: %w", err)
	}
	r.PublicKeyJwk = jwk
	for i, k := range r.Retired {
		if _, err := k.JWK.PublicKey(); err != nil {
			return fmt.Errorf("retired[%d]: %w", i, err)
		}
	}
	return nil
}

// Marshal encodes the record for a secret version.
func (r Record) Marshal() []byte {
	b, err := json.Marshal(r)
	if err != nil { // only plain strings, times and slices: cannot fail
		panic(fmt.Sprintf("marshal key record: %v", err))
	}
	return b
}

// SigningOnly returns the record without its key history (retired and
// revoked keys): all a signer needs, and small enough for a standard-tier
// parameter (4 KB) whatever the history holds.
func (r Record) SigningOnly() Record {
	r.Retired, r.Revoked = nil, nil
	return r
}

// Public returns the record's key without private material.
func (r Record) Public() JWK { return r.PublicKeyJwk }

// PrivateKey parses the private key and checks that it is the half of the
// published public key, so a record whose fields were mixed up is refused
// instead of signing tokens nobody can verify.
func (r Record) PrivateKey() (crypto.Signer, error) {
	if r.PrivateKeyPem == "" {
		return nil, fmt.Errorf("key %q: no privateKeyPem (KMS custody keeps it in %s)", r.Kid, r.KMSKeyID)
	}
	priv, err := ParsePrivateKey(r.PrivateKeyPem)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", r.Kid, err)
	}
	pub, err := r.PublicKeyJwk.PublicKey()
	if err != nil {
		return nil, err
	}
	if eq, ok := priv.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(pub) {
		return nil, fmt.Errorf("key %q: privateKeyPem does not match publicKeyJwk", r.Kid)
	}
	return priv, nil
}
