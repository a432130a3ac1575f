// Package awsstore implements the store ports Secrets and KMS over AWS
// Secrets Manager and KMS with aws-sdk-go-v2, mapping AWS errors onto the
// store sentinels, and loads the SDK configuration the functions share.
// (The S3 adapter is store/s3store.)
package awsstore

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go/logging"
)

// LoadConfig loads the SDK's default configuration (environment, shared
// files, Lambda role). The SDK itself honours AWS_ENDPOINT_URL and the
// service-specific AWS_ENDPOINT_URL_<SERVICE> variables, which is how tests
// and local runs point the functions at an emulator.
//
// The SDK's own log entries (retries, skipped checksums, deprecations) go to
// log instead of the SDK's default, a plain-text logger on stderr: every line
// a function writes must be JSON for CloudWatch Logs Insights and metric
// filters to read it.
func LoadConfig(ctx context.Context, log *slog.Logger) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithLogger(SDKLogger(log)))
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	return cfg, nil
}

// SDKLogger adapts log to the SDK's logger interface. WARN entries are
// logged at slog's Warn level, DEBUG ones (and any other classification) at
// Debug, each with "source":"aws-sdk".
func SDKLogger(log *slog.Logger) logging.Logger {
	return sdkLogger{log: log, ctx: context.Background()}
}

type sdkLogger struct {
	log *slog.Logger
	ctx context.Context
}

func (l sdkLogger) Logf(classification logging.Classification, format string, v ...any) {
	level := slog.LevelDebug
	if classification == logging.Warn {
		level = slog.LevelWarn
	}
	if !l.log.Enabled(l.ctx, level) {
		return // a Debug entry under an Info logger costs no formatting
	}
	l.log.Log(l.ctx, level, fmt.Sprintf(format, v...), "source", "aws-sdk")
}

// WithContext gives the SDK a logger bound to the request's context, which
// slog handlers may read (a trace id, for one).
func (l sdkLogger) WithContext(ctx context.Context) logging.Logger {
	return sdkLogger{log: l.log, ctx: ctx}
}

// NewSecretsManagerClient returns a Secrets Manager client for cfg with the
// SDK's default retryer.
func NewSecretsManagerClient(cfg aws.Config) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(cfg)
}
