package authorizer

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"jwks-issuer/pkg/verify"
	"jwks-issuer/pkg/verify/verifytest"
)

// samples are aws-lambda-go's own recordings of API Gateway's authorizer
// events, read from the module cache.
var samplesDir = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/aws/aws-lambda-go").Output()
	if err != nil {
		return "", err
	}
	return filepath.Join(strings.TrimSpace(string(out)), "events", "testdata"), nil
})

// Sample reads one of aws-lambda-go's sample events into v.
func sample(t *testing.T, name string, v any) {
	t.Helper()
	dir, err := samplesDir()
	if err != nil {
		t.Fatalf("locating aws-lambda-go's samples: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// Events returns the four event shapes API Gateway sends, carrying
// authorization (the Authorization header, or the TOKEN authorizer's
// token), from aws-lambda-go's samples. An empty authorization means none.
func eventsWith(t *testing.T, authorization string) map[string][]byte {
	t.Helper()
	var tok events.APIGatewayCustomAuthorizerRequest
	sample(t, "apigw-custom-auth-request.json", &tok)
	tok.AuthorizationToken = authorization
	var req events.APIGatewayCustomAuthorizerRequestTypeRequest
	sample(t, "apigw-custom-auth-request-type-request.json", &req)
	var v1 events.APIGatewayV2CustomAuthorizerV1Request
	sample(t, "apigw-v2-custom-authorizer-v1-request.json", &v1)
	var v2 events.APIGatewayV2CustomAuthorizerV2Request
	sample(t, "apigw-v2-custom-authorizer-v2-request.json", &v2)
	if authorization != "" {
		req.Headers["Authorization"] = authorization
		v1.Headers["Authorization"] = authorization
		v2.Headers["authorization"] = authorization // HTTP APIs lower-case header names
	}
	out := map[string][]byte{}
	for name, ev := range map[string]any{"TOKEN": tok, "REQUEST": req, "HTTP 1.0": v1, "HTTP 2.0": v2} {
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b
	}
	return out
}

type fixture struct {
	key    *verifytest.Key
	origin *verifytest.Origin
	v      *verify.Verifier
	now    time.Time
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	key, err := verifytest.NewKey("ES256", "k1")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{key: key, origin: verifytest.NewOrigin([]string{"ES256"}, key), now: time.Unix(1_780_000_000, 0)}
	t.Cleanup(f.origin.Close)
	f.v, err = verify.New(verify.Config{Issuer: f.origin.URL, Audiences: []string{"hotsock"}, ClockSkew: time.Minute,
		Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.v.Close)
	return f
}

func (f *fixture) token(claims map[string]any) string {
	c := map[string]any{"iss": f.origin.URL, "aud": "hotsock", "sub": "user-1", "exp": f.now.Unix() + 300}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return f.key.Sign(c)
}

func quiet() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// outcome is what API Gateway makes of an answer.
type outcome struct {
	status  int // 200 allowed, 401, 403, 500
	context map[string]any
	// policy answers only
	principal string
	resource  string
}

func judge(t *testing.T, shape string, out []byte, err error) outcome {
	t.Helper()
	if err != nil {
		if err.Error() == "Unauthorized" {
			if shape == "HTTP 2.0" {
				t.Fatal("an HTTP API simple-response authorizer answered with the Unauthorized error")
			}
			return outcome{status: 401}
		}
		return outcome{status: 500}
	}
	if shape == "HTTP 2.0" {
		var r struct {
			IsAuthorized *bool          `json:"isAuthorized"`
			Context      map[string]any `json:"context"`
		}
		if err := json.Unmarshal(out, &r); err != nil || r.IsAuthorized == nil {
			t.Fatalf("simple response %s: %v", out, err)
		}
		if !*r.IsAuthorized {
			return outcome{status: 403}
		}
		return outcome{status: 200, context: r.Context}
	}
	var r events.APIGatewayCustomAuthorizerResponse
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("policy %s: %v", out, err)
	}
	st := r.PolicyDocument.Statement
	if r.PolicyDocument.Version != "2012-10-17" || len(st) != 1 || len(st[0].Action) != 1 || st[0].Action[0] != "execute-api:Invoke" || len(st[0].Resource) != 1 {
		t.Fatalf("policy %s", out)
	}
	o := outcome{status: 403, principal: r.PrincipalID, resource: st[0].Resource[0], context: r.Context}
	if st[0].Effect == "Allow" {
		o.status = 200
	} else if st[0].Effect != "Deny" {
		t.Fatalf("effect %q", st[0].Effect)
	}
	return o
}

// Each shape gets its own kind of answer: a valid token is allowed with
// its claims in the context, a missing or invalid one refused (401 for the
// policy shapes, 403 for simple responses), a valid one without the
// required scopes denied (403), and no key set at all is a 500.
func TestDecisions(t *testing.T) {
	f := newFixture(t)
	h := New(f.v, Settings{RequiredScopes: []string{"chat:read"}, ContextClaims: []string{"sub", "channels", "n", "ok", "gone", "none"}}, quiet())
	valid := f.token(map[string]any{"scope": "chat:read chat:write", "channels": map[string]any{"chat": []int{1, 2}}, "n": 7.5, "ok": true, "none": nil})
	for _, tc := range []struct {
		name          string
		authorization string
		rest, simple  int
	}{
		{"valid, Bearer", "Bearer " + valid, 200, 200},
		{"valid, lower-case bearer", "bearer " + valid, 200, 200},
		{"valid, bare token", valid, 200, 200},
		{"scope in scp", "Bearer " + f.token(map[string]any{"scp": []string{"chat:read"}}), 200, 200},
		{"no scopes", "Bearer " + f.token(nil), 403, 403},
		{"another scope", "Bearer " + f.token(map[string]any{"scope": "chat:write"}), 403, 403},
		{"no authorization", "", 401, 403},
		{"another scheme", "Basic dXNlcjpwYXNz", 401, 403},
		{"expired", "Bearer " + f.token(map[string]any{"exp": f.now.Unix() - 120, "scope": "chat:read"}), 401, 403},
		{"other audience", "Bearer " + f.token(map[string]any{"aud": "x", "scope": "chat:read"}), 401, 403},
		{"garbage", "Bearer x.y.z", 401, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for shape, ev := range eventsWith(t, tc.authorization) {
				out, err := h.Invoke(context.Background(), ev)
				got := judge(t, shape, out, err)
				want := tc.rest
				if shape == "HTTP 2.0" {
					want = tc.simple
				}
				if got.status != want {
					t.Fatalf("%s: %d (%s, %v), want %d", shape, got.status, out, err, want)
				}
				if got.status == 200 && tc.name == "valid, Bearer" {
					wantCtx := map[string]any{"sub": "user-1", "channels": `{"chat":[1,2]}`, "n": 7.5, "ok": true}
					if !reflect.DeepEqual(got.context, wantCtx) {
						t.Errorf("%s: context %v, want %v", shape, got.context, wantCtx)
					}
				}
				if shape == "TOKEN" && got.status != 401 {
					if got.principal != "user-1" || got.resource != "arn:aws:execute-api:us-west-2:123456789012:ymy8tbxw7b/*/*" {
						t.Errorf("principal %q, resource %q", got.principal, got.resource)
					}
				}
			}
		})
	}
	f.origin.Close()
	f.now = f.now.Add(2 * time.Hour) // past the cache and its stale window
	for shape, ev := range eventsWith(t, "Bearer "+valid) {
		out, err := h.Invoke(context.Background(), ev)
		if got := judge(t, shape, out, err); got.status != 500 || !errors.Is(err, ErrKeySetUnavailable) {
			t.Errorf("%s with no key set: %d %v", shape, got.status, err)
		}
	}
}

// Events that are no authorizer event are errors, not refusals.
func TestUnknownEvents(t *testing.T) {
	f := newFixture(t)
	h := New(f.v, Settings{}, quiet())
	for _, ev := range []string{`{}`, `{"type":"TOKEN"}`, `{"version":"2.0"}`, `{"type":"OTHER","methodArn":"arn"}`, `[]`, `{"headers":7}`} {
		if _, err := h.Invoke(context.Background(), []byte(ev)); err == nil || err.Error() == "Unauthorized" {
			t.Errorf("%s: %v", ev, err)
		}
	}
}

func TestContextValues(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		claims []string
		want   map[string]any
	}{
		{nil, nil},
		{[]string{"sub"}, map[string]any{"sub": "user-1"}},
		{[]string{"exp", "aud"}, map[string]any{"exp": json.Number("1780000300"), "aud": "hotsock"}},
		{[]string{"obj", "arr", "esc"}, map[string]any{"obj": `{"a":{"b":null}}`, "arr": `["x",1]`, "esc": "é\"\n"}},
	} {
		h := New(f.v, Settings{ContextClaims: tc.claims}, quiet())
		tok, err := f.v.Verify(context.Background(), f.token(map[string]any{"obj": map[string]any{"a": map[string]any{"b": nil}}, "arr": []any{"x", 1}, "esc": "é\"\n"}))
		if err != nil {
			t.Fatal(err)
		}
		if got := h.context(tok); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v: %#v, want %#v", tc.claims, got, tc.want)
		}
	}
}

func TestStageWildcard(t *testing.T) {
	for in, want := range map[string]string{
		"arn:aws:execute-api:us-east-1:123456789012:s4x3opwd6i/test/GET/request":     "arn:aws:execute-api:us-east-1:123456789012:s4x3opwd6i/test/*",
		"arn:aws:execute-api:us-west-2:123456789012:ymy8tbxw7b/*/GET/":               "arn:aws:execute-api:us-west-2:123456789012:ymy8tbxw7b/*/*",
		"arn:aws-cn:execute-api:cn-north-1:123456789012:abc/prod/POST/a/b/c":         "arn:aws-cn:execute-api:cn-north-1:123456789012:abc/prod/*",
		"arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/GET/request?x=:y": "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/*",
		"arn:aws:execute-api:us-east-1:123456789012:api":                             "arn:aws:execute-api:us-east-1:123456789012:api",
		"not an arn": "not an arn",
	} {
		if got := StageWildcard(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

func TestBearer(t *testing.T) {
	for in, want := range map[string]string{
		"Bearer abc": "abc", "BEARER  abc ": "abc", "abc": "abc", " abc ": "abc",
		"Basic abc": "", "Bearer": "", "Bearer ": "", "": "", "a b": "",
	} {
		if got := bearer(in); got != want {
			t.Errorf("bearer(%q) = %q, want %q", in, got, want)
		}
	}
}

// The token is read from the Authorization header however it is spelled,
// the same one every time when several spellings come at once.
func TestTokenHeader(t *testing.T) {
	for _, tc := range []struct {
		headers map[string]string
		want    string
	}{
		{map[string]string{"Authorization": "Bearer a"}, "a"},
		{map[string]string{"authorization": "Bearer a"}, "a"},
		{map[string]string{"AUTHORIZATION": "Bearer a"}, "a"},
		{map[string]string{"authorization": "Bearer b", "Authorization": "Bearer a", "AUTHORIZATION": "Bearer c"}, "a"},
		{map[string]string{"AuThOrIzAtIoN": "Bearer b", "AUTHORIZATION": "Bearer a"}, "a"},
		{map[string]string{"X-Authorization": "Bearer a"}, ""},
		{nil, ""},
	} {
		for range 20 { // map order varies between runs
			e := event{Headers: tc.headers}
			if got := e.token(ShapeRequest); got != tc.want {
				t.Fatalf("%v: %q, want %q", tc.headers, got, tc.want)
			}
		}
	}
}

func TestLoad(t *testing.T) {
	base := map[string]string{"ISSUER_URL": "https://id.example.com", "ALLOWED_AUDIENCES": "hotsock"}
	for _, tc := range []struct {
		env  map[string]string // added to base; "" removes
		want string            // error text, or "" for success
	}{
		{nil, ""},
		{map[string]string{"ISSUER_URL": ""}, "ISSUER_URL (the issuer, whose discovery document names the key set) or JWKS_URL (the key set) is required"},
		{map[string]string{"ISSUER_URL": "http://id.example.com"}, `ISSUER_URL is "http://id.example.com": must use https`},
		{map[string]string{"ISSUER_URL": "id.example.com"}, `ISSUER_URL is "id.example.com": must be an absolute URL`},
		{map[string]string{"ISSUER_URL": "", "JWKS_URL": "https://id.example.com/jwks.json"}, "ALLOWED_ALGORITHMS is required with JWKS_URL"},
		{map[string]string{"JWKS_URL": "ftp://id.example.com/jwks.json"}, `JWKS_URL is "ftp://id.example.com/jwks.json": must use https`},
		{map[string]string{"ALLOWED_AUDIENCES": ""}, "ALLOWED_AUDIENCES is required"},
		{map[string]string{"ALLOWED_AUDIENCES": "a,,b"}, `ALLOWED_AUDIENCES is "a,,b": entry 2 is empty`},
		{map[string]string{"ALLOWED_AUDIENCES": "a,a"}, `"a" is listed twice`},
		{map[string]string{"ALLOWED_ALGORITHMS": "ES256,HS256"}, `ALLOWED_ALGORITHMS: algorithm "HS256" is never accepted`},
		{map[string]string{"ALLOWED_ALGORITHMS": "none"}, `ALLOWED_ALGORITHMS: algorithm "none" is never accepted`},
		{map[string]string{"ALLOWED_ALGORITHMS": "ES257"}, `ALLOWED_ALGORITHMS: algorithm "ES257" is not an algorithm this verifier supports`},
		{map[string]string{"CLOCK_SKEW_SECONDS": "-1"}, "CLOCK_SKEW_SECONDS is -1, must be 0 to 3600"},
		{map[string]string{"CLOCK_SKEW_SECONDS": "3601"}, "CLOCK_SKEW_SECONDS is 3601, must be 0 to 3600"},
		{map[string]string{"CLOCK_SKEW_SECONDS": "1m"}, `CLOCK_SKEW_SECONDS is "1m", must be a whole number`},
		{map[string]string{"CONTEXT_CLAIMS": "sub,"}, `CONTEXT_CLAIMS is "sub,": entry 2 is empty`},
	} {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range tc.env {
			env[k] = v
		}
		s, err := Load(func(k string) string { return env[k] })
		if tc.want == "" {
			if err != nil {
				t.Errorf("%v: %v", tc.env, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.env, err, tc.want)
		}
		_ = s
	}
	s, err := Load(func(k string) string {
		return map[string]string{"JWKS_URL": "https://k.example.com/jwks.json", "ISSUER_URL": "https://id.example.com", "ALLOWED_AUDIENCES": " a , b ",
			"ALLOWED_ALGORITHMS": "ES256,RS256", "CLOCK_SKEW_SECONDS": "0", "REQUIRED_SCOPES": " read  write ", "CONTEXT_CLAIMS": "sub,tenant"}[k]
	})
	want := Settings{
		Verify:         verify.Config{Issuer: "https://id.example.com", JWKSURL: "https://k.example.com/jwks.json", Audiences: []string{"a", "b"}, Algorithms: []string{"ES256", "RS256"}},
		RequiredScopes: []string{"read", "write"}, ContextClaims: []string{"sub", "tenant"},
	}
	if err != nil || !reflect.DeepEqual(s, want) {
		t.Errorf("%+v %v, want %+v", s, err, want)
	}
	s, _ = Load(func(k string) string { return base[k] })
	if s.Verify.ClockSkew != DefaultClockSkew || !reflect.DeepEqual(s.ContextClaims, []string{"sub"}) || len(s.RequiredScopes) != 0 || len(s.Verify.Algorithms) != 0 {
		t.Errorf("defaults %+v", s)
	}
}
