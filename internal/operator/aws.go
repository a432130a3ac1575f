package operator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/awsstore"
	"jwks-issuer/pkg/store/s3store"
)

// config returns the SDK configuration: the injected one, or the default
// chain with --region and --profile applied.
func (r *runner) config(ctx context.Context) (aws.Config, error) {
	if r.awsCfg != nil || r.awsErr != nil {
		if r.awsErr != nil {
			return aws.Config{}, r.awsErr
		}
		return *r.awsCfg, nil
	}
	var cfg aws.Config
	if r.env.AWS != nil {
		cfg = r.env.AWS.Copy()
		if r.t.region != "" {
			cfg.Region = r.t.region
		}
	} else {
		var opts []func(*config.LoadOptions) error
		if r.t.region != "" {
			opts = append(opts, config.WithRegion(r.t.region))
		}
		if r.t.profile != "" {
			opts = append(opts, config.WithSharedConfigProfile(r.t.profile))
		}
		loaded, err := config.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			r.awsErr = &hinted{fmt.Errorf("load the AWS configuration: %w", err),
				"check AWS_PROFILE (or --profile) names a profile in ~/.aws/config, and that the file parses"}
			return aws.Config{}, r.awsErr
		}
		cfg = loaded
	}
	if cfg.Region == "" {
		r.awsErr = &hinted{errors.New("no AWS Region is configured"),
			"set AWS_REGION (or pass --region), or give your profile a region in ~/.aws/config"}
		return aws.Config{}, r.awsErr
	}
	r.awsCfg = &cfg
	return cfg, nil
}

// clients are the AWS clients a command uses.
type clients struct {
	cfg    aws.Config
	sm     *secretsmanager.Client
	s3     *s3.Client
	cfn    *cloudformation.Client
	lambda *lambda.Client
	logs   *cloudwatchlogs.Client
	kms    store.KMS
	ssm    *ssm.Client
}

func (r *runner) clients(ctx context.Context) (*clients, error) {
	cfg, err := r.config(ctx)
	if err != nil {
		return nil, err
	}
	return &clients{
		cfg:    cfg,
		sm:     awsstore.NewSecretsManagerClient(cfg),
		s3:     s3store.NewClient(cfg),
		cfn:    cloudformation.NewFromConfig(cfg),
		lambda: lambda.NewFromConfig(cfg),
		logs:   cloudwatchlogs.NewFromConfig(cfg),
		kms:    awsstore.NewKMS(awsstore.NewKMSClient(cfg)),
		ssm:    awsstore.NewSSMClient(cfg),
	}, nil
}

// hinted is an error with what to do about it.
type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() }
func (h *hinted) Unwrap() error { return h.err }

// hintFor says what to do about err: the hint it carries, or one for the
// AWS failures every command can meet.
func hintFor(err error) string {
	var h *hinted
	if errors.As(err, &h) {
		return h.hint
	}
	var signing *v4.SigningError
	msg := err.Error()
	switch {
	case errors.As(err, &signing) || strings.Contains(msg, "failed to retrieve credentials") ||
		strings.Contains(msg, "get credentials") || strings.Contains(msg, "no EC2 IMDS role found"):
		return "no AWS credentials: set AWS_PROFILE (and run aws sso login if it uses SSO), " +
			"or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		op := operationOf(err)
		switch code := api.ErrorCode(); {
		case strings.Contains(code, "ExpiredToken"):
			return "your AWS session has expired: run aws sso login, or refresh your credentials"
		case code == "UnrecognizedClientException" || code == "InvalidClientTokenId" ||
			code == "InvalidSignatureException" || code == "SignatureDoesNotMatch":
			return "the credentials are not valid here: check AWS_PROFILE and AWS_REGION name the stack's account and Region"
		case strings.Contains(code, "AccessDenied") && op == "secretsmanager:GetSecretValue":
			return "the secret's resource policy lets only the two functions and the break-glass role (BreakGlassRoleArn) " +
				"read its versions: run this as that role (docs/runbook.md, Acting as the break-glass role)"
		case strings.Contains(code, "AccessDenied") || code == "AuthorizationError":
			return fmt.Sprintf("your identity may not call %s: ask for that permission on the resource, "+
				"or use a profile that has it (AWS_PROFILE)", op)
		case code == "ResourceNotFoundException" && strings.HasPrefix(op, "secretsmanager:"):
			return "no such secret in this account and Region: check --secret (or --stack), AWS_REGION and AWS_PROFILE"
		case code == "ResourceNotFoundException" && strings.HasPrefix(op, "lambda:"):
			return "no such function in this account and Region: check --signer/--rotator (or --stack) and AWS_REGION"
		case code == "NoSuchBucket":
			return "no such bucket: check --bucket (or --stack); the rotator's JWKS_BUCKET names it"
		}
	}
	var dns *net.DNSError
	var op *net.OpError
	if errors.As(err, &dns) || errors.As(err, &op) {
		return "cannot reach the service: check your network, and AWS_ENDPOINT_URL if you set it"
	}
	return ""
}

// operationOf names the AWS operation an error came from, as
// "service:Operation".
func operationOf(err error) string {
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		return strings.ToLower(strings.ReplaceAll(oe.ServiceID, " ", "")) + ":" + oe.OperationName
	}
	return "the operation"
}

// apiCode is the AWS error code of err, "" if it is not an API error.
func apiCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}
