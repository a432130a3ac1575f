package awsstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/internal/awserr"
)

// KMS is store.KMS over AWS KMS.
type KMS struct {
	client *kms.Client
}

var _ store.KMS = (*KMS)(nil)

// NewKMSClient returns a KMS client for cfg with the SDK's default retryer.
// (Sign opts out of its throttling retries per call; see KMS.Sign.)
func NewKMSClient(cfg aws.Config) *kms.Client {
	return kms.NewFromConfig(cfg)
}

// NewKMS returns the KMS adapter over client.
func NewKMS(client *kms.Client) *KMS {
	return &KMS{client: client}
}

// CreateKey makes an asymmetric SIGN_VERIFY key, with its tags and policy
// in the request itself.
func (k *KMS) CreateKey(ctx context.Context, req store.CreateKeyRequest) (store.KeyInfo, error) {
	in := &kms.CreateKeyInput{
		KeySpec:                        types.KeySpec(req.Spec),
		KeyUsage:                       types.KeyUsageTypeSignVerify,
		Origin:                         types.OriginTypeAwsKms,
		MultiRegion:                    aws.Bool(false),
		Description:                    aws.String(req.Description),
		BypassPolicyLockoutSafetyCheck: req.BypassPolicyLockoutSafetyCheck,
	}
	if req.Policy != "" {
		in.Policy = aws.String(req.Policy)
	}
	for key, value := range req.Tags {
		in.Tags = append(in.Tags, types.Tag{TagKey: aws.String(key), TagValue: aws.String(value)})
	}
	out, err := k.client.CreateKey(ctx, in)
	if err != nil {
		return store.KeyInfo{}, fmt.Errorf("create %s KMS key: %w", req.Spec, mapKMSError(err))
	}
	return keyInfo(out.KeyMetadata), nil
}

// KeyPolicy returns the key's policy (the only one a KMS key has, named
// "default"). It sends the bare key id, as DisableKey does.
func (k *KMS) KeyPolicy(ctx context.Context, keyID string) (string, error) {
	id := store.BareKeyID(keyID)
	out, err := k.client.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: &id, PolicyName: aws.String("default")})
	if err != nil {
		return "", fmt.Errorf("get the policy of KMS key %s: %w", keyID, mapKMSError(err))
	}
	return aws.ToString(out.Policy), nil
}

// GetPublicKey returns the key's DER SubjectPublicKeyInfo.
func (k *KMS) GetPublicKey(ctx context.Context, keyID string) ([]byte, error) {
	out, err := k.client.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: &keyID})
	if err != nil {
		return nil, fmt.Errorf("get public key of KMS key %s: %w", keyID, mapKMSError(err))
	}
	return out.PublicKey, nil
}

// Sign signs req.Message (RAW) or the digest in it. The SDK's retryer still
// retries connection errors and 5xx answers, but not throttling: the
// kmscustody signer retries that itself, within the caller's deadline, and
// two nested retry loops would multiply the calls made into a throttled
// quota.
func (k *KMS) Sign(ctx context.Context, req store.SignRequest) ([]byte, error) {
	messageType := types.MessageTypeRaw
	if req.Digest {
		messageType = types.MessageTypeDigest
	}
	out, err := k.client.Sign(ctx, &kms.SignInput{
		KeyId:            &req.KeyID,
		Message:          req.Message,
		MessageType:      messageType,
		SigningAlgorithm: types.SigningAlgorithmSpec(req.Algorithm),
	}, withoutThrottleRetries)
	if err != nil {
		return nil, fmt.Errorf("sign with KMS key %s: %w", req.KeyID, mapKMSError(err))
	}
	return out.Signature, nil
}

// DescribeKey returns the key's metadata.
func (k *KMS) DescribeKey(ctx context.Context, keyID string) (store.KeyInfo, error) {
	out, err := k.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: &keyID})
	if err != nil {
		return store.KeyInfo{}, fmt.Errorf("describe KMS key %s: %w", keyID, mapKMSError(err))
	}
	return keyInfo(out.KeyMetadata), nil
}

// ListKeysTagged scans the account's keys in the Region for the tag. KMS
// has no tag filter, so this is one ListResourceTags per key (and one
// DescribeKey per match); it runs in rotations and cleanups, never on the
// signing path.
func (k *KMS) ListKeysTagged(ctx context.Context, tagKey, tagValue string) ([]store.KeyInfo, error) {
	var found []store.KeyInfo
	pages := kms.NewListKeysPaginator(k.client, &kms.ListKeysInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list KMS keys: %w", mapKMSError(err))
		}
		for _, entry := range page.Keys {
			id := aws.ToString(entry.KeyId)
			tags, err := k.tags(ctx, id)
			if errors.Is(err, store.ErrKeyNotFound) || errors.Is(err, store.ErrAccessDenied) {
				// Deleted since the listing, or a key this role may not read
				// (tag-scoped IAM): either way not one of ours to manage.
				continue
			}
			if err != nil {
				return nil, err
			}
			if v, ok := tags[tagKey]; !ok || v != tagValue {
				continue
			}
			info, err := k.DescribeKey(ctx, id)
			if errors.Is(err, store.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			info.Tags = tags
			found = append(found, info)
		}
	}
	return found, nil
}

func (k *KMS) tags(ctx context.Context, keyID string) (map[string]string, error) {
	tags := map[string]string{}
	pages := kms.NewListResourceTagsPaginator(k.client, &kms.ListResourceTagsInput{KeyId: &keyID})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list tags of KMS key %s: %w", keyID, mapKMSError(err))
		}
		for _, t := range page.Tags {
			tags[aws.ToString(t.TagKey)] = aws.ToString(t.TagValue)
		}
	}
	return tags, nil
}

// DisableKey disables the key. It sends the bare key id: moto answers HTTP
// 500 to an ARN here (AWS accepts both).
func (k *KMS) DisableKey(ctx context.Context, keyID string) error {
	id := store.BareKeyID(keyID)
	if _, err := k.client.DisableKey(ctx, &kms.DisableKeyInput{KeyId: &id}); err != nil {
		return fmt.Errorf("disable KMS key %s: %w", keyID, mapKMSError(err))
	}
	return nil
}

// ScheduleKeyDeletion schedules the key's deletion after windowDays. The
// window is checked here because moto silently ignores one out of range;
// the key is sent as a bare id, as for DisableKey.
func (k *KMS) ScheduleKeyDeletion(ctx context.Context, keyID string, windowDays int) error {
	if !store.ValidDeletionWindow(windowDays) {
		return fmt.Errorf("schedule deletion of KMS key %s: window of %d days is outside %d to %d",
			keyID, windowDays, store.MinDeletionWindow, store.MaxDeletionWindow)
	}
	id := store.BareKeyID(keyID)
	_, err := k.client.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{
		KeyId:               &id,
		PendingWindowInDays: aws.Int32(int32(windowDays)),
	})
	if err != nil {
		return fmt.Errorf("schedule deletion of KMS key %s: %w", keyID, mapKMSError(err))
	}
	return nil
}

func keyInfo(m *types.KeyMetadata) store.KeyInfo {
	if m == nil {
		return store.KeyInfo{}
	}
	return store.KeyInfo{
		ID:      aws.ToString(m.KeyId),
		ARN:     aws.ToString(m.Arn),
		State:   string(m.KeyState),
		Created: aws.ToTime(m.CreationDate),
		Spec:    store.KeySpec(m.KeySpec),
	}
}

// mapKMSError wraps err with the store sentinel it stands for, keeping
// the AWS error in the chain.
func mapKMSError(err error) error {
	var (
		notFound *types.NotFoundException
		disabled *types.DisabledException
		invalid  *types.KMSInvalidStateException
	)
	switch {
	case isThrottle(err):
		return awserr.As(store.ErrThrottled, err)
	case errors.As(err, &notFound):
		return awserr.As(store.ErrKeyNotFound, err)
	case errors.As(err, &disabled), errors.As(err, &invalid):
		return awserr.As(store.ErrKeyState, err)
	case awserr.Code(err) == "AccessDeniedException":
		return awserr.As(store.ErrAccessDenied, err)
	}
	return err
}

// isThrottle: KMS answers ThrottlingException when a request-rate quota is
// exceeded. (Its LimitExceededException is a resource quota, such as keys
// per account, that no retry fixes.)
func isThrottle(err error) bool {
	return awserr.Code(err) == "ThrottlingException"
}

// withoutThrottleRetries makes the client's retryer pass throttling errors
// through for one call.
func withoutThrottleRetries(o *kms.Options) {
	if r, ok := o.Retryer.(aws.RetryerV2); ok {
		o.Retryer = noThrottleRetry{r}
	}
}

type noThrottleRetry struct{ aws.RetryerV2 }

func (r noThrottleRetry) IsErrorRetryable(err error) bool {
	return !isThrottle(err) && r.RetryerV2.IsErrorRetryable(err)
}
