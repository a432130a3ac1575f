package awsstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"jwks-issuer/pkg/store"
)

// NewSSMClient returns a Parameter Store client for cfg.
func NewSSMClient(cfg aws.Config) *ssm.Client { return ssm.NewFromConfig(cfg) }

// Parameter is one SecureString parameter. Errors name the parameter, never
// its value.
type Parameter struct {
	client *ssm.Client
	name   string
}

var _ store.Parameter = (*Parameter)(nil)

// NewParameter returns the parameter name reached through client.
func NewParameter(client *ssm.Client, name string) *Parameter {
	return &Parameter{client: client, name: name}
}

// Get returns the decrypted value, or store.ErrNotFound.
func (p *Parameter) Get(ctx context.Context) ([]byte, error) {
	out, err := p.client.GetParameter(ctx, &ssm.GetParameterInput{Name: &p.name, WithDecryption: aws.Bool(true)})
	var missing *types.ParameterNotFound
	if errors.As(err, &missing) {
		return nil, fmt.Errorf("get parameter %s: %w", p.name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get parameter %s: %w", p.name, err)
	}
	return []byte(aws.ToString(out.Parameter.Value)), nil
}

// Put writes value as a standard-tier SecureString under the account's
// default key for Parameter Store (aws/ssm).
func (p *Parameter) Put(ctx context.Context, value []byte) error {
	if len(value) > store.MaxParameterValue {
		return fmt.Errorf("put parameter %s: value is %d bytes, the limit is %d", p.name, len(value), store.MaxParameterValue)
	}
	_, err := p.client.PutParameter(ctx, &ssm.PutParameterInput{
		Name:      &p.name,
		Value:     aws.String(string(value)),
		Type:      types.ParameterTypeSecureString,
		Tier:      types.ParameterTierStandard,
		Overwrite: aws.Bool(true),
	})
	if err != nil {
		return fmt.Errorf("put parameter %s: %w", p.name, err)
	}
	return nil
}
