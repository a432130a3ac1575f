package memstore

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"jwks-issuer/pkg/store"
)

// AWS limits the fake enforces, so that code that would break against AWS
// breaks in unit tests too.
const (
	minVersionIDLen = 32 // ClientRequestToken: 32 to 64 characters
	maxVersionIDLen = 64
	maxTags         = 50
	maxTagKeyLen    = 128
	maxTagValueLen  = 256
	stagePrevious   = "AWSPREVIOUS"
)

// Secrets is an in-memory Secrets Manager secret. The zero value is not
// usable; call NewSecrets.
type Secrets struct {
	hooked

	mu sync.Mutex
	// values maps version id to value; a nil value is a version without one
	// (as RotateSecret makes before calling the rotation function).
	values map[string][]byte
	stages map[string]string // label → version id
	tags   map[string]string
	// rotating: rotation is configured (BeginRotation was called), as
	// DescribeSecret's RotationEnabled.
	rotating bool
}

var _ store.Secrets = (*Secrets)(nil)

// NewSecrets returns a secret with no versions and no tags. Seed it with
// PutVersion, e.g. a "{}" version labelled AWSCURRENT as CreateSecret makes.
func NewSecrets() *Secrets {
	return &Secrets{
		values: map[string][]byte{},
		stages: map[string]string{},
		tags:   map[string]string{},
	}
}

// Describe returns copies of the labels and tags.
func (s *Secrets) Describe(ctx context.Context) (store.SecretMeta, error) {
	if err := s.runHook(OpDescribe); err != nil {
		return store.SecretMeta{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return store.SecretMeta{Stages: maps.Clone(s.stages), Tags: maps.Clone(s.tags), RotationEnabled: s.rotating}, nil
}

// GetVersion returns a copy of the version's value, or store.ErrNotFound if
// it does not exist or holds no value.
func (s *Secrets) GetVersion(ctx context.Context, versionID string) ([]byte, error) {
	if err := s.runHook(OpGetVersion); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	value := s.values[versionID]
	if value == nil {
		return nil, fmt.Errorf("get secret version %s: %w", versionID, store.ErrNotFound)
	}
	return bytes.Clone(value), nil
}

// GetStage returns the version carrying stage and a copy of its value.
func (s *Secrets) GetStage(ctx context.Context, stage string) (string, []byte, error) {
	if err := s.runHook(OpGetStage); err != nil {
		return "", nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	versionID, ok := s.stages[stage]
	if !ok || s.values[versionID] == nil {
		return "", nil, fmt.Errorf("get secret stage %s: %w", stage, store.ErrNotFound)
	}
	return versionID, bytes.Clone(s.values[versionID]), nil
}

// PutVersion behaves as PutSecretValue with ClientRequestToken = versionID:
// a repeat with the same value does nothing (not even its labels), a
// different value is store.ErrVersionExists, and a version without a value
// gets this one. The labels move from whichever versions had them, and a
// moved AWSCURRENT leaves AWSPREVIOUS on the version it came from.
func (s *Secrets) PutVersion(ctx context.Context, versionID string, value []byte, stages []string) error {
	if err := s.runHook(OpPutVersion); err != nil {
		return err
	}
	if len(stages) == 0 {
		return fmt.Errorf("put secret version %s: no stages given", versionID)
	}
	if n := len(versionID); n < minVersionIDLen || n > maxVersionIDLen {
		return fmt.Errorf("put secret version %s: ClientRequestToken must be %d to %d characters, not %d",
			versionID, minVersionIDLen, maxVersionIDLen, n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.values[versionID]; old != nil {
		if bytes.Equal(old, value) {
			return nil
		}
		return fmt.Errorf("put secret version %s: %w", versionID, store.ErrVersionExists)
	}
	// A non-nil empty slice, so that an empty value still counts as a value.
	s.values[versionID] = append([]byte{}, value...)
	for _, stage := range stages {
		s.attach(stage, versionID)
	}
	return nil
}

// MoveStage behaves as UpdateSecretVersionStage. Like AWS it refuses to
// take a label off a version that does not carry it, to move a label that
// sits on another version without naming that version, and to remove
// AWSCURRENT without moving it.
func (s *Secrets) MoveStage(ctx context.Context, stage, toVersion, fromVersion string) error {
	if err := s.runHook(OpMoveStage); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	holder, held := s.stages[stage]
	switch {
	case toVersion == "" && fromVersion == "":
		return fmt.Errorf("move secret stage %s: no version to move it to or from", stage)
	case toVersion != "" && !s.exists(toVersion):
		return fmt.Errorf("move secret stage %s: no version %s", stage, toVersion)
	case fromVersion != "" && holder != fromVersion:
		return fmt.Errorf("move secret stage %s: it is on version %q, not %s", stage, holder, fromVersion)
	case fromVersion == "" && held && holder != toVersion:
		return fmt.Errorf("move secret stage %s: it is on version %s, which must be named to move it", stage, holder)
	case toVersion == "" && stage == store.StageCurrent:
		return fmt.Errorf("move secret stage %s: it can only be moved to another version, not removed", stage)
	}
	if toVersion == "" {
		delete(s.stages, stage)
		return nil
	}
	s.attach(stage, toVersion)
	return nil
}

// Tag sets tags, within AWS's limits on their number and size.
func (s *Secrets) Tag(ctx context.Context, tags map[string]string) error {
	if err := s.runHook(OpTag); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	merged := maps.Clone(s.tags)
	for k, v := range tags {
		if k == "" || len(k) > maxTagKeyLen || len(v) > maxTagValueLen {
			return fmt.Errorf("tag secret: tag %q is outside AWS's size limits", k)
		}
		merged[k] = v
	}
	if len(merged) > maxTags {
		return fmt.Errorf("tag secret: %d tags, AWS allows %d", len(merged), maxTags)
	}
	s.tags = merged
	return nil
}

// Untag removes tag keys; absent keys are fine.
func (s *Secrets) Untag(ctx context.Context, keys []string) error {
	if err := s.runHook(OpUntag); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		delete(s.tags, k)
	}
	return nil
}

// BeginRotation does what RotateSecret does before it calls the rotation
// function: it refuses while another rotation is in progress (AWSPENDING on
// a version other than AWSCURRENT's), then makes a version under token with
// no value, labelled AWSPENDING, and marks rotation enabled. It calls no
// hook: it seeds state.
func (s *Secrets) BeginRotation(token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pending, ok := s.stages[store.StagePending]; ok && pending != s.stages[store.StageCurrent] {
		return fmt.Errorf("rotate secret: a previous rotation isn't complete (AWSPENDING is on version %s)", pending)
	}
	if s.exists(token) {
		return fmt.Errorf("rotate secret: version %s already exists", token)
	}
	s.values[token] = nil
	s.stages[store.StagePending] = token
	s.rotating = true
	return nil
}

// Versions returns the ids of all versions, labelled or not, sorted.
func (s *Secrets) Versions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.values))
}

// exists reports whether a version exists, with or without a value.
func (s *Secrets) exists(versionID string) bool {
	_, ok := s.values[versionID]
	return ok
}

// attach puts stage on versionID, taking it off any other version; moving
// AWSCURRENT moves AWSPREVIOUS onto the version that lost it, as AWS does.
func (s *Secrets) attach(stage, versionID string) {
	old, held := s.stages[stage]
	s.stages[stage] = versionID
	if stage == store.StageCurrent && held && old != versionID {
		s.stages[stagePrevious] = old
	}
}
