// Package stack runs the issuer as deployed, on one machine: a secret and a
// bucket in moto_server, and the real signer and rotator binaries under the
// test Lambda Runtime API. The end-to-end tests, the demo and the benchmarks
// drive it.
package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"jwks-issuer/internal/testenv"
)

// Stack is one deployed issuer.
type Stack struct {
	SM        *secretsmanager.Client
	S3        *s3.Client
	SecretARN string
	Bucket    string
	Key       string

	Signer  *testenv.Function
	Rotator *testenv.Function

	moto       *testenv.Moto
	signerBin  string
	rotatorBin string
	env        []string // of the last Start
}

// Config points the SDK at moto.
func Config(m *testenv.Moto) aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(m.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", "testing"),
	}
}

// New creates a secret holding "{}" (as the template does) and a bucket,
// then starts both functions with env added to the contract's variables.
func New(ctx context.Context, m *testenv.Moto, signerBin, rotatorBin string, env map[string]string) (*Stack, error) {
	cfg := Config(m)
	s := &Stack{
		SM:         secretsmanager.NewFromConfig(cfg),
		S3:         s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }),
		Bucket:     "jwks-" + randomHex(6),
		Key:        ".well-known/jwks.json",
		moto:       m,
		signerBin:  signerBin,
		rotatorBin: rotatorBin,
	}
	sec, err := s.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String("jwks-issuer-" + randomHex(6)),
		SecretString: aws.String("{}"),
	})
	if err != nil {
		return nil, fmt.Errorf("create secret: %w", err)
	}
	s.SecretARN = aws.ToString(sec.ARN)
	if _, err := s.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)}); err != nil {
		return nil, fmt.Errorf("create bucket: %w", err)
	}
	if err := s.Start(env); err != nil {
		return nil, err
	}
	return s, nil
}

// Start (re)starts both functions with env added to the defaults, as a
// configuration change and a cold start would.
func (s *Stack) Start(env map[string]string) error {
	s.Stop()
	vars := map[string]string{
		"SECRET_ID":   s.SecretARN,
		"JWKS_BUCKET": s.Bucket,
		"JWKS_KEY":    s.Key,
	}
	maps.Copy(vars, env)
	list := s.moto.Env()
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		list = append(list, k+"="+vars[k])
	}
	s.env = list
	var err error
	if s.Rotator, err = testenv.StartFunctionProcess(s.rotatorBin, append(list, "AWS_LAMBDA_FUNCTION_NAME=rotator")); err != nil {
		return fmt.Errorf("start rotator: %w", err)
	}
	if s.Signer, err = testenv.StartFunctionProcess(s.signerBin, append(list, "AWS_LAMBDA_FUNCTION_NAME=signer")); err != nil {
		return fmt.Errorf("start signer: %w", err)
	}
	return nil
}

// Env is the environment both functions were last started with.
func (s *Stack) Env() []string { return slices.Clone(s.env) }

// RestartSigner starts the signer again, as a cold start, with extra
// variables over those of the last Start (a later entry wins).
func (s *Stack) RestartSigner(extra map[string]string) error {
	if s.Signer != nil {
		s.Signer.Stop()
	}
	list := slices.Clone(s.env)
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		list = append(list, k+"="+extra[k])
	}
	var err error
	if s.Signer, err = testenv.StartFunctionProcess(s.signerBin, append(list, "AWS_LAMBDA_FUNCTION_NAME=signer")); err != nil {
		return fmt.Errorf("start signer: %w", err)
	}
	return nil
}

// Stop stops both functions.
func (s *Stack) Stop() {
	for _, f := range []*testenv.Function{s.Signer, s.Rotator} {
		if f != nil {
			f.Stop()
		}
	}
}

// Invoke calls a function; a function error comes back as a Go error
// carrying its message.
func Invoke(ctx context.Context, f *testenv.Function, payload string) ([]byte, error) {
	res, err := f.Invoke(ctx, []byte(payload))
	if err != nil {
		return nil, fmt.Errorf("invoke: %w (logs: %s)", err, tail(f.Logs()))
	}
	if res.Err != nil {
		return nil, res.Err
	}
	return res.Payload, nil
}

// Step runs one rotation step as Secrets Manager would invoke it.
func (s *Stack) Step(ctx context.Context, step, token string) error {
	ev, _ := json.Marshal(map[string]string{"Step": step, "SecretId": s.SecretARN, "ClientRequestToken": token})
	_, err := Invoke(ctx, s.Rotator, string(ev))
	return err
}

// rotationFunctionARN is the rotation function RotateSecret is given. moto
// cannot invoke a Lambda function without Docker, so the call fails after it
// has done its part; the tests then invoke the real rotator themselves.
const rotationFunctionARN = "arn:aws:lambda:us-east-1:123456789012:function:jwks-issuer-rotator"

// BeginRotation does what Secrets Manager does before it invokes
// createSecret: RotateSecret makes a version under token, labelled
// AWSPENDING and holding no value, and marks rotation enabled. moto then
// fails to invoke the rotation function, which is expected and ignored.
func BeginRotation(ctx context.Context, client *secretsmanager.Client, secretID, token string) error {
	_, err := client.RotateSecret(ctx, &secretsmanager.RotateSecretInput{
		SecretId:           aws.String(secretID),
		ClientRequestToken: aws.String(token),
		RotationLambdaARN:  aws.String(rotationFunctionARN),
		// As the template's schedule: rotation counts as enabled once it
		// has a function and rules.
		RotationRules: &types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)},
	})
	if err != nil && !strings.Contains(err.Error(), rotationFunctionARN) {
		return fmt.Errorf("rotate secret %s: %w", secretID, err)
	}
	return nil
}

// Begin starts a rotation under token the way Secrets Manager does.
func (s *Stack) Begin(ctx context.Context, token string) error {
	return BeginRotation(ctx, s.SM, s.SecretARN, token)
}

// Steps is the order Secrets Manager runs them.
var Steps = []string{"createSecret", "setSecret", "testSecret", "finishSecret"}

// Rotate runs a whole rotation, begun as Secrets Manager begins one.
func (s *Stack) Rotate(ctx context.Context, token string) error {
	if err := s.Begin(ctx, token); err != nil {
		return err
	}
	for _, step := range Steps {
		if err := s.Step(ctx, step, token); err != nil {
			return fmt.Errorf("%s: %w", step, err)
		}
	}
	return nil
}

// Cleanup runs the scheduled cleanup.
func (s *Stack) Cleanup(ctx context.Context) error {
	_, err := Invoke(ctx, s.Rotator, `{"action":"cleanup"}`)
	return err
}

// Sign asks the signer for a token.
func (s *Stack) Sign(ctx context.Context, payload string) (string, error) {
	out, err := Invoke(ctx, s.Signer, payload)
	if err != nil {
		return "", err
	}
	var resp struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(out, &resp); err != nil || resp.Token == "" {
		return "", fmt.Errorf("signer answered %s", out)
	}
	return resp.Token, nil
}

// JWKS reads the published key set with its headers.
func (s *Stack) JWKS(ctx context.Context) (body []byte, cacheControl, contentType string, err error) {
	out, err := s.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.Key)})
	if err != nil {
		return nil, "", "", fmt.Errorf("get jwks: %w", err)
	}
	defer out.Body.Close()
	body, err = io.ReadAll(out.Body)
	return body, aws.ToString(out.CacheControl), aws.ToString(out.ContentType), err
}

// Snapshot describes everything a rotation step may change: labels, tags,
// the value of every labelled version and the published key set.
func (s *Stack) Snapshot(ctx context.Context) (string, error) {
	d, err := s.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.SecretARN)})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, v := range slices.Sorted(maps.Keys(d.VersionIdsToStages)) {
		stages := slices.Sorted(slices.Values(d.VersionIdsToStages[v]))
		if len(stages) == 0 {
			continue // no longer labelled: no step reads it again
		}
		val, err := s.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.SecretARN), VersionId: aws.String(v)})
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "version %s %v %s\n", v, stages, aws.ToString(val.SecretString))
	}
	tags := map[string]string{}
	for _, t := range d.Tags {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		fmt.Fprintf(&b, "tag %s=%s\n", k, tags[k])
	}
	body, _, _, err := s.JWKS(ctx)
	if err != nil {
		body = []byte(err.Error())
	}
	fmt.Fprintf(&b, "jwks %s\n", body)
	return b.String(), nil
}

// Stages returns version → labels.
func (s *Stack) Stages(ctx context.Context) (map[string][]string, error) {
	d, err := s.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.SecretARN)})
	if err != nil {
		return nil, err
	}
	return d.VersionIdsToStages, nil
}

// NewToken returns a rotation token like the ones Secrets Manager makes.
func NewToken() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-8" + h[17:20] + "-" + h[20:32]
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}
