package operator

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"jwks-issuer/internal/stack"
	"jwks-issuer/internal/testenv"
)

// The tests run the command in-process against moto_server, with the real
// rotator and signer binaries doing the work. moto stores the secret, the
// bucket, the stack's outputs and the rotation function's configuration,
// but cannot run a Lambda function; a small proxy in front of it
// does what the Lambda service and Secrets Manager's rotation would:
// RotateSecret runs the four steps on the real rotator and ships its log
// lines to CloudWatch Logs, and an Invoke of the signer reaches the real
// signer.
var (
	moto       *testenv.Moto
	proxy      *fakeAWS
	signerBin  string
	rotatorBin string
)

const roleARN = "arn:aws:iam::123456789012:role/jwks-issuer-test"

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	var err error
	if moto, err = testenv.StartMotoProcess(); err != nil {
		fmt.Fprintln(os.Stderr, "operator:", err)
		return 1
	}
	defer moto.Stop()
	defer testenv.RemoveBuilds()
	for _, b := range []struct {
		pkg string
		out *string
	}{{"jwks-issuer/functions/signer", &signerBin}, {"jwks-issuer/functions/rotator", &rotatorBin}} {
		if *b.out, err = testenv.BuildLambdaBinary(b.pkg); err != nil {
			fmt.Fprintln(os.Stderr, "operator: build:", err)
			return 1
		}
	}
	if err := createRole(); err != nil {
		fmt.Fprintln(os.Stderr, "operator: create the functions' role in moto:", err)
		return 1
	}
	if proxy, err = startFakeAWS(moto.Endpoint); err != nil {
		fmt.Fprintln(os.Stderr, "operator:", err)
		return 1
	}
	defer proxy.close()
	return m.Run()
}

// createRole makes the IAM role moto wants every Lambda function to have
// (an IAM Query call, signed just enough for moto to route it).
func createRole() error {
	form := url.Values{"Action": {"CreateRole"}, "Version": {"2010-05-08"}, "RoleName": {"jwks-issuer-test"},
		"AssumeRolePolicyDocument": {`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`}}
	req, err := http.NewRequest(http.MethodPost, moto.Endpoint+"/", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
	}
	return nil
}

// fakeAWS is moto with the two things moto cannot do: run the rotation
// function when a rotation starts, and invoke the signer.
type fakeAWS struct {
	URL   string
	srv   *http.Server
	moto  *httputil.ReverseProxy
	motoU string

	mu     sync.Mutex
	stacks map[string]*testStack // by secret ARN, secret name, and signer function name
}

func startFakeAWS(motoEndpoint string) (*fakeAWS, error) {
	u, err := url.Parse(motoEndpoint)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &fakeAWS{URL: "http://" + ln.Addr().String(), moto: httputil.NewSingleHostReverseProxy(u), motoU: motoEndpoint,
		stacks: map[string]*testStack{}}
	f.srv = &http.Server{Handler: http.HandlerFunc(f.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

func (f *fakeAWS) close() { _ = f.srv.Close() }

func (f *fakeAWS) register(s *testStack, names ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range names {
		f.stacks[n] = s
	}
}

func (f *fakeAWS) lookup(name string) *testStack {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stacks[name]
}

func (f *fakeAWS) serve(w http.ResponseWriter, r *http.Request) {
	switch r.Header.Get("X-Amz-Target") {
	case "secretsmanager.RotateSecret":
		f.rotateSecret(w, r)
		return
	case "AmazonSSM.GetParameter":
		// As IAM does for an operator without ssm:GetParameter on the
		// signing-key parameter.
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var in struct{ Name string }
		_ = json.Unmarshal(body, &in)
		if s := f.lookup("parameter:" + in.Name); s != nil && s.denyParameter.Load() {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = fmt.Fprintf(w, `{"__type":"AccessDeniedException","message":"User: operator is not authorized to perform: `+
				`ssm:GetParameter on resource: parameter%s because no identity-based policy allows the ssm:GetParameter action"}`, in.Name)
			return
		}
	case "secretsmanager.GetSecretValue":
		// As the template's resource policy does for an operator who is
		// not the break-glass role.
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var in struct{ SecretId string }
		_ = json.Unmarshal(body, &in)
		if s := f.lookup(in.SecretId); s != nil && s.denyValues.Load() {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = fmt.Fprintf(w, `{"__type":"AccessDeniedException","message":"User: operator is not authorized to perform: `+
				`secretsmanager:GetSecretValue on resource: %s with an explicit deny in a resource-based policy"}`, in.SecretId)
			return
		}
	}
	if rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/2015-03-31/functions/"); ok && strings.HasSuffix(rest, "/invocations") {
		name, _ := url.PathUnescape(strings.TrimSuffix(rest, "/invocations"))
		if i := strings.LastIndex(name, ":function:"); i >= 0 {
			name = name[i+len(":function:"):]
		}
		if s := f.lookup("function:" + name); s != nil {
			f.invokeSigner(w, r, s)
			return
		}
	}
	f.moto.ServeHTTP(w, r)
}

// rotateSecret starts the rotation in moto under the secret's rotation
// function (moto forgets it when a call does not repeat it), then runs the
// four steps on the real rotator, as Secrets Manager does, stopping at the
// first that fails.
func (f *fakeAWS) rotateSecret(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var in map[string]any
	_ = json.Unmarshal(body, &in)
	id, _ := in["SecretId"].(string)
	s := f.lookup(id)
	if s != nil {
		if _, ok := in["RotationLambdaARN"]; !ok {
			in["RotationLambdaARN"] = s.rotatorARN
		}
		body, _ = json.Marshal(in)
	}
	var out struct{ ARN, Name, VersionId string }
	tok, _ := in["ClientRequestToken"].(string)
	if s != nil && tok != "" && s.hasVersion(r.Context(), tok) {
		// Secrets Manager reruns the rotation of an existing version;
		// moto would replace the version with an empty one.
		out.ARN, out.VersionId = s.SecretARN, tok
		out.Name = s.SecretARN[strings.LastIndex(s.SecretARN, ":")+1:]
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_ = json.NewEncoder(w).Encode(out)
	} else {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.Header.Set("Content-Length", fmt.Sprint(len(body)))
		rec := &recorder{header: http.Header{}}
		f.moto.ServeHTTP(rec, r)
		maps.Copy(w.Header(), rec.header)
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
		if s == nil || rec.status != http.StatusOK {
			return
		}
		_ = json.Unmarshal(rec.body.Bytes(), &out)
	}
	s.steps.Add(1)
	go func() {
		defer s.steps.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, step := range stack.Steps {
			if err := s.Step(ctx, step, out.VersionId); err != nil {
				return
			}
		}
	}()
}

func (f *fakeAWS) invokeSigner(w http.ResponseWriter, r *http.Request, s *testStack) {
	payload, _ := io.ReadAll(r.Body)
	res, err := s.Signer.Invoke(r.Context(), payload)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	if res.Err != nil {
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(res.Err.Body)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.Payload)
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(status int)      { r.status = status }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

// testStack is a local stack as the command finds it: a secret, a bucket
// served by an edge at its issuer URL, the rotation function's
// configuration in moto, and (with stackName) a CloudFormation stack whose
// outputs name them.
type testStack struct {
	*stack.Stack
	edge       *stack.Edge
	rotatorARN string
	logGroup   string
	signerName string
	stackName  string
	// denyValues makes GetSecretValue through the proxy fail as the
	// secret's resource policy makes it fail for operators.
	denyValues atomic.Bool
	// denyParameter makes GetParameter of the signing-key parameter fail
	// as IAM makes it fail for an identity without ssm:GetParameter.
	denyParameter atomic.Bool
	// parameter is SIGNING_KEY_PARAMETER (Parameter Store custody), and
	// ssm reaches it in moto directly.
	parameter string
	ssm       *ssm.Client
	logs      *cloudwatchlogs.Client
	shipped   int
	shipMu    sync.Mutex
	steps     sync.WaitGroup
}

// compressed is a configuration where time does not hold rotations back.
func compressed() map[string]string {
	return map[string]string{
		"MAX_TOKEN_TTL_SECONDS":    "60",
		"KEY_CACHE_SECONDS":        "0",
		"JWKS_MAX_AGE_SECONDS":     "0",
		"ACTIVATION_GRACE_SECONDS": "0",
		"RETIREMENT_GRACE_SECONDS": "0",
		"CLOCK_SKEW_SECONDS":       "0",
	}
}

// newStack starts a stack with env over the compressed configuration, and
// registers its rotation function and (with withStack) its CloudFormation
// stack in moto.
func newStack(t *testing.T, env map[string]string, withStack bool) *testStack {
	t.Helper()
	ctx := testCtx(t)
	vars := compressed()
	maps.Copy(vars, env)
	edge, err := stack.StartEdge()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(edge.Close)
	vars["ISSUER_URL"] = edge.URL
	s, err := stack.New(ctx, moto, signerBin, rotatorBin, vars)
	if err != nil {
		t.Fatal(err)
	}
	edge.Front(s)
	ts := &testStack{Stack: s, edge: edge, signerName: "signer-" + randomHex(4)}
	t.Cleanup(func() {
		ts.steps.Wait()
		if t.Failed() {
			t.Logf("rotator logs:\n%s", s.Rotator.Logs())
		}
		s.Stop()
	})
	cfg := stack.Config(moto)
	ts.logs = cloudwatchlogs.NewFromConfig(cfg)
	ts.parameter, ts.ssm = vars["SIGNING_KEY_PARAMETER"], ssm.NewFromConfig(cfg)
	shipping, stopShipping := context.WithCancel(context.Background())
	shipped := make(chan struct{})
	t.Cleanup(func() { stopShipping(); <-shipped })

	// The rotation function as Lambda knows it: its environment is the
	// rotator's, which is what the command reads the settings from.
	fnEnv := map[string]string{"SECRET_ID": s.SecretARN, "JWKS_BUCKET": s.Bucket, "JWKS_KEY": s.Key}
	maps.Copy(fnEnv, vars)
	fn, err := lambda.NewFromConfig(cfg).CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("rotator-" + randomHex(4)),
		Runtime:      lambdatypes.RuntimeProvidedal2023,
		Role:         aws.String(roleARN),
		Handler:      aws.String("bootstrap"),
		Code:         &lambdatypes.FunctionCode{ZipFile: bootstrapZip(t)},
		Environment:  &lambdatypes.Environment{Variables: fnEnv},
	})
	if err != nil {
		t.Fatalf("create the rotation function in moto: %v", err)
	}
	ts.rotatorARN = aws.ToString(fn.FunctionArn)
	ts.logGroup = "/aws/lambda/" + aws.ToString(fn.FunctionName)
	if _, err := ts.logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(ts.logGroup)}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.logs.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(ts.logGroup),
		LogStreamName: aws.String("rotator")}); err != nil {
		t.Fatal(err)
	}
	go func() { defer close(shipped); ts.shipLogs(shipping) }()
	name := s.SecretARN[strings.LastIndex(s.SecretARN, ":")+1:]
	proxy.register(ts, s.SecretARN, name[:strings.LastIndex(name, "-")], "function:"+ts.signerName, "parameter:"+ts.parameter)
	if withStack {
		ts.stackName = "jwks-issuer-" + randomHex(4)
		outputs := map[string]string{
			"SecretArn":          s.SecretARN,
			"JwksBucketName":     s.Bucket,
			"JwksUrl":            edge.URL + "/" + s.Key,
			"IssuerUrl":          edge.URL,
			"SignerFunctionArn":  "arn:aws:lambda:us-east-1:123456789012:function:" + ts.signerName,
			"RotatorFunctionArn": ts.rotatorARN,
			"DistributionId":     "EDFDVBD6EXAMPLE",
		}
		if ts.parameter != "" {
			outputs["SigningKeyParameterName"] = ts.parameter
		}
		tmpl := map[string]any{"Resources": map[string]any{"Handle": map[string]any{"Type": "AWS::CloudFormation::WaitConditionHandle"}}}
		out := map[string]any{}
		for k, v := range outputs {
			out[k] = map[string]any{"Value": v}
		}
		tmpl["Outputs"] = out
		body, _ := json.Marshal(tmpl)
		if _, err := cloudformation.NewFromConfig(cfg).CreateStack(ctx, &cloudformation.CreateStackInput{
			StackName: aws.String(ts.stackName), TemplateBody: aws.String(string(body))}); err != nil {
			t.Fatalf("create the stack in moto: %v", err)
		}
	}
	return ts
}

// hasVersion tells whether the secret has a version with this id.
func (s *testStack) hasVersion(ctx context.Context, id string) bool {
	d, err := s.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.SecretARN)})
	if err != nil {
		return false
	}
	_, ok := d.VersionIdsToStages[id]
	return ok
}

// configureRotation gives the secret its rotation function and schedule
// without rotating, as the template's RotationSchedule does before the
// first rotation. (moto leaves the AWSPENDING of its test run behind.)
func (s *testStack) configureRotation(t *testing.T) {
	t.Helper()
	ctx := testCtx(t)
	if _, err := s.SM.RotateSecret(ctx, &secretsmanager.RotateSecretInput{
		SecretId:          aws.String(s.SecretARN),
		RotationLambdaARN: aws.String(s.rotatorARN),
		RotationRules:     &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)},
		RotateImmediately: aws.Bool(false),
	}); err != nil {
		t.Fatal(err)
	}
	d, err := s.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.SecretARN)})
	if err != nil {
		t.Fatal(err)
	}
	for v, labels := range d.VersionIdsToStages {
		if slices.Contains(labels, "AWSPENDING") && !slices.Contains(labels, "AWSCURRENT") {
			if _, err := s.SM.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(s.SecretARN),
				VersionStage: aws.String("AWSPENDING"), RemoveFromVersionId: aws.String(v)}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// rotate runs a whole rotation the way Secrets Manager does: RotateSecret
// (under the rotation function, which moto cannot invoke), then the four
// steps on the real rotator.
func (s *testStack) rotate(t *testing.T) {
	t.Helper()
	if err := s.begin(t, stack.NewToken(), len(stack.Steps)); err != nil {
		t.Fatal(err)
	}
}

// begin starts a rotation under tok and runs its first n steps.
func (s *testStack) begin(t *testing.T, tok string, n int) error {
	t.Helper()
	ctx := testCtx(t)
	_, err := s.SM.RotateSecret(ctx, &secretsmanager.RotateSecretInput{
		SecretId:           aws.String(s.SecretARN),
		ClientRequestToken: aws.String(tok),
		RotationLambdaARN:  aws.String(s.rotatorARN),
		RotationRules:      &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)},
	})
	if err != nil {
		t.Fatalf("rotate-secret: %v", err)
	}
	for _, step := range stack.Steps[:n] {
		if err := s.Step(ctx, step, tok); err != nil {
			return fmt.Errorf("%s: %w", step, err)
		}
	}
	return nil
}

// shipLogs sends the rotator's new log lines to its log group every few
// milliseconds until ctx ends, as Lambda does.
func (s *testStack) shipLogs(ctx context.Context) {
	for {
		s.shipNew(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *testStack) shipNew(ctx context.Context) {
	s.shipMu.Lock()
	defer s.shipMu.Unlock()
	all := s.Rotator.Logs()
	if len(all) <= s.shipped {
		return
	}
	var events []cwtypes.InputLogEvent
	for _, line := range strings.Split(all[s.shipped:], "\n") {
		if strings.TrimSpace(line) != "" {
			events = append(events, cwtypes.InputLogEvent{Message: aws.String(line), Timestamp: aws.Int64(time.Now().UnixMilli())})
		}
	}
	s.shipped = len(all)
	if len(events) > 0 {
		_, _ = s.logs.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(s.logGroup),
			LogStreamName: aws.String("rotator"), LogEvents: events})
	}
}

// env is how the command reaches this stack: through the proxy.
func (s *testStack) env(stdin string) Env {
	cfg := stack.Config(moto)
	cfg.BaseEndpoint = aws.String(proxy.URL)
	return Env{AWS: &cfg, Poll: 20 * time.Millisecond, Stdin: strings.NewReader(stdin)}
}

// run runs the command against the stack; the secret is named with
// --secret unless the args name a stack.
func (s *testStack) run(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := s.env(stdin).Run(testCtx(t), args, &out, &out)
	return code, out.String()
}

func bootstrapZip(t *testing.T) []byte {
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	w, err := z.Create("bootstrap")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("#!/bin/sh\n"))
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func testCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
