package operator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
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
	if noCredentials(err) {
		return "no AWS credentials: set AWS_PROFILE (and run aws sso login if it uses SSO), " +
			"or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
	}
	if hint := apiHint(err); hint != "" {
		return hint
	}
	var dns *net.DNSError
	var op *net.OpError
	if errors.As(err, &dns) || errors.As(err, &op) {
		return "cannot reach the service: check your network, and AWS_ENDPOINT_URL if you set it"
	}
	return ""
}

// noCredentials tells whether the SDK found no credentials to sign with:
// a signing error, or one of the credential chain's messages.
func noCredentials(err error) bool {
	var signing *v4.SigningError
	msg := err.Error()
	return errors.As(err, &signing) || strings.Contains(msg, "failed to retrieve credentials") ||
		strings.Contains(msg, "get credentials") || strings.Contains(msg, "no EC2 IMDS role found")
}

// apiHintRule is the hint for the AWS API errors it matches: by error code
// (one of codes, or containing contains), and when op or service is set,
// by the operation ("service:Operation") the error came from.
type apiHintRule struct {
	codes    []string
	contains string
	op       string // exactly this operation
	service  string // any operation of this service, as "lambda:"
	hint     string // "<op>" stands for the operation
}

func (h apiHintRule) match(code, op string) bool {
	byCode := slices.Contains(h.codes, code) || (h.contains != "" && strings.Contains(code, h.contains))
	return byCode && (h.op == "" || op == h.op) && strings.HasPrefix(op, h.service)
}

// apiHints are tried in order and the first match wins, so a specific rule
// (a denied secret value) comes before the general one it is a case of
// (any denial).
var apiHints = []apiHintRule{
	{contains: "ExpiredToken", hint: "your AWS session has expired: run aws sso login, or refresh your credentials"},
	// Credentials of another account or partition, or mangled ones.
	{codes: []string{"UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException", "SignatureDoesNotMatch"},
		hint: "the credentials are not valid here: check AWS_PROFILE and AWS_REGION name the stack's account and Region"},
	// The secret's resource policy denies its values: no IAM permission
	// helps, only the role the policy names.
	{contains: "AccessDenied", op: "secretsmanager:GetSecretValue",
		hint: "the secret's resource policy lets only the two functions and the break-glass role (BreakGlassRoleArn) " +
			"read its versions: run this as that role (docs/runbook.md, Acting as the break-glass role)"},
	{contains: "AccessDenied", codes: []string{"AuthorizationError"},
		hint: "your identity may not call <op>: ask for that permission on the resource, or use a profile that has it (AWS_PROFILE)"},
	{codes: []string{"ResourceNotFoundException"}, service: "secretsmanager:",
		hint: "no such secret in this account and Region: check --secret (or --stack), AWS_REGION and AWS_PROFILE"},
	{codes: []string{"ResourceNotFoundException"}, service: "lambda:",
		hint: "no such function in this account and Region: check --signer/--rotator (or --stack) and AWS_REGION"},
	{codes: []string{"NoSuchBucket"}, hint: "no such bucket: check --bucket (or --stack); the rotator's JWKS_BUCKET names it"},
}

// apiHint is the hint of the first rule matching an AWS API error; "" for
// another error, or an API error no rule knows.
func apiHint(err error) string {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return ""
	}
	code, op := api.ErrorCode(), operationOf(err)
	for _, rule := range apiHints {
		if rule.match(code, op) {
			return strings.ReplaceAll(rule.hint, "<op>", op)
		}
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
