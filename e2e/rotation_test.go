package e2e

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"jwks-issuer/internal/stack"
)

const hotsockPayload = `{"claims":{"aud":"hotsock","channels":{"chat":{"subscribe":true}}},"ttl":30}`

func TestRotationSigningAndVerification(t *testing.T) {
	allCustodies(t, testRotationSigningAndVerification)
}

func testRotationSigningAndVerification(t *testing.T, custody string) {
	s := newStack(t, custody, compressed())
	c := ctx(t)

	if _, err := s.Sign(c, hotsockPayload); err == nil || !strings.Contains(err.Error(), "no signing key yet") {
		t.Fatalf("signing before the first rotation: %v, want a clear error", err)
	}

	// First rotation, every step delivered twice: the second run changes nothing.
	first := begin(t, s)
	for _, step := range stack.Steps {
		if err := s.Step(c, step, first); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		before, err := s.Snapshot(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Step(c, step, first); err != nil {
			t.Fatalf("%s repeated: %v", step, err)
		}
		if after, _ := s.Snapshot(c); after != before {
			t.Fatalf("%s repeated changed state:\nbefore:\n%s\nafter:\n%s", step, before, after)
		}
	}
	stages, err := s.Stages(c)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(stages[first], "AWSCURRENT") || slices.Contains(stages[first], "AWSPENDING") {
		t.Fatalf("token version stages %v", stages[first])
	}
	var nextVersions int
	for v, labels := range stages {
		if slices.Contains(labels, "NEXT") && v != first {
			nextVersions++
		}
	}
	if nextVersions != 1 {
		t.Fatalf("want one separate NEXT version: %v", stages)
	}

	jwks, cacheControl, contentType, err := s.JWKS(c)
	if err != nil {
		t.Fatal(err)
	}
	if cacheControl != "public, max-age=0" || contentType != "application/json" {
		t.Fatalf("jwks headers %q %q", cacheControl, contentType)
	}
	if strings.Contains(string(jwks), `"d"`) || strings.Contains(string(jwks), "PRIVATE") {
		t.Fatal("private material in the published key set")
	}

	oldToken, err := s.Sign(c, hotsockPayload)
	if err != nil {
		t.Fatal(err)
	}
	claims, oldKid := verify(t, oldToken, jwks)
	if claims["aud"] != "hotsock" {
		t.Fatalf("claims %v", claims)
	}
	if exp, _ := claims["exp"].(float64); time.Until(time.Unix(int64(exp), 0)) > 31*time.Second {
		t.Fatalf("exp %v is not now + 30", claims["exp"])
	}

	// Bad requests are clear errors and leave the process working.
	for payload, want := range map[string]string{
		`{"claims":{},"ttl":61}`:     "ttl is 61, the limit is 60",
		`{"claims":[]}`:              "claims must be a JSON object",
		`{"claims":{},"extra":1}`:    `unknown field "extra"`,
		`{"claims":{},"ttl":-5}`:     "ttl is -5, must not be negative",
		`{"claims":{}`:               "payload must be a JSON object",
		`{"claims":{},"setJti":"y"}`: "setJti must be true or false",
	} {
		if _, err := s.Sign(c, payload); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", payload, err, want)
		}
	}

	// Second rotation: the new token carries the new kid, the old one still verifies.
	if err := s.Rotate(c, stack.NewToken()); err != nil {
		t.Fatal(err)
	}
	newToken, err := s.Sign(c, `{"claims":{"sub":"after"},"setIat":true,"setJti":true}`)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _, _, _ = s.JWKS(c)
	claims, newKid := verify(t, newToken, jwks)
	if newKid == oldKid {
		t.Fatal("the token after rotation carries the old kid")
	}
	if claims["iat"] == nil || claims["jti"] == nil {
		t.Fatalf("setIat/setJti ignored: %v", claims)
	}
	verify(t, oldToken, jwks)
	verifyPyJWT(t, jwks, oldToken, newToken)
}

func TestEarlyRotationIsRefused(t *testing.T) { allCustodies(t, testEarlyRotationIsRefused) }

func testEarlyRotationIsRefused(t *testing.T, custody string) {
	env := compressed()
	env["ACTIVATION_GRACE_SECONDS"], env["JWKS_MAX_AGE_SECONDS"] = "3600", "300"
	s := newStack(t, custody, env)
	c := ctx(t)
	if err := s.Rotate(c, stack.NewToken()); err != nil {
		t.Fatalf("first rotation skips the grace: %v", err)
	}
	before, _ := s.Snapshot(c)
	err := s.Step(c, "createSecret", begin(t, s))
	if err == nil || !strings.Contains(err.Error(), "rotation may proceed at") {
		t.Fatalf("early rotation: %v, want a refusal saying when", err)
	}
	if after, _ := s.Snapshot(c); after != before {
		t.Fatalf("refused rotation changed state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestRetiredKeyLeavesOnlyAfterItsTokensExpire(t *testing.T) {
	allCustodies(t, testRetiredKeyLeavesOnlyAfterItsTokensExpire)
}

func testRetiredKeyLeavesOnlyAfterItsTokensExpire(t *testing.T, custody string) {
	env := compressed()
	env["MAX_TOKEN_TTL_SECONDS"] = "2"
	s := newStack(t, custody, env)
	c := ctx(t)
	if err := s.Rotate(c, stack.NewToken()); err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(c, `{"claims":{"sub":"short"}}`)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _, _, _ := s.JWKS(c)
	_, oldKid := verify(t, tok, jwks)
	if err := s.Rotate(c, stack.NewToken()); err != nil {
		t.Fatal(err)
	}
	retired := time.Now()
	if err := s.Cleanup(c); err != nil {
		t.Fatal(err)
	}
	jwks, _, _, _ = s.JWKS(c)
	if time.Since(retired) < 2*time.Second {
		verify(t, tok, jwks) // the token is alive, so its key is still published
	}
	time.Sleep(time.Until(retired.Add(2*time.Second + 200*time.Millisecond)))
	if err := s.Cleanup(c); err != nil {
		t.Fatal(err)
	}
	jwks, _, _, _ = s.JWKS(c)
	if strings.Contains(string(jwks), oldKid) {
		t.Fatalf("retired key %s still published after its tokens expired: %s", oldKid, jwks)
	}
}

// A secret written by cdk-jwks-rotation is adopted: the signer signs with
// its key, and rotation carries it on as a retired key.
func TestAdoptsCDKJWKSRotationSecret(t *testing.T) { allCustodies(t, testAdoptsCDKJWKSRotationSecret) }

func testAdoptsCDKJWKSRotationSecret(t *testing.T, custody string) {
	s := newStack(t, custody, compressed())
	c := ctx(t)
	record, err := os.ReadFile("../pkg/keys/testdata/cdk-jwks-rotation-es256.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SM.PutSecretValue(c, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(s.SecretARN), SecretString: aws.String(string(record)),
	}); err != nil {
		t.Fatal(err)
	}
	if custody == "parameterstore" {
		// Signers read the parameter, which the rotator writes: the hourly
		// cleanup (here run at once) copies the adopted key there.
		if err := s.Cleanup(c); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := s.Sign(c, hotsockPayload)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Rotate(c, stack.NewToken()); err != nil {
		t.Fatal(err)
	}
	jwks, _, _, _ := s.JWKS(c)
	if _, kid := verify(t, tok, jwks); kid != "cdk-es256" {
		t.Fatalf("kid %s, want the construct's cdk-es256", kid)
	}
	tok2, err := s.Sign(c, hotsockPayload)
	if err != nil {
		t.Fatal(err)
	}
	if _, kid := verify(t, tok2, jwks); kid == "cdk-es256" {
		t.Fatal("still signing with the adopted key after rotation")
	}
}
