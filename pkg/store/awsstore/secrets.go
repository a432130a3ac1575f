package awsstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/internal/awserr"
)

// Secrets is one Secrets Manager secret. Errors name the secret, the version
// and the stage, never a secret value.
type Secrets struct {
	client *secretsmanager.Client
	id     string
}

var _ store.Secrets = (*Secrets)(nil)

// NewSecrets returns the secret secretID (a name or an ARN) reached through client.
func NewSecrets(client *secretsmanager.Client, secretID string) *Secrets {
	return &Secrets{client: client, id: secretID}
}

// Describe returns the secret's staging labels and tags from one DescribeSecret.
func (s *Secrets) Describe(ctx context.Context) (store.SecretMeta, error) {
	out, err := s.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: &s.id})
	if err != nil {
		return store.SecretMeta{}, fmt.Errorf("describe secret %s: %w", s.id, mapNotFound(err))
	}
	meta := store.SecretMeta{Stages: map[string]string{}, Tags: map[string]string{}, RotationEnabled: aws.ToBool(out.RotationEnabled)}
	// Sorted so that the duplicate check below reports the same pair every time.
	for _, version := range slices.Sorted(maps.Keys(out.VersionIdsToStages)) {
		for _, stage := range out.VersionIdsToStages[version] {
			// AWS keeps a label on one version only; an emulator that leaves
			// it on two would make the answer depend on map order.
			if other, dup := meta.Stages[stage]; dup {
				return store.SecretMeta{}, fmt.Errorf("describe secret %s: stage %s is on versions %s and %s", s.id, stage, other, version)
			}
			meta.Stages[stage] = version
		}
	}
	for _, tag := range out.Tags {
		meta.Tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	return meta, nil
}

// GetVersion returns the value of versionID, or store.ErrNotFound if the
// version does not exist or holds no value (RotateSecret may have made it).
func (s *Secrets) GetVersion(ctx context.Context, versionID string) ([]byte, error) {
	// No VersionStage: asking for a version by id and a stage it lacks is an
	// InvalidRequestException, which is not "not found".
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId:  &s.id,
		VersionId: &versionID,
	})
	if err != nil {
		return nil, fmt.Errorf("get secret %s version %s: %w", s.id, versionID, mapNotFound(err))
	}
	value, ok := secretValue(out)
	if !ok {
		return nil, fmt.Errorf("get secret %s version %s: version holds no value: %w", s.id, versionID, store.ErrNotFound)
	}
	return value, nil
}

// GetStage returns the version id and value carrying stage. The stage is
// always passed explicitly: moto answers a stale value when it is left to
// default to AWSCURRENT, and the signer's IAM condition requires it.
func (s *Secrets) GetStage(ctx context.Context, stage string) (string, []byte, error) {
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId:     &s.id,
		VersionStage: &stage,
	})
	if err != nil {
		return "", nil, fmt.Errorf("get secret %s stage %s: %w", s.id, stage, mapNotFound(err))
	}
	versionID := aws.ToString(out.VersionId)
	value, ok := secretValue(out)
	if !ok {
		return "", nil, fmt.Errorf("get secret %s stage %s: version %s holds no value: %w", s.id, stage, versionID, store.ErrNotFound)
	}
	return versionID, value, nil
}

// PutVersion creates version versionID with value, labelled stages. The
// version id is the ClientRequestToken, which makes a retry idempotent
// (AWS requires 32 to 64 characters).
func (s *Secrets) PutVersion(ctx context.Context, versionID string, value []byte, stages []string) error {
	if len(stages) == 0 {
		// Without VersionStages Secrets Manager would move AWSCURRENT.
		return fmt.Errorf("put secret %s version %s: no stages given", s.id, versionID)
	}
	in := &secretsmanager.PutSecretValueInput{
		SecretId:           &s.id,
		ClientRequestToken: &versionID,
		VersionStages:      stages,
	}
	// Key records are JSON and go in SecretString. Anything that is not
	// UTF-8 would be mangled on the way into a JSON string, so it goes in
	// SecretBinary instead.
	if utf8.Valid(value) {
		in.SecretString = aws.String(string(value))
	} else {
		in.SecretBinary = value
	}
	if _, err := s.client.PutSecretValue(ctx, in); err != nil {
		var exists *types.ResourceExistsException
		if errors.As(err, &exists) {
			err = awserr.As(store.ErrVersionExists, err)
		}
		return fmt.Errorf("put secret %s version %s: %w", s.id, versionID, mapNotFound(err))
	}
	return nil
}

// MoveStage moves stage to toVersion and off fromVersion; toVersion ""
// removes it from fromVersion only. RemoveFromVersionId is always sent when
// fromVersion is known: AWS refuses to move a label that sits on another
// version without it, and moto would leave the label on both.
func (s *Secrets) MoveStage(ctx context.Context, stage, toVersion, fromVersion string) error {
	if toVersion == "" && fromVersion == "" {
		return fmt.Errorf("move secret %s stage %s: no version to move it to or from", s.id, stage)
	}
	in := &secretsmanager.UpdateSecretVersionStageInput{SecretId: &s.id, VersionStage: &stage}
	if toVersion != "" {
		in.MoveToVersionId = &toVersion
	}
	if fromVersion != "" {
		in.RemoveFromVersionId = &fromVersion
	}
	if _, err := s.client.UpdateSecretVersionStage(ctx, in); err != nil {
		return fmt.Errorf("move secret %s stage %s from version %q to %q: %w", s.id, stage, fromVersion, toVersion, mapNotFound(err))
	}
	return nil
}

// Tag sets tags on the secret, overwriting the values of existing keys.
func (s *Secrets) Tag(ctx context.Context, tags map[string]string) error {
	if len(tags) == 0 {
		return nil
	}
	list := make([]types.Tag, 0, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		list = append(list, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	if _, err := s.client.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: &s.id, Tags: list}); err != nil {
		return fmt.Errorf("tag secret %s: %w", s.id, mapNotFound(err))
	}
	return nil
}

// Untag removes tag keys from the secret; keys it does not have are ignored.
func (s *Secrets) Untag(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	if _, err := s.client.UntagResource(ctx, &secretsmanager.UntagResourceInput{SecretId: &s.id, TagKeys: keys}); err != nil {
		return fmt.Errorf("untag secret %s: %w", s.id, mapNotFound(err))
	}
	return nil
}

// mapNotFound marks Secrets Manager's ResourceNotFoundException (no such
// secret, version or stage) as store.ErrNotFound.
func mapNotFound(err error) error {
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return awserr.As(store.ErrNotFound, err)
	}
	return err
}

// secretValue returns whichever of SecretString and SecretBinary is set.
func secretValue(out *secretsmanager.GetSecretValueOutput) ([]byte, bool) {
	switch {
	case out.SecretString != nil:
		return []byte(*out.SecretString), true
	case out.SecretBinary != nil:
		return out.SecretBinary, true
	}
	return nil, false
}
