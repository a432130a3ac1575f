package store

import (
	"context"
	"errors"
	"strings"
	"time"
)

// KeySpec is a KMS key spec, spelled as KMS spells it.
type KeySpec string

const (
	KeySpecP256    KeySpec = "ECC_NIST_P256"
	KeySpecP384    KeySpec = "ECC_NIST_P384"
	KeySpecRSA2048 KeySpec = "RSA_2048"
)

// SigningAlgorithm is a KMS signing algorithm, spelled as KMS spells it.
type SigningAlgorithm string

const (
	ECDSASHA256    SigningAlgorithm = "ECDSA_SHA_256"
	ECDSASHA384    SigningAlgorithm = "ECDSA_SHA_384"
	RSAPKCS1SHA256 SigningAlgorithm = "RSASSA_PKCS1_V1_5_SHA_256"
)

// KMS key states the issuer acts on (KMS has more; they are left alone).
const (
	KeyEnabled         = "Enabled"
	KeyDisabled        = "Disabled"
	KeyPendingDeletion = "PendingDeletion"
)

// MaxRawSignMessage is the largest message KMS signs with MessageType RAW.
const MaxRawSignMessage = 4096

// KMS's bounds on the ScheduleKeyDeletion window, in days.
const (
	MinDeletionWindow = 7
	MaxDeletionWindow = 30
)

// ValidDeletionWindow reports whether days is a window KMS accepts. moto
// silently ignores a window outside it, so implementations of KMS check it
// themselves rather than let a test pass that AWS would fail.
func ValidDeletionWindow(days int) bool {
	return days >= MinDeletionWindow && days <= MaxDeletionWindow
}

var (
	// ErrKeyNotFound: no such KMS key.
	ErrKeyNotFound = errors.New("KMS key not found")
	// ErrKeyState: the key's state forbids the operation (a disabled or
	// pending-deletion key cannot sign).
	ErrKeyState = errors.New("KMS key state forbids the operation")
	// ErrThrottled: KMS refused the request for its request-rate quota
	// (ThrottlingException). Worth retrying after a pause; nothing else is.
	ErrThrottled = errors.New("KMS request throttled")
	// ErrAccessDenied: the key's policy or the caller's IAM policy does not
	// allow the operation (AccessDeniedException). For a key of someone
	// else's, that is the expected answer.
	ErrAccessDenied = errors.New("KMS access denied")
)

// KeyInfo describes one KMS key.
type KeyInfo struct {
	ID      string // the bare key id (a UUID)
	ARN     string
	State   string // Enabled, Disabled, PendingDeletion, ...
	Created time.Time
	Spec    KeySpec
	Tags    map[string]string // filled by ListKeysTagged only
}

// CreateKeyRequest is one kms:CreateKey call for an asymmetric SIGN_VERIFY
// key made in KMS (origin AWS_KMS), in one Region.
type CreateKeyRequest struct {
	Spec        KeySpec
	Description string
	// Policy is the key policy document (JSON); empty means KMS's default
	// key policy, which lets IAM policies in the account grant any use.
	Policy string
	// BypassPolicyLockoutSafetyCheck skips KMS's check that Policy lets the
	// caller change the policy later. Set it only with a policy that leaves
	// administration to someone else (the account), never to nobody.
	BypassPolicyLockoutSafetyCheck bool
	// Tags are given in the request itself, so that an IAM condition on
	// aws:RequestTag can allow it and the key never exists untagged.
	Tags map[string]string
}

// SignRequest is one kms:Sign call.
type SignRequest struct {
	KeyID     string // id or ARN
	Algorithm SigningAlgorithm
	Message   []byte
	// Digest: Message is already the hash (MessageType DIGEST), for
	// messages above MaxRawSignMessage. RAW otherwise.
	Digest bool
}

// KMS is the part of AWS KMS that KMS custody uses. Implementations map KMS
// errors onto ErrKeyNotFound, ErrKeyState, ErrAccessDenied and
// ErrThrottled, and must not retry throttling of Sign themselves (the signer
// does, within its deadline).
type KMS interface {
	// CreateKey makes an asymmetric SIGN_VERIFY key.
	CreateKey(ctx context.Context, req CreateKeyRequest) (KeyInfo, error)
	// GetPublicKey returns the DER SubjectPublicKeyInfo of the key.
	GetPublicKey(ctx context.Context, keyID string) ([]byte, error)
	// Sign returns the signature as KMS gives it: ASN.1 DER for ECDSA,
	// PKCS #1 v1.5 bytes for RSA.
	Sign(ctx context.Context, req SignRequest) ([]byte, error)
	// DescribeKey returns the key's id, ARN, state, spec and creation date.
	DescribeKey(ctx context.Context, keyID string) (KeyInfo, error)
	// KeyPolicy returns the key's policy document (kms:GetKeyPolicy) as KMS
	// holds it, in any key state.
	KeyPolicy(ctx context.Context, keyID string) (string, error)
	// ListKeysTagged returns every key of the account and Region carrying
	// tag key=value, in any state, with its tags.
	ListKeysTagged(ctx context.Context, key, value string) ([]KeyInfo, error)
	// DisableKey disables the key (a no-op for a disabled one).
	DisableKey(ctx context.Context, keyID string) error
	// ScheduleKeyDeletion deletes the key after windowDays
	// (MinDeletionWindow to MaxDeletionWindow).
	ScheduleKeyDeletion(ctx context.Context, keyID string, windowDays int) error
}

// BareKeyID returns the key id of a key ARN
// (arn:aws:kms:REGION:ACCOUNT:key/ID), and anything else unchanged.
// moto answers HTTP 500 to DisableKey and ScheduleKeyDeletion given an ARN,
// and a bare id also compares equal whichever form a record holds.
func BareKeyID(ref string) string {
	if strings.HasPrefix(ref, "arn:") {
		if i := strings.Index(ref, ":key/"); i >= 0 {
			return ref[i+len(":key/"):]
		}
	}
	return ref
}
