package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"jwks-issuer/internal/testenv"
	"jwks-issuer/pkg/verify/verifytest"
)

const methodArn = "arn:aws:execute-api:us-east-1:123456789012:s4x3opwd6i/test/GET/request"

// issuer is an ES256 key behind an origin serving the discovery document
// and the key set with max-age=300.
type issuer struct {
	key    *verifytest.Key
	origin *verifytest.Origin
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := verifytest.NewKey("ES256", "k1")
	if err != nil {
		t.Fatal(err)
	}
	o := verifytest.NewOrigin([]string{"ES256"}, key)
	t.Cleanup(o.Close)
	return &issuer{key: key, origin: o}
}

func (i *issuer) token(claims map[string]any) string {
	c := map[string]any{"iss": i.origin.URL, "aud": "hotsock", "sub": "user-1", "scope": "chat:read", "exp": time.Now().Unix() + 300}
	for k, v := range claims {
		c[k] = v
	}
	return i.key.Sign(c)
}

func start(t *testing.T, env ...string) *testenv.Function {
	t.Helper()
	bin := testenv.BuildLambda(t, "jwks-issuer/functions/authorizer")
	return testenv.StartFunction(t, bin, env)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func tokenEvent(token string) []byte {
	b, _ := json.Marshal(events.APIGatewayCustomAuthorizerRequest{Type: "TOKEN", AuthorizationToken: token, MethodArn: methodArn})
	return b
}

func httpEvent(authorization string) []byte {
	b, _ := json.Marshal(events.APIGatewayV2CustomAuthorizerV2Request{
		Version: "2.0", Type: "REQUEST", RouteArn: methodArn, RouteKey: "GET /request",
		IdentitySource: []string{authorization}, Headers: map[string]string{"authorization": authorization},
	})
	return b
}

// answer is an invocation's outcome: the policy's effect, isAuthorized, or
// the function error's message.
func answer(t *testing.T, f *testenv.Function, payload []byte) string {
	t.Helper()
	res, err := f.Invoke(ctx(t), payload)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	if res.Err != nil {
		return "error: " + res.Err.Message
	}
	var r struct {
		PolicyDocument *events.APIGatewayCustomAuthorizerPolicy `json:"policyDocument"`
		IsAuthorized   *bool                                    `json:"isAuthorized"`
		Context        map[string]any                           `json:"context"`
	}
	if err := json.Unmarshal(res.Payload, &r); err != nil {
		t.Fatalf("answer %s: %v", res.Payload, err)
	}
	switch {
	case r.PolicyDocument != nil && len(r.PolicyDocument.Statement) == 1:
		return r.PolicyDocument.Statement[0].Effect + fmt.Sprintf(" %v", r.Context)
	case r.IsAuthorized != nil:
		return fmt.Sprintf("isAuthorized=%v %v", *r.IsAuthorized, r.Context)
	}
	t.Fatalf("answer %s", res.Payload)
	return ""
}

// The real binary, driven with API Gateway's event shapes, answers each
// token as API Gateway needs; the hostile ones are refused and none makes
// it fail.
func TestAnswers(t *testing.T) {
	iss := newIssuer(t)
	f := start(t, "ISSUER_URL="+iss.origin.URL, "ALLOWED_AUDIENCES=hotsock", "REQUIRED_SCOPES=chat:read", "CONTEXT_CLAIMS=sub,channels")
	valid := iss.token(map[string]any{"channels": map[string]bool{"chat": true}})
	parts := strings.Split(valid, ".")
	none := verifytest.B64([]byte(`{"alg":"none","kid":"k1"}`)) + "." + parts[1] + "."
	for _, tc := range []struct {
		name, token, rest, http string
	}{
		{"valid", valid, `Allow map[channels:{"chat":true} sub:user-1]`, `isAuthorized=true map[channels:{"chat":true} sub:user-1]`},
		{"no scope", iss.token(map[string]any{"scope": "chat:write"}), "Deny map[]", "isAuthorized=false map[]"},
		{"alg none", none, "error: Unauthorized", "isAuthorized=false map[]"},
		{"other audience", iss.token(map[string]any{"aud": "other"}), "error: Unauthorized", "isAuthorized=false map[]"},
		{"expired", iss.token(map[string]any{"exp": time.Now().Unix() - 3600}), "error: Unauthorized", "isAuthorized=false map[]"},
		{"malformed base64", "%%%." + parts[1] + "." + parts[2], "error: Unauthorized", "isAuthorized=false map[]"},
		{"1 MB", parts[0] + "." + strings.Repeat("A", 1<<20) + "." + parts[2], "error: Unauthorized", "isAuthorized=false map[]"},
		{"unknown kid", iss.key.As("ES256", "other").Sign(map[string]any{"aud": "hotsock", "exp": time.Now().Unix() + 60}), "error: Unauthorized", "isAuthorized=false map[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := answer(t, f, tokenEvent("Bearer "+tc.token)); got != tc.rest {
				t.Errorf("TOKEN: %s, want %s", got, tc.rest)
			}
			if got := answer(t, f, httpEvent("Bearer "+tc.token)); got != tc.http {
				t.Errorf("HTTP API: %s, want %s", got, tc.http)
			}
		})
	}
	f.Stop()
	testenv.AssertJSONLines(t, f.Logs())
	if strings.Contains(f.Logs(), parts[2]) {
		t.Error("a token is in the log")
	}
}

// A thousand tokens with made-up kids cost one refetch of the key set, not
// a thousand.
func TestUnknownKidBurst(t *testing.T) {
	iss := newIssuer(t)
	f := start(t, "ISSUER_URL="+iss.origin.URL, "ALLOWED_AUDIENCES=hotsock")
	if got := answer(t, f, tokenEvent(iss.token(nil))); !strings.HasPrefix(got, "Allow") {
		t.Fatal(got)
	}
	before := iss.origin.JWKSFetches()
	for i := range 1000 {
		tok := iss.key.As("ES256", fmt.Sprintf("forged-%d", i)).Sign(map[string]any{"aud": "hotsock", "exp": time.Now().Unix() + 60})
		if got := answer(t, f, tokenEvent(tok)); got != "error: Unauthorized" {
			t.Fatalf("forged kid %d: %s", i, got)
		}
	}
	if n := iss.origin.JWKSFetches() - before; n > 1 {
		t.Fatalf("%d key set fetches for 1000 unknown kids, want at most 1", n)
	}
	if got := answer(t, f, tokenEvent(iss.token(nil))); !strings.HasPrefix(got, "Allow") {
		t.Fatal(got)
	}
}

// With no key set to be had, the function still starts, and answers an
// error that API Gateway turns into a 500 (not a 401 that would tell the
// client its token is bad).
func TestKeySetUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(o *verifytest.Origin)
	}{
		{"down", func(o *verifytest.Origin) { o.Close() }},
		{"garbage", func(o *verifytest.Origin) { o.SetBody([]byte("<html>")) }},
		{"500", func(o *verifytest.Origin) { o.SetStatus(500) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iss := newIssuer(t)
			tc.break_(iss.origin)
			f := start(t, "ISSUER_URL="+iss.origin.URL, "ALLOWED_AUDIENCES=hotsock")
			want := "error: the issuer's key set is unavailable"
			if got := answer(t, f, tokenEvent(iss.token(nil))); got != want {
				t.Fatalf("TOKEN: %s, want %s", got, want)
			}
			if got := answer(t, f, httpEvent(iss.token(nil))); got != want {
				t.Fatalf("HTTP API: %s, want %s", got, want)
			}
			f.Stop()
			if !logSays(f.Logs(), "key set not fetched during init") {
				t.Errorf("init does not log the failed fetch:\n%s", f.Logs())
			}
			testenv.AssertJSONLines(t, f.Logs())
		})
	}
}

// Bad settings stop the function at start, naming the variable, in a JSON
// log line.
func TestRefusesInvalidConfigurationAtStart(t *testing.T) {
	for _, c := range []struct {
		env  []string
		want string
	}{
		{[]string{"ALLOWED_AUDIENCES=hotsock"}, "ISSUER_URL (the issuer, whose discovery document names the key set) or JWKS_URL (the key set) is required"},
		{[]string{"ISSUER_URL=https://id.example.com"}, "ALLOWED_AUDIENCES is required"},
		{[]string{"ISSUER_URL=http://id.example.com", "ALLOWED_AUDIENCES=a"}, `ISSUER_URL is "http://id.example.com": must use https`},
		{[]string{"JWKS_URL=https://id.example.com/jwks.json", "ALLOWED_AUDIENCES=a"}, "ALLOWED_ALGORITHMS is required with JWKS_URL"},
		{[]string{"ISSUER_URL=https://id.example.com", "ALLOWED_AUDIENCES=a", "ALLOWED_ALGORITHMS=HS256"}, `ALLOWED_ALGORITHMS: algorithm "HS256" is never accepted`},
		{[]string{"ISSUER_URL=https://id.example.com", "ALLOWED_AUDIENCES=a", "CLOCK_SKEW_SECONDS=-5"}, "CLOCK_SKEW_SECONDS is -5, must be 0 to 3600"},
		{[]string{"ISSUER_URL=https://id.example.com", "ALLOWED_AUDIENCES=a", "CONTEXT_CLAIMS=sub,,x"}, `CONTEXT_CLAIMS is "sub,,x": entry 2 is empty`},
	} {
		t.Run(c.want, func(t *testing.T) {
			f := start(t, c.env...)
			if _, err := f.Invoke(ctx(t), tokenEvent("x")); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("invoke: %v, want the init error %q", err, c.want)
			}
			f.Stop()
			if !logSays(f.Logs(), c.want) {
				t.Errorf("log does not say %q:\n%s", c.want, f.Logs())
			}
			testenv.AssertJSONLines(t, f.Logs())
		})
	}
}

// logSays tells whether a line of the log has text in its message or error.
func logSays(out, text string) bool {
	for line := range strings.Lines(out) {
		var entry struct{ Msg, Error string }
		if json.Unmarshal([]byte(line), &entry) == nil && (strings.Contains(entry.Msg, text) || strings.Contains(entry.Error, text)) {
			return true
		}
	}
	return false
}
