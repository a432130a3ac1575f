package awslite

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"

	"jwks-issuer/pkg/store"
)

// answer is one reply of the fake service.
type answer struct {
	status int
	body   string
	header map[string]string
}

// fake is a service endpoint that answers from a script and records the
// requests.
type fake struct {
	t *testing.T

	mu       sync.Mutex
	script   []answer // one per request; the last one repeats
	requests []*http.Request
	bodies   []map[string]any
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		f.t.Errorf("request body %q is not JSON: %v", b, err)
	}
	f.mu.Lock()
	f.requests = append(f.requests, r)
	f.bodies = append(f.bodies, body)
	a := f.script[min(len(f.requests), len(f.script))-1]
	f.mu.Unlock()
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("X-Amzn-RequestId", "req-1")
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

func (f *fake) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

// clientFor returns a client of svc against a fake answering script, with
// retries that do not wait.
func clientFor(t *testing.T, svc Service, attempts int, script ...answer) (*Client, *fake) {
	t.Helper()
	f := &fake{t: t, script: script}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg, err := FromEnvironment(lambdaEnv(map[string]string{"AWS_ENDPOINT_URL": srv.URL}))
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(cfg, svc)
	if err != nil {
		t.Fatal(err)
	}
	c.retryer = retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = attempts
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
	})
	c.now = func() time.Time { return time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC) }
	return c, f
}

// A request is a SigV4-signed AWS JSON 1.1 POST naming the operation in
// X-Amz-Target, with the session token.
func TestRequestShape(t *testing.T) {
	c, f := clientFor(t, ServiceSecretsManager, 3, answer{200, `{"VersionId":"v1","SecretString":"{\"kid\":\"k\"}"}`, nil})
	version, value, err := NewSecret(c, "arn:aws:secretsmanager:eu-central-1:1:secret:keys").GetStage(context.Background(), "AWSCURRENT")
	if err != nil || version != "v1" || string(value) != `{"kid":"k"}` {
		t.Fatalf("GetStage = %q, %q, %v", version, value, err)
	}
	r, body := f.requests[0], f.bodies[0]
	for header, want := range map[string]string{
		"Content-Type":         "application/x-amz-json-1.1",
		"X-Amz-Target":         "secretsmanager.GetSecretValue",
		"X-Amz-Security-Token": "token",
		"X-Amz-Date":           "20261201T090000Z",
	} {
		if got := r.Header.Get(header); got != want {
			t.Errorf("%s: %q, want %q", header, got, want)
		}
	}
	if auth := r.Header.Get("Authorization"); !strings.HasPrefix(auth,
		"AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261201/eu-central-1/secretsmanager/aws4_request, SignedHeaders=") {
		t.Errorf("Authorization %q", auth)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		t.Errorf("%s %s", r.Method, r.URL.Path)
	}
	if body["SecretId"] != "arn:aws:secretsmanager:eu-central-1:1:secret:keys" || body["VersionStage"] != "AWSCURRENT" || len(body) != 2 {
		t.Errorf("body %v", body)
	}
}

func TestSecret(t *testing.T) {
	ctx := context.Background()
	c, _ := clientFor(t, ServiceSecretsManager, 3, answer{200, `{"VersionId":"v2","SecretBinary":"AAEC"}`, nil})
	if _, value, err := NewSecret(c, "s").GetStage(ctx, "AWSCURRENT"); err != nil || string(value) != "\x00\x01\x02" {
		t.Fatalf("SecretBinary: %q, %v", value, err)
	}
	c, _ = clientFor(t, ServiceSecretsManager, 3, answer{200, `{"VersionId":"v3"}`, nil})
	if _, _, err := NewSecret(c, "s").GetStage(ctx, "AWSCURRENT"); !errors.Is(err, store.ErrNotFound) ||
		!strings.Contains(err.Error(), "get secret s stage AWSCURRENT: version v3 holds no value") {
		t.Fatalf("no value: %v", err)
	}
	c, f := clientFor(t, ServiceSecretsManager, 3, answer{400,
		`{"__type":"com.amazonaws.secretsmanager#ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}`, nil})
	_, _, err := NewSecret(c, "s").GetStage(ctx, "AWSCURRENT")
	if !errors.Is(err, store.ErrNotFound) || Code(err) != "ResourceNotFoundException" || f.calls() != 1 ||
		err.Error() != "get secret s stage AWSCURRENT: "+store.ErrNotFound.Error()+": secretsmanager.GetSecretValue: HTTP 400 (request id req-1): "+
			"ResourceNotFoundException: Secrets Manager can't find the specified secret." {
		t.Fatalf("not found after %d calls: %v", f.calls(), err)
	}
}

func TestParameter(t *testing.T) {
	ctx := context.Background()
	c, f := clientFor(t, ServiceSSM, 3, answer{200, `{"Parameter":{"Name":"/p","Type":"SecureString","Value":"{\"kid\":\"k\"}","Version":3}}`, nil})
	if value, err := NewParameter(c, "/p").Get(ctx); err != nil || string(value) != `{"kid":"k"}` {
		t.Fatalf("Get = %q, %v", value, err)
	}
	if got := f.requests[0].Header.Get("X-Amz-Target"); got != "AmazonSSM.GetParameter" {
		t.Errorf("X-Amz-Target %q", got)
	}
	if b := f.bodies[0]; b["Name"] != "/p" || b["WithDecryption"] != true {
		t.Errorf("body %v", b)
	}
	c, _ = clientFor(t, ServiceSSM, 3, answer{400, `{"__type":"ParameterNotFound","message":""}`, nil})
	if _, err := NewParameter(c, "/p").Get(ctx); !errors.Is(err, store.ErrNotFound) || !strings.HasPrefix(err.Error(), "get parameter /p: ") {
		t.Fatalf("not found: %v", err)
	}
}

func TestKMSSign(t *testing.T) {
	ctx := context.Background()
	c, f := clientFor(t, ServiceKMS, 3, answer{200, `{"KeyId":"k","Signature":"MEUCIQ==","SigningAlgorithm":"ECDSA_SHA_256"}`, nil})
	sig, err := NewKMS(c).Sign(ctx, store.SignRequest{KeyID: "arn:aws:kms:eu-central-1:1:key/k", Algorithm: store.ECDSASHA256, Message: []byte("abc")})
	if err != nil || string(sig) != "0E\x02!" {
		t.Fatalf("Sign = %x, %v", sig, err)
	}
	b := f.bodies[0]
	if f.requests[0].Header.Get("X-Amz-Target") != "TrentService.Sign" || b["KeyId"] != "arn:aws:kms:eu-central-1:1:key/k" ||
		b["Message"] != "YWJj" || b["MessageType"] != "RAW" || b["SigningAlgorithm"] != "ECDSA_SHA_256" {
		t.Errorf("request %v %v", f.requests[0].Header, b)
	}
	_, _ = NewKMS(c).Sign(ctx, store.SignRequest{KeyID: "k", Algorithm: store.ECDSASHA256, Message: make([]byte, 32), Digest: true})
	if f.bodies[1]["MessageType"] != "DIGEST" {
		t.Errorf("digest sent as %v", f.bodies[1]["MessageType"])
	}
	for code, sentinel := range map[string]error{
		"ThrottlingException":      store.ErrThrottled,
		"NotFoundException":        store.ErrKeyNotFound,
		"DisabledException":        store.ErrKeyState,
		"KMSInvalidStateException": store.ErrKeyState,
		"AccessDeniedException":    store.ErrAccessDenied,
	} {
		c, f := clientFor(t, ServiceKMS, 3, answer{400, `{"__type":"` + code + `","message":"no"}`, nil})
		_, err := NewKMS(c).Sign(ctx, store.SignRequest{KeyID: "k", Algorithm: store.ECDSASHA256, Message: []byte("m")})
		if !errors.Is(err, sentinel) || f.calls() != 1 {
			t.Errorf("%s: %v after %d calls, want %v and no retry", code, err, f.calls(), sentinel)
		}
	}
	if _, err := NewKMS(c).GetPublicKey(ctx, "k"); err == nil {
		t.Error("the signer's KMS does more than sign")
	}
}

// Retries follow the SDK's standard retryer: 5xx answers, throttling and
// connection errors are retried up to the attempts allowed, client errors
// are not, and kms:Sign leaves throttling to its caller.
func TestRetries(t *testing.T) {
	ctx := context.Background()
	unavailable := answer{503, `{"__type":"ServiceUnavailableException","message":"try later"}`, nil}
	throttled := answer{400, `{"__type":"ThrottlingException","message":"Rate exceeded"}`, nil}
	ok := answer{200, `{"VersionId":"v","SecretString":"x"}`, nil}
	for _, c := range []struct {
		name     string
		attempts int
		script   []answer
		calls    int
		wantErr  string
	}{
		{"503 then ok", 3, []answer{unavailable, unavailable, ok}, 3, ""},
		{"503 until the last attempt", 3, []answer{unavailable}, 3, "HTTP 503 (request id req-1): ServiceUnavailableException: try later (after 3 attempts)"},
		{"throttled then ok", 3, []answer{throttled, ok}, 2, ""},
		{"one attempt", 1, []answer{unavailable, ok}, 1, "HTTP 503"},
		{"access denied", 3, []answer{{400, `{"__type":"AccessDeniedException","message":"no"}`, nil}, ok}, 1, "AccessDeniedException: no"},
		{"error type in the header", 3, []answer{{400, `{}`, map[string]string{"X-Amzn-ErrorType": "ThrottlingException:http://internal"}}, ok}, 2, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			client, f := clientFor(t, ServiceSecretsManager, c.attempts, c.script...)
			_, _, err := NewSecret(client, "s").GetStage(ctx, "AWSCURRENT")
			if f.calls() != c.calls || (c.wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("%d calls, %v; want %d calls and %q", f.calls(), err, c.calls, c.wantErr)
			}
		})
	}
	client, f := clientFor(t, ServiceKMS, 3, unavailable, throttled, answer{200, `{"Signature":"AA=="}`, nil})
	_, err := NewKMS(client).Sign(ctx, store.SignRequest{KeyID: "k", Algorithm: store.ECDSASHA256, Message: []byte("m")})
	if f.calls() != 2 || !errors.Is(err, store.ErrThrottled) {
		t.Fatalf("Sign: %d calls, %v; want the 503 retried and the throttling returned", f.calls(), err)
	}
}

// A connection that fails is retried; a context that has ended is not.
func TestConnectionErrorsAndCancellation(t *testing.T) {
	client, f := clientFor(t, ServiceSecretsManager, 3, answer{200, `{"VersionId":"v","SecretString":"x"}`, nil})
	down := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	url := down.URL
	down.Close()
	good := client.url
	client.url = url + "/"
	if _, _, err := NewSecret(client, "s").GetStage(context.Background(), "AWSCURRENT"); err == nil ||
		!strings.Contains(err.Error(), "after 3 attempts") {
		t.Fatalf("a refused connection: %v, want 3 attempts", err)
	}
	client.url = good
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := NewSecret(client, "s").GetStage(ctx, "AWSCURRENT"); !errors.Is(err, context.Canceled) || f.calls() != 0 {
		t.Fatalf("a cancelled context: %v after %d calls", err, f.calls())
	}
}
