// Package awsstore implements the store ports Secrets and KMS over AWS
// Secrets Manager and KMS with aws-sdk-go-v2, mapping AWS errors onto the
// store sentinels, and loads the SDK configuration the functions share.
// (The S3 adapter is store/s3store.)
package awsstore

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// LoadConfig loads the SDK's default configuration (environment, shared
// files, Lambda role). The SDK itself honours AWS_ENDPOINT_URL and the
// service-specific AWS_ENDPOINT_URL_<SERVICE> variables, which is how tests
// and local runs point the functions at an emulator.
func LoadConfig(ctx context.Context) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	return cfg, nil
}

// NewSecretsManagerClient returns a Secrets Manager client for cfg with the
// SDK's default retryer.
func NewSecretsManagerClient(cfg aws.Config) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(cfg)
}
