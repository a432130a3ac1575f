package operator

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"jwks-issuer/pkg/envconfig"
)

// targetFlags name the stack, or its parts one by one, and override the
// rotator's settings.
type targetFlags struct {
	stack, secret, signer, rotator string
	jwksURL                        string
	region, profile                string
	set                            map[string]string // setting name → value, from --set and the named flags
}

// settingNames are the rotator's variables the command reads (README's
// configuration table), in the order status lists them.
var settingNames = []string{
	"MAX_TOKEN_TTL_SECONDS", "KEY_CACHE_SECONDS", "JWKS_MAX_AGE_SECONDS",
	"ACTIVATION_GRACE_SECONDS", "RETIREMENT_GRACE_SECONDS", "CLOCK_SKEW_SECONDS",
	"KEY_CUSTODY", "SIGNING_KEY_PARAMETER", "KEY_ALGORITHM", "JWKS_BUCKET", "JWKS_KEY", "ISSUER_URL", "DISCOVERY_KEY",
}

// Where a setting's value came from.
const (
	fromFlag    = "flag"
	fromRotator = "rotator environment"
	fromOutput  = "stack output"
	fromDefault = "default"
)

// settingFlag is a flag that sets one setting.
type settingFlag struct {
	set  map[string]string
	name string
}

func (f settingFlag) String() string { return "" }
func (f settingFlag) Set(v string) error {
	f.set[f.name] = v
	return nil
}

// setFlag is --set NAME=VALUE.
type setFlag map[string]string

func (f setFlag) String() string { return "" }
func (f setFlag) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	name = strings.ToUpper(strings.TrimSpace(name))
	if !ok || !slices.Contains(settingNames, name) {
		return fmt.Errorf("want NAME=VALUE with NAME one of %s", strings.Join(settingNames, ", "))
	}
	f[name] = value
	return nil
}

func (t *targetFlags) register(fs *flag.FlagSet) {
	t.set = map[string]string{}
	fs.StringVar(&t.stack, "stack", "", "the CloudFormation stack `NAME`: its outputs name the secret, the bucket, the URLs and the functions")
	fs.StringVar(&t.secret, "secret", "", "the key secret's `ARN` or name (instead of, or over, the stack's SecretArn)")
	fs.Var(settingFlag{t.set, "JWKS_BUCKET"}, "bucket", "the `BUCKET` of the published key set (the rotator's JWKS_BUCKET)")
	fs.Var(settingFlag{t.set, "JWKS_KEY"}, "jwks-key", "the object `KEY` of the key set in the bucket (the rotator's JWKS_KEY)")
	fs.Var(settingFlag{t.set, "DISCOVERY_KEY"}, "discovery-key", "the object `KEY` of the discovery document (the rotator's DISCOVERY_KEY)")
	fs.Var(settingFlag{t.set, "ISSUER_URL"}, "issuer", "the issuer `URL` (the rotator's ISSUER_URL; the stack's IssuerUrl)")
	fs.StringVar(&t.jwksURL, "jwks-url", "", "the public `URL` of the key set (the stack's JwksUrl)")
	fs.StringVar(&t.signer, "signer", "", "the signer function's `NAME` or ARN (the stack's SignerFunctionArn)")
	fs.StringVar(&t.rotator, "rotator", "", "the rotation function's `NAME` or ARN (default: the secret's rotation function)")
	fs.StringVar(&t.region, "region", "", "the AWS `REGION` (default: AWS_REGION or the profile's)")
	fs.StringVar(&t.profile, "profile", "", "the AWS `PROFILE` (default: AWS_PROFILE)")
	fs.Var(setFlag(t.set), "set", "override one of the rotator's settings, `NAME=VALUE` (repeatable): "+strings.Join(settingNames, ", "))
}

// setting is one effective setting and where it came from.
type setting struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

// target is everything the command knows about the stack it works on.
type target struct {
	stack   string
	outputs map[string]string
	// secretID is "" when neither --secret nor the stack names one.
	secretID string
	secret   *secretsmanager.DescribeSecretOutput
	// rotator is the rotation function; rotatorEnv its environment (nil
	// when it could not be read, with rotatorErr saying why).
	rotator    string
	rotatorEnv map[string]string
	rotatorErr error
	logGroup   string
	signer     string
	cfg        envconfig.Rotator
	settings   []setting
	// bucketKnown is false when no flag, output or environment names it.
	bucketKnown bool
	jwksURL     string
	distID      string
	warnings    []string
}

// resolve finds the stack's parts. With needSecret it fails when the
// secret cannot be described; otherwise it reads what it can.
func (r *runner) resolve(ctx context.Context, c *clients, needSecret bool) (*target, error) {
	t := &target{stack: r.t.stack, outputs: map[string]string{}}
	if err := r.readOutputs(ctx, c, t); err != nil {
		return nil, err
	}
	t.secretID = first(r.t.secret, t.outputs["SecretArn"])
	t.signer = first(r.t.signer, t.outputs["SignerFunctionArn"])
	t.distID = t.outputs["DistributionId"]
	if err := r.describeSecret(ctx, c, t, needSecret); err != nil {
		return nil, err
	}
	r.findRotator(ctx, c, t)
	if err := t.settle(r.t.set); err != nil {
		return nil, err
	}
	t.jwksURL = first(r.t.jwksURL, t.outputs["JwksUrl"], t.cfg.JWKSURL)
	return t, nil
}

// readOutputs reads the outputs of the stack --stack names, if any.
func (r *runner) readOutputs(ctx context.Context, c *clients, t *target) error {
	if r.t.stack == "" {
		return nil
	}
	out, err := c.cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(r.t.stack)})
	if err != nil {
		if apiCode(err) == "ValidationError" && strings.Contains(err.Error(), "does not exist") {
			return &hinted{fmt.Errorf("no such stack %q in %s", r.t.stack, c.cfg.Region),
				"check --stack, AWS_REGION (or --region) and AWS_PROFILE; aws cloudformation list-stacks lists them"}
		}
		return fmt.Errorf("describe stack %s: %w", r.t.stack, err)
	}
	if len(out.Stacks) == 0 {
		return &hinted{fmt.Errorf("no such stack %q in %s", r.t.stack, c.cfg.Region), "check --stack and AWS_REGION"}
	}
	for _, o := range out.Stacks[0].Outputs {
		t.outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	return nil
}

// describeSecret describes the secret t names. Without needSecret a
// secret that is not named or cannot be described is a warning, not an
// error: verify needs only the public URLs.
func (r *runner) describeSecret(ctx context.Context, c *clients, t *target, needSecret bool) error {
	switch {
	case t.secretID == "" && needSecret && r.t.stack != "":
		return &hinted{fmt.Errorf("the stack %s has no SecretArn output", r.t.stack),
			"check that it is a jwks-issuer stack, or name the secret: --secret ARN"}
	case t.secretID == "" && needSecret:
		return &hinted{errors.New("no key secret named"), "pass --stack NAME, or --secret ARN"}
	case t.secretID == "":
		return nil
	}
	d, err := c.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(t.secretID)})
	switch {
	case err == nil:
		t.secret = d
		t.secretID = first(aws.ToString(d.ARN), t.secretID)
	case needSecret:
		return fmt.Errorf("describe secret %s: %w", t.secretID, err)
	default:
		t.warnings = append(t.warnings, fmt.Sprintf("could not describe the secret %s: %v", t.secretID, err))
	}
	return nil
}

// findRotator finds the rotation function (--rotator, else the secret's,
// else the stack's output) and reads its configuration, which holds the
// settings; when it cannot be read the settings are defaults, and a
// warning says so.
func (r *runner) findRotator(ctx context.Context, c *clients, t *target) {
	t.rotator = r.t.rotator
	if t.rotator == "" && t.secret != nil {
		t.rotator = aws.ToString(t.secret.RotationLambdaARN)
	}
	t.rotator = first(t.rotator, t.outputs["RotatorFunctionArn"])
	if t.rotator != "" {
		r.readRotator(ctx, c, t)
	} else {
		t.rotatorErr = errors.New("the secret has no rotation function and none was named")
	}
	if t.rotatorErr != nil && t.secretID != "" {
		t.warnings = append(t.warnings, fmt.Sprintf("could not read the rotator's configuration (%v): "+
			"the settings below are defaults unless a flag or output gave them; "+
			"pass --rotator, or --set NAME=VALUE for each setting that differs", t.rotatorErr))
	}
}

// readRotator reads the rotation function's environment and log group.
func (r *runner) readRotator(ctx context.Context, c *clients, t *target) {
	out, err := c.lambda.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(t.rotator)})
	if err != nil {
		t.rotatorErr = fmt.Errorf("get the configuration of %s: %w", t.rotator, err)
		if hint := hintFor(err); hint != "" {
			t.rotatorErr = fmt.Errorf("%w (%s)", t.rotatorErr, hint)
		}
		return
	}
	t.rotatorEnv = map[string]string{}
	if out.Environment != nil {
		maps.Copy(t.rotatorEnv, out.Environment.Variables)
	}
	t.logGroup = "/aws/lambda/" + aws.ToString(out.FunctionName)
	if out.LoggingConfig != nil && aws.ToString(out.LoggingConfig.LogGroup) != "" {
		t.logGroup = aws.ToString(out.LoggingConfig.LogGroup)
	}
}

// settle computes the effective settings: a flag over the rotator's
// environment over the stack's outputs over the default, read by the
// rotator's own loader so that they mean what they mean to it.
func (t *target) settle(flags map[string]string) error {
	outputs := map[string]string{"JWKS_BUCKET": t.outputs["JwksBucketName"], "ISSUER_URL": t.outputs["IssuerUrl"],
		"SIGNING_KEY_PARAMETER": t.outputs["SigningKeyParameterName"]}
	source := map[string]string{}
	getenv := func(name string) string {
		if v, ok := flags[name]; ok {
			source[name] = fromFlag
			return v
		}
		if v := strings.TrimSpace(t.rotatorEnv[name]); v != "" {
			source[name] = fromRotator
			return v
		}
		if v := outputs[name]; v != "" {
			source[name] = fromOutput
			return v
		}
		return ""
	}
	vars := map[string]string{}
	for _, n := range settingNames {
		vars[n] = getenv(n)
	}
	t.bucketKnown = vars["JWKS_BUCKET"] != ""
	cfg, err := envconfig.LoadRotator(func(name string) string {
		switch name {
		case "SECRET_ID":
			return first(t.secretID, "-")
		case "JWKS_BUCKET":
			return first(vars[name], "-")
		}
		if v, ok := vars[name]; ok {
			return v
		}
		return t.rotatorEnv[name]
	})
	if err != nil {
		what := "the rotator's configuration"
		if len(flags) > 0 {
			what = "the configuration (rotator environment and flags)"
		}
		return &hinted{fmt.Errorf("%s is not valid: %w", what, err),
			"fix the --set or named flag, or the function's environment (the rotator refuses it too)"}
	}
	t.cfg = cfg
	t.settings = append(t.settings, settingsOf(cfg, vars["JWKS_BUCKET"], source)...)
	return nil
}

// settingsOf lists the effective settings as the rotator reads them, in
// settingNames' order, each with where it came from.
func settingsOf(cfg envconfig.Rotator, bucket string, source map[string]string) []setting {
	lc := cfg.Lifecycle
	secs := func(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }
	values := map[string]string{
		"MAX_TOKEN_TTL_SECONDS":    secs(lc.MaxTokenTTL),
		"KEY_CACHE_SECONDS":        secs(lc.KeyCacheMaxAge),
		"JWKS_MAX_AGE_SECONDS":     secs(lc.JWKSMaxAge),
		"ACTIVATION_GRACE_SECONDS": secs(lc.ActivationGrace),
		"RETIREMENT_GRACE_SECONDS": secs(lc.RetirementGrace),
		"CLOCK_SKEW_SECONDS":       secs(lc.ClockSkew),
		"KEY_CUSTODY":              string(cfg.Custody),
		"SIGNING_KEY_PARAMETER":    cfg.Parameter,
		"KEY_ALGORITHM":            string(cfg.Algorithm),
		"JWKS_BUCKET":              bucket,
		"JWKS_KEY":                 cfg.Key,
		"ISSUER_URL":               cfg.Issuer.String(),
		"DISCOVERY_KEY":            cfg.DiscoveryKey,
	}
	if cfg.Issuer.IsZero() {
		values["DISCOVERY_KEY"] = "" // without an issuer the rotator publishes no discovery document
	}
	var out []setting
	for _, n := range settingNames {
		if n == "SIGNING_KEY_PARAMETER" && cfg.Custody != envconfig.CustodyParameterStore {
			continue // only Parameter Store custody has the parameter
		}
		out = append(out, setting{Name: n, Value: values[n], Source: first(source[n], fromDefault)})
	}
	return out
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
