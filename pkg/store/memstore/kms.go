package memstore

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"jwks-issuer/pkg/store"
)

// Operation names of KMS passed to a Hook.
const (
	OpCreateKey           = "CreateKey"
	OpGetPublicKey        = "GetPublicKey"
	OpSign                = "Sign"
	OpDescribeKey         = "DescribeKey"
	OpKeyPolicy           = "KeyPolicy"
	OpListKeysTagged      = "ListKeysTagged"
	OpDisableKey          = "DisableKey"
	OpScheduleKeyDeletion = "ScheduleKeyDeletion"
)

// kmsARNPrefix is the ARN of the twin's keys without the key id.
const kmsARNPrefix = "arn:aws:kms:us-east-1:000000000000:key/"

// KMS is an in-memory KMS with real asymmetric keys. Unlike moto it honours
// key states as AWS does: a disabled or pending-deletion key neither signs
// nor gives its public key, and a pending-deletion key cannot be disabled or
// scheduled again. It signs DIGEST messages correctly and refuses RAW ones
// over 4,096 bytes. The zero value is not usable; call NewKMS.
type KMS struct {
	hooked

	now  func() time.Time
	mu   sync.Mutex
	keys map[string]*kmsKey // by bare key id
	ids  []string           // creation order, for a stable listing
}

type kmsKey struct {
	info   store.KeyInfo
	tags   map[string]string
	policy string
	// policyHidden: KeyPolicy answers ErrAccessDenied, as KMS does for a
	// key whose policy does not let the caller read it.
	policyHidden bool
	priv         crypto.Signer
}

// defaultKeyPolicy is KMS's default key policy for the twin's account: the
// account may grant any use of the key through IAM.
const defaultKeyPolicy = `{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions",` +
	`"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"kms:*","Resource":"*"}]}`

var _ store.KMS = (*KMS)(nil)

// NewKMS returns a KMS without keys whose clock (creation dates) is now;
// nil means time.Now.
func NewKMS(now func() time.Time) *KMS {
	if now == nil {
		now = time.Now
	}
	return &KMS{now: now, keys: map[string]*kmsKey{}}
}

// CreateKey makes a key of req.Spec with real key material. A policy must
// be a JSON object with a Statement, as KMS requires; none means KMS's
// default policy.
func (k *KMS) CreateKey(ctx context.Context, req store.CreateKeyRequest) (store.KeyInfo, error) {
	if err := k.runHook(OpCreateKey); err != nil {
		return store.KeyInfo{}, err
	}
	var (
		priv crypto.Signer
		err  error
	)
	switch req.Spec {
	case store.KeySpecP256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case store.KeySpecP384:
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case store.KeySpecRSA2048:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return store.KeyInfo{}, fmt.Errorf("create key: key spec %q is not supported for SIGN_VERIFY here", req.Spec)
	}
	if err != nil {
		return store.KeyInfo{}, fmt.Errorf("create key: %w", err)
	}
	if len(req.Tags) > maxTags {
		return store.KeyInfo{}, fmt.Errorf("create key: %d tags, at most %d", len(req.Tags), maxTags)
	}
	for key, value := range req.Tags {
		if key == "" || len(key) > maxTagKeyLen || len(value) > maxTagValueLen || strings.HasPrefix(key, "aws:") {
			return store.KeyInfo{}, fmt.Errorf("create key: invalid tag %q=%q", key, value)
		}
	}
	policy := defaultKeyPolicy
	if req.Policy != "" {
		var doc struct {
			Statement json.RawMessage
		}
		if err := json.Unmarshal([]byte(req.Policy), &doc); err != nil || len(doc.Statement) == 0 {
			return store.KeyInfo{}, fmt.Errorf("create key: MalformedPolicyDocumentException: the policy is not a JSON policy document")
		}
		policy = req.Policy
	}
	id := newUUID()
	key := &kmsKey{
		info: store.KeyInfo{
			ID:      id,
			ARN:     kmsARNPrefix + id,
			State:   store.KeyEnabled,
			Created: k.now(),
			Spec:    req.Spec,
		},
		tags:   maps.Clone(req.Tags),
		policy: policy,
		priv:   priv,
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys[id] = key
	k.ids = append(k.ids, id)
	return key.info, nil
}

// GetPublicKey returns the DER SubjectPublicKeyInfo of an enabled key.
func (k *KMS) GetPublicKey(ctx context.Context, keyID string) ([]byte, error) {
	if err := k.runHook(OpGetPublicKey); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	key, err := k.usable(keyID, "get public key")
	if err != nil {
		return nil, err
	}
	return x509.MarshalPKIXPublicKey(key.priv.Public())
}

// Sign signs with an enabled key, as KMS does: RAW messages of at most
// 4,096 bytes are hashed, DIGEST ones must be a digest of the algorithm's
// size, and the algorithm must fit the key.
func (k *KMS) Sign(ctx context.Context, req store.SignRequest) ([]byte, error) {
	if err := k.runHook(OpSign); err != nil {
		return nil, err
	}
	k.mu.Lock()
	key, err := k.usable(req.KeyID, "sign")
	k.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var hash crypto.Hash
	switch {
	case req.Algorithm == store.ECDSASHA256 && key.info.Spec == store.KeySpecP256,
		req.Algorithm == store.RSAPKCS1SHA256 && key.info.Spec == store.KeySpecRSA2048:
		hash = crypto.SHA256
	case req.Algorithm == store.ECDSASHA384 && key.info.Spec == store.KeySpecP384:
		hash = crypto.SHA384
	default:
		return nil, fmt.Errorf("sign with KMS key %s: algorithm %s does not fit key spec %s", req.KeyID, req.Algorithm, key.info.Spec)
	}
	digest := req.Message
	if req.Digest {
		if len(digest) != hash.Size() {
			return nil, fmt.Errorf("sign with KMS key %s: digest is %d bytes, %s needs %d", req.KeyID, len(digest), req.Algorithm, hash.Size())
		}
	} else {
		if n := len(req.Message); n == 0 || n > store.MaxRawSignMessage {
			return nil, fmt.Errorf("sign with KMS key %s: RAW message is %d bytes, must be 1 to %d", req.KeyID, n, store.MaxRawSignMessage)
		}
		h := hash.New()
		h.Write(req.Message)
		digest = h.Sum(nil)
	}
	switch priv := key.priv.(type) {
	case *ecdsa.PrivateKey:
		return ecdsa.SignASN1(rand.Reader, priv, digest)
	case *rsa.PrivateKey:
		return rsa.SignPKCS1v15(nil, priv, hash, digest)
	}
	return nil, fmt.Errorf("sign with KMS key %s: unsupported key type %T", req.KeyID, key.priv)
}

// DescribeKey returns the key's metadata, in any state.
func (k *KMS) DescribeKey(ctx context.Context, keyID string) (store.KeyInfo, error) {
	if err := k.runHook(OpDescribeKey); err != nil {
		return store.KeyInfo{}, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	key, err := k.lookup(keyID, "describe key")
	if err != nil {
		return store.KeyInfo{}, err
	}
	return key.info, nil
}

// KeyPolicy returns the key's policy document, in any key state.
func (k *KMS) KeyPolicy(ctx context.Context, keyID string) (string, error) {
	if err := k.runHook(OpKeyPolicy); err != nil {
		return "", err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	key, err := k.lookup(keyID, "get key policy")
	if err != nil {
		return "", err
	}
	if key.policyHidden {
		return "", fmt.Errorf("get key policy %s: %w: the key policy does not allow kms:GetKeyPolicy", keyID, store.ErrAccessDenied)
	}
	return key.policy, nil
}

// Tag adds tags to a key or changes them, as kms:TagResource does. Custody
// never calls it; tests use it to stand for someone else tagging a key.
func (k *KMS) Tag(keyID string, tags map[string]string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, err := k.lookup(keyID, "tag resource")
	if err != nil {
		return err
	}
	if key.tags == nil {
		key.tags = map[string]string{}
	}
	maps.Copy(key.tags, tags)
	return nil
}

// HidePolicy makes KeyPolicy of the key answer ErrAccessDenied, as KMS
// does for a key whose policy does not let the caller read it.
func (k *KMS) HidePolicy(keyID string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, err := k.lookup(keyID, "hide key policy")
	if err != nil {
		return err
	}
	key.policyHidden = true
	return nil
}

// ListKeysTagged returns the keys carrying tagKey=tagValue, oldest first.
func (k *KMS) ListKeysTagged(ctx context.Context, tagKey, tagValue string) ([]store.KeyInfo, error) {
	if err := k.runHook(OpListKeysTagged); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []store.KeyInfo
	for _, id := range k.ids {
		key := k.keys[id]
		if v, ok := key.tags[tagKey]; ok && v == tagValue {
			info := key.info
			info.Tags = maps.Clone(key.tags)
			out = append(out, info)
		}
	}
	return out, nil
}

// DisableKey disables an enabled key; a disabled one stays so.
func (k *KMS) DisableKey(ctx context.Context, keyID string) error {
	if err := k.runHook(OpDisableKey); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	key, err := k.lookup(keyID, "disable key")
	if err != nil {
		return err
	}
	if key.info.State == store.KeyPendingDeletion {
		return fmt.Errorf("disable key %s: %w: it is pending deletion", keyID, store.ErrKeyState)
	}
	key.info.State = store.KeyDisabled
	return nil
}

// ScheduleKeyDeletion puts the key in PendingDeletion. The window must be
// 7 to 30 days; a key already pending deletion is refused, as by AWS.
func (k *KMS) ScheduleKeyDeletion(ctx context.Context, keyID string, windowDays int) error {
	if err := k.runHook(OpScheduleKeyDeletion); err != nil {
		return err
	}
	if !store.ValidDeletionWindow(windowDays) {
		return fmt.Errorf("schedule key deletion %s: window of %d days is outside %d to %d",
			keyID, windowDays, store.MinDeletionWindow, store.MaxDeletionWindow)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	key, err := k.lookup(keyID, "schedule key deletion")
	if err != nil {
		return err
	}
	if key.info.State == store.KeyPendingDeletion {
		return fmt.Errorf("schedule key deletion %s: %w: it is already pending deletion", keyID, store.ErrKeyState)
	}
	key.info.State = store.KeyPendingDeletion
	return nil
}

// lookup finds a key by id or ARN. Callers hold k.mu.
func (k *KMS) lookup(keyID, op string) (*kmsKey, error) {
	key, ok := k.keys[store.BareKeyID(keyID)]
	if !ok {
		return nil, fmt.Errorf("%s %s: %w", op, keyID, store.ErrKeyNotFound)
	}
	return key, nil
}

// usable finds an enabled key. Callers hold k.mu.
func (k *KMS) usable(keyID, op string) (*kmsKey, error) {
	key, err := k.lookup(keyID, op)
	if err != nil {
		return nil, err
	}
	if key.info.State != store.KeyEnabled {
		return nil, fmt.Errorf("%s %s: %w: it is %s", op, keyID, store.ErrKeyState, key.info.State)
	}
	return key, nil
}

// newUUID returns a random (version 4) UUID, the form of KMS key ids.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
