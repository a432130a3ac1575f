package awslite

import (
	"context"
	"errors"
	"fmt"

	"jwks-issuer/pkg/store"
)

// Secret reads one Secrets Manager secret (token.CurrentSecret). Errors name
// the secret and the stage, never a value.
type Secret struct {
	client *Client
	id     string
}

// NewSecret reads the secret id (a name or an ARN) through client, which
// must be a ServiceSecretsManager client.
func NewSecret(client *Client, id string) *Secret { return &Secret{client: client, id: id} }

// GetStage returns the version id and value carrying stage, or an error
// wrapping store.ErrNotFound when there is no such secret, stage or value.
// The stage is always named: the signer's IAM condition requires it.
func (s *Secret) GetStage(ctx context.Context, stage string) (string, []byte, error) {
	var out struct {
		VersionID    string  `json:"VersionId"`
		SecretString *string `json:"SecretString"`
		SecretBinary []byte  `json:"SecretBinary"`
	}
	in := struct {
		SecretID     string `json:"SecretId"`
		VersionStage string `json:"VersionStage"`
	}{s.id, stage}
	if err := s.client.call(ctx, "GetSecretValue", in, &out, nil); err != nil {
		if Code(err) == "ResourceNotFoundException" {
			err = fmt.Errorf("%w: %w", store.ErrNotFound, err)
		}
		return "", nil, fmt.Errorf("get secret %s stage %s: %w", s.id, stage, err)
	}
	switch {
	case out.SecretString != nil:
		return out.VersionID, []byte(*out.SecretString), nil
	case out.SecretBinary != nil:
		return out.VersionID, out.SecretBinary, nil
	}
	return "", nil, fmt.Errorf("get secret %s stage %s: version %s holds no value: %w", s.id, stage, out.VersionID, store.ErrNotFound)
}

// Parameter reads one SecureString parameter (token.SigningParameter).
// Errors name the parameter, never its value.
type Parameter struct {
	client *Client
	name   string
}

// NewParameter reads the parameter name through client, which must be a
// ServiceSSM client.
func NewParameter(client *Client, name string) *Parameter {
	return &Parameter{client: client, name: name}
}

// Get returns the decrypted value, or an error wrapping store.ErrNotFound.
func (p *Parameter) Get(ctx context.Context) ([]byte, error) {
	var out struct {
		Parameter struct {
			Value string `json:"Value"`
		} `json:"Parameter"`
	}
	in := struct {
		Name           string `json:"Name"`
		WithDecryption bool   `json:"WithDecryption"`
	}{p.name, true}
	if err := p.client.call(ctx, "GetParameter", in, &out, nil); err != nil {
		if Code(err) == "ParameterNotFound" {
			err = fmt.Errorf("%w: %w", store.ErrNotFound, err)
		}
		return nil, fmt.Errorf("get parameter %s: %w", p.name, err)
	}
	return []byte(out.Parameter.Value), nil
}

// KMS is the store.KMS of the signer: Sign, as KMS custody signs with it.
// The signer does nothing else with KMS; the other methods fail.
type KMS struct {
	client *Client
}

var _ store.KMS = (*KMS)(nil)

// NewKMS signs through client, which must be a ServiceKMS client.
func NewKMS(client *Client) *KMS { return &KMS{client: client} }

// Sign signs req.Message (MessageType RAW) or the digest in it (DIGEST).
// Throttling is not retried here: kmscustody's signer retries it within the
// invocation's deadline, and two nested retry loops would multiply the
// calls made into a throttled quota. Connection errors and 5xx answers are
// retried as the SDK retries them.
func (k *KMS) Sign(ctx context.Context, req store.SignRequest) ([]byte, error) {
	in := struct {
		KeyID            string `json:"KeyId"`
		Message          []byte `json:"Message"`
		MessageType      string `json:"MessageType"`
		SigningAlgorithm string `json:"SigningAlgorithm"`
	}{req.KeyID, req.Message, "RAW", string(req.Algorithm)}
	if req.Digest {
		in.MessageType = "DIGEST"
	}
	var out struct {
		Signature []byte `json:"Signature"`
	}
	noThrottle := func(err error) bool { return Code(err) != "ThrottlingException" }
	if err := k.client.call(ctx, "Sign", in, &out, noThrottle); err != nil {
		return nil, fmt.Errorf("sign with KMS key %s: %w", req.KeyID, kmsError(err))
	}
	return out.Signature, nil
}

// kmsError wraps err with the store sentinel it stands for, as the
// rotator's KMS adapter does.
func kmsError(err error) error {
	switch Code(err) {
	case "ThrottlingException":
		return fmt.Errorf("%w: %w", store.ErrThrottled, err)
	case "NotFoundException":
		return fmt.Errorf("%w: %w", store.ErrKeyNotFound, err)
	case "DisabledException", "KMSInvalidStateException":
		return fmt.Errorf("%w: %w", store.ErrKeyState, err)
	case "AccessDeniedException":
		return fmt.Errorf("%w: %w", store.ErrAccessDenied, err)
	}
	return err
}

// errSignOnly: the signer's KMS does nothing but sign.
var errSignOnly = errors.New("the signer's KMS client only signs")

func (k *KMS) CreateKey(context.Context, store.CreateKeyRequest) (store.KeyInfo, error) {
	return store.KeyInfo{}, errSignOnly
}
func (k *KMS) GetPublicKey(context.Context, string) ([]byte, error) { return nil, errSignOnly }
func (k *KMS) DescribeKey(context.Context, string) (store.KeyInfo, error) {
	return store.KeyInfo{}, errSignOnly
}
func (k *KMS) KeyPolicy(context.Context, string) (string, error)      { return "", errSignOnly }
func (k *KMS) DisableKey(context.Context, string) error               { return errSignOnly }
func (k *KMS) ScheduleKeyDeletion(context.Context, string, int) error { return errSignOnly }
func (k *KMS) ListKeysTagged(context.Context, string, string) ([]store.KeyInfo, error) {
	return nil, errSignOnly
}
