package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"jwks-issuer/internal/stack"
	"jwks-issuer/internal/testenv"
)

// authorizedStack is a stack whose issuer is an edge in front of its
// bucket, reached through a proxy that counts the key set's fetches, with
// the real authorizer binary verifying its tokens.
type authorizedStack struct {
	*stack.Stack
	issuer     string
	fetches    atomic.Int64 // GETs of the key set, from anyone
	authorizer *testenv.Function
}

func newAuthorizedStack(t *testing.T, env map[string]string) *authorizedStack {
	t.Helper()
	e, err := stack.StartEdge()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	target, err := url.Parse(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	a := &authorizedStack{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/jwks.json") {
			a.fetches.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	a.issuer = front.URL
	env["ISSUER_URL"] = a.issuer
	a.Stack = newStack(t, "secretsmanager", env)
	e.Front(a.Stack)
	return a
}

// startAuthorizer starts the authorizer; the first rotation must have
// published the discovery document and the key set.
func (a *authorizedStack) startAuthorizer(t *testing.T) {
	t.Helper()
	bin := testenv.BuildLambda(t, "jwks-issuer/functions/authorizer")
	a.authorizer = testenv.StartFunction(t, bin, []string{
		"ISSUER_URL=" + a.issuer, "ALLOWED_AUDIENCES=hotsock", "CLOCK_SKEW_SECONDS=60", "CONTEXT_CLAIMS=sub,channels",
	})
	if err := a.authorizer.WaitReady(ctx(t)); err != nil {
		t.Fatal(err)
	}
}

// sign asks the real signer for a token; iss is in the claims so that the
// test holds whether or not the signer sets it itself.
func (a *authorizedStack) sign(t *testing.T, sub string) string {
	t.Helper()
	tok, err := a.Sign(ctx(t), fmt.Sprintf(`{"claims":{"iss":%q,"aud":"hotsock","sub":%q,"channels":{"chat":{"subscribe":true}}},"ttl":30}`, a.issuer, sub))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// authorize sends token as a REST API TOKEN authorizer event and as an
// HTTP API 2.0 event, and returns the REST answer: "Allow <sub>", "Deny"
// or "Unauthorized". The HTTP API answer must agree.
func (a *authorizedStack) authorize(t *testing.T, token string) string {
	t.Helper()
	rest, _ := json.Marshal(events.APIGatewayCustomAuthorizerRequest{
		Type: "TOKEN", AuthorizationToken: "Bearer " + token,
		MethodArn: "arn:aws:execute-api:us-east-1:123456789012:s4x3opwd6i/prod/GET/hello",
	})
	httpAPI, _ := json.Marshal(events.APIGatewayV2CustomAuthorizerV2Request{
		Version: "2.0", Type: "REQUEST", RouteArn: "arn:aws:execute-api:us-east-1:123456789012:abcdef123/$default/GET/hello",
		Headers: map[string]string{"authorization": "Bearer " + token},
	})
	var answer string
	res, err := a.authorizer.Invoke(ctx(t), rest)
	switch {
	case err != nil:
		t.Fatalf("invoke: %v\n%s", err, a.authorizer.Logs())
	case res.Err != nil:
		answer = res.Err.Message
	default:
		var r events.APIGatewayCustomAuthorizerResponse
		if err := json.Unmarshal(res.Payload, &r); err != nil || len(r.PolicyDocument.Statement) != 1 {
			t.Fatalf("policy %s: %v", res.Payload, err)
		}
		answer = r.PolicyDocument.Statement[0].Effect
		if answer == "Allow" {
			answer += " " + r.PrincipalID
			if r.Context["channels"] != `{"chat":{"subscribe":true}}` {
				t.Errorf("context %v", r.Context)
			}
		}
	}
	res, err = a.authorizer.Invoke(ctx(t), httpAPI)
	if err != nil || res.Err != nil {
		t.Fatalf("HTTP API event: %v %v", err, res.Err)
	}
	var simple events.APIGatewayV2CustomAuthorizerSimpleResponse
	if err := json.Unmarshal(res.Payload, &simple); err != nil {
		t.Fatal(err)
	}
	if simple.IsAuthorized != strings.HasPrefix(answer, "Allow") {
		t.Fatalf("the HTTP API answer (isAuthorized %v) disagrees with the REST answer (%s)", simple.IsAuthorized, answer)
	}
	return answer
}

// Tokens of the real signer pass the real authorizer before and after a
// rotation: the old key stays published while its tokens live, the new one
// was published before it signed.
func TestAuthorizerAcrossRotation(t *testing.T) {
	a := newAuthorizedStack(t, compressed())
	c := ctx(t)
	if err := a.Rotate(c, stack.NewToken()); err != nil {
		t.Fatal(err)
	}
	a.startAuthorizer(t)
	before := a.sign(t, "user-1")
	if got := a.authorize(t, before); got != "Allow user-1" {
		t.Fatalf("before the rotation: %s", got)
	}
	if err := a.Rotate(c, stack.NewToken()); err != nil {
		t.Fatal(err)
	}
	after := a.sign(t, "user-2")
	jwks, _, _, _ := a.JWKS(c)
	_, kidBefore := verify(t, before, jwks)
	_, kidAfter := verify(t, after, jwks)
	if kidBefore == kidAfter {
		t.Fatal("the rotation did not change the signing key")
	}
	for tok, want := range map[string]string{before: "Allow user-1", after: "Allow user-2"} {
		if got := a.authorize(t, tok); got != want {
			t.Errorf("after the rotation: %s, want %s", got, want)
		}
	}
	tok, err := a.Sign(c, fmt.Sprintf(`{"claims":{"iss":%q,"aud":"someone-else"},"ttl":30}`, a.issuer))
	if err != nil {
		t.Fatal(err)
	}
	if got := a.authorize(t, tok); got != "Unauthorized" {
		t.Errorf("a token for another audience: %s", got)
	}
}

// After an emergency rollover the authorizer, caching the key set for its
// max-age (300 s), accepts the fresh key at once through the unknown-kid
// refetch, and with that refetch refuses the revoked key; a burst of
// made-up kids right after (well inside the 30 s refetch interval) costs
// no further fetch.
func TestAuthorizerAfterEmergencyRollover(t *testing.T) {
	env := compressed()
	env["ACTIVATION_GRACE_SECONDS"], env["JWKS_MAX_AGE_SECONDS"] = "86400", "300"
	a := newAuthorizedStack(t, env)
	c := ctx(t)
	if err := a.Rotate(c, stack.NewToken()); err != nil {
		t.Fatal(err)
	}
	a.startAuthorizer(t)
	leaked := a.sign(t, "user-1")
	if got := a.authorize(t, leaked); got != "Allow user-1" {
		t.Fatalf("before the rollover: %s", got)
	}
	tagRollover(t, a.Stack)
	if err := a.Rotate(c, stack.NewToken()); err != nil {
		t.Fatalf("emergency rollover: %v", err)
	}
	fresh := a.sign(t, "user-2")
	jwks, _, _, _ := a.JWKS(c)
	if _, _, err := check(leaked, jwks); err == nil {
		t.Fatal("the leaked key is still published")
	}

	fetches := a.fetches.Load()
	// The cached set is fresh: the revocation reaches this verifier within
	// max-age, or with the next fetch, whichever comes first.
	if got := a.authorize(t, leaked); got != "Allow user-1" {
		t.Fatalf("the leaked key's token inside the cache's max-age: %s", got)
	}
	if n := a.fetches.Load(); n != fetches {
		t.Fatalf("%d fetches of a fresh cached key set", n-fetches)
	}
	if got := a.authorize(t, fresh); got != "Allow user-2" {
		t.Fatalf("the fresh key's token: %s", got)
	}
	if n := a.fetches.Load(); n != fetches+1 {
		t.Fatalf("%d fetches for the fresh key's unknown kid, want 1", n-fetches)
	}
	if got := a.authorize(t, leaked); got != "Unauthorized" {
		t.Fatalf("the leaked key's token after the refetch: %s", got)
	}
	parts := strings.Split(fresh, ".")
	for i := range 1000 {
		hdr := fmt.Sprintf(`{"alg":"ES256","kid":"forged-%d","typ":"JWT"}`, i)
		if got := a.authorize(t, base64.RawURLEncoding.EncodeToString([]byte(hdr))+"."+parts[1]+"."+parts[2]); got != "Unauthorized" {
			t.Fatalf("forged kid %d: %s", i, got)
		}
	}
	if n := a.fetches.Load(); n != fetches+1 {
		t.Fatalf("%d more fetches for 1000 made-up kids inside the refetch interval, want none", n-fetches-1)
	}
	a.authorizer.Stop()
	if strings.Contains(a.authorizer.Logs(), strings.Split(fresh, ".")[2]) {
		t.Error("a token is in the authorizer's log")
	}
}

// snippet is the first ```lang block below the heading "## <heading>" of
// docs/verifying.md.
func snippet(t *testing.T, heading, lang string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "verifying.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "\n## "+heading+"\n")
	if i < 0 {
		t.Fatalf("docs/verifying.md has no section %q", heading)
	}
	doc = doc[i:]
	start := strings.Index(doc, "\n```"+lang+"\n")
	if start < 0 {
		t.Fatalf("section %q has no %s block", heading, lang)
	}
	doc = doc[start+len("\n```"+lang+"\n"):]
	return doc[:strings.Index(doc, "\n```")+1]
}

// The hand-written verifiers of docs/verifying.md, run as written against
// the real stack, accept the real signer's token and refuse one whose kid
// is made up, as the authorizer does.
func TestAuthorizerPeersInTheDocs(t *testing.T) {
	a := newAuthorizedStack(t, compressed())
	c := ctx(t)
	if err := a.Rotate(c, stack.NewToken()); err != nil {
		t.Fatal(err)
	}
	a.startAuthorizer(t)
	good := a.sign(t, "user-1")
	parts := strings.Split(good, ".")
	forged := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","kid":"made-up","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2]
	if a.authorize(t, good) != "Allow user-1" || a.authorize(t, forged) != "Unauthorized" {
		t.Fatal("the authorizer disagrees with the test's premise")
	}
	jwksURL := a.issuer + "/.well-known/jwks.json"
	dir := t.TempDir()
	run := func(t *testing.T, cmd *exec.Cmd) string {
		t.Helper()
		if cmd.Env == nil {
			cmd.Env = os.Environ()
		}
		cmd.Env = append(cmd.Env, "JWKS_URL="+jwksURL)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
		}
		return strings.TrimSpace(string(out))
	}

	t.Run("python", func(t *testing.T) {
		const python = "/usr/bin/python3"
		if exec.Command(python, "-c", "import jwt, cryptography").Run() != nil {
			t.Skip("PyJWT with cryptography is not available to " + python)
		}
		if err := os.WriteFile(filepath.Join(dir, "docverifier.py"), []byte(snippet(t, "Python: PyJWT", "python")), 0o644); err != nil {
			t.Fatal(err)
		}
		got := run(t, exec.Command(python, "-c", `
import sys, jwt
sys.path.insert(0, sys.argv[1])
import docverifier
print(docverifier.verify(sys.argv[2])["sub"])
try:
    docverifier.verify(sys.argv[3])
    print("forged accepted")
except jwt.InvalidTokenError as e:
    print("refused:", e)
`, dir, good, forged))
		if got != "user-1\nrefused: unknown kid made-up" {
			t.Fatalf("PyJWT snippet: %s", got)
		}
	})

	t.Run("node", func(t *testing.T) {
		mods := nodeModules(t, "jose@5")
		if err := os.WriteFile(filepath.Join(mods, "docverifier.mjs"), []byte(snippet(t, "Node: jose", "js")), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("node", "--input-type=module", "-e", `
import { verify } from './docverifier.mjs';
const [good, forged] = process.argv.slice(1);
console.log((await verify(good)).sub);
try { await verify(forged); console.log('forged accepted'); } catch (e) { console.log('refused:', e.code); }
`, good, forged)
		cmd.Dir = mods
		if got := run(t, cmd); got != "user-1\nrefused: ERR_JWKS_NO_MATCHING_KEY" {
			t.Fatalf("jose snippet: %s", got)
		}
	})

	t.Run("go", func(t *testing.T) {
		// A module of its own beside this one's go.mod and go.sum: the
		// snippet builds with the versions the issuer pins, from the
		// module cache.
		for _, f := range []string{"go.mod", "go.sum"} {
			b, err := os.ReadFile(filepath.Join("..", f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll(filepath.Join(dir, "verify"), 0o755); err != nil {
			t.Fatal(err)
		}
		main := `package main

import (
	"context"
	"fmt"
	"os"

	"jwks-issuer/verify"
)

func main() {
	ctx := context.Background()
	v, err := verify.NewVerifier(ctx, os.Getenv("JWKS_URL"), "hotsock")
	if err != nil {
		panic(err)
	}
	tok, err := v.Verify(ctx, os.Args[1])
	if err != nil {
		panic(err)
	}
	sub, _ := tok.Subject()
	fmt.Println(sub)
	if _, err := v.Verify(ctx, os.Args[2]); err == nil {
		fmt.Println("forged accepted")
	} else {
		fmt.Println("refused")
	}
}
`
		for name, body := range map[string]string{"verify/verify.go": snippet(t, "Go: lestrrat-go/jwx v3", "go"), "main.go": main} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command("go", "run", ".", good, forged)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
		if got := run(t, cmd); got != "user-1\nrefused" {
			t.Fatalf("jwx snippet: %s", got)
		}
	})
}
