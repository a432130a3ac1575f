// Package store declares the ports through which the issuer uses AWS, as
// small interfaces: Secrets (a secret with versions, staging labels and
// tags), Objects (one object in a bucket) and KMS (asymmetric KMS keys, for
// KMS custody), with their types and the sentinel errors every
// implementation maps its failures onto. The AWS adapters live in
// store/awsstore (Secrets Manager, KMS) and store/s3store (S3, apart so
// that the signer does not link it); their in-memory twins in
// store/memstore; and store/storetest holds the contract suites both must
// pass.
package store

import (
	"context"
	"errors"
)

// Staging labels the issuer reads and writes.
const (
	StageCurrent = "AWSCURRENT"
	StagePending = "AWSPENDING"
	StageNext    = "NEXT"
)

var (
	// ErrNotFound: the secret version, stage or object does not exist, or
	// the version exists but holds no value.
	ErrNotFound = errors.New("not found")
	// ErrVersionExists: a version with this id already holds a different value.
	// Secret versions are immutable; the caller should read what is there.
	ErrVersionExists = errors.New("secret version already exists with a different value")
	// ErrPrecondition: a conditional object write lost a race (the object
	// changed, or appeared, since it was read).
	ErrPrecondition = errors.New("precondition failed")
)

// SecretMeta is what DescribeSecret tells about a secret in one call.
type SecretMeta struct {
	// Stages maps each staging label to the version id that carries it.
	Stages map[string]string
	// Tags are the secret's tags.
	Tags map[string]string
	// RotationEnabled: the secret has a rotation configured (RotateSecret
	// with a rotation function has been called and not cancelled). Rotation
	// steps are refused without it.
	RotationEnabled bool
}

// Secrets is one Secrets Manager secret.
type Secrets interface {
	// Describe returns the secret's staging labels and tags.
	Describe(ctx context.Context) (SecretMeta, error)
	// GetVersion returns the value of a version, or ErrNotFound.
	GetVersion(ctx context.Context, versionID string) ([]byte, error)
	// GetStage returns the version id and value carrying a staging label, or
	// ErrNotFound.
	GetStage(ctx context.Context, stage string) (versionID string, value []byte, err error)
	// PutVersion creates a version with the given id, value and labels
	// (labels move from any version that had them). Repeating the call with
	// the same value is a no-op; a different value gives ErrVersionExists.
	// stages must not be empty (Secrets Manager would move AWSCURRENT).
	PutVersion(ctx context.Context, versionID string, value []byte, stages []string) error
	// MoveStage moves a label to toVersion, taking it off fromVersion.
	// toVersion "" removes the label from fromVersion only.
	MoveStage(ctx context.Context, stage, toVersion, fromVersion string) error
	// Tag sets tags on the secret; Untag removes them (absent keys are fine).
	Tag(ctx context.Context, tags map[string]string) error
	Untag(ctx context.Context, keys []string) error
}

// Object is the stored copy of one object.
type Object struct {
	Body         []byte
	ETag         string
	ContentType  string
	CacheControl string
}

// PutCondition makes a write conditional on what the writer last read.
type PutCondition struct {
	// IfMatch: write only if the object's ETag is this.
	IfMatch string
	// IfNoneMatch: write only if no object exists.
	IfNoneMatch bool
}

// Objects is one object in a bucket (the published key set).
type Objects interface {
	// Get returns the object, or ErrNotFound.
	Get(ctx context.Context) (Object, error)
	// Put writes the object if cond holds, else ErrPrecondition. It returns
	// the new ETag.
	Put(ctx context.Context, body []byte, contentType, cacheControl string, cond PutCondition) (etag string, err error)
}
