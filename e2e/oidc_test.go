package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/golang-jwt/jwt/v5"

	"jwks-issuer/internal/stack"
	"jwks-issuer/pkg/keys"
)

// newIssuerStack is a stack whose issuer is an edge in front of its bucket.
func newIssuerStack(t *testing.T, custody string, env map[string]string) (*stack.Stack, *stack.Edge) {
	t.Helper()
	e, err := stack.StartEdge()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	env["ISSUER_URL"] = e.URL
	s := newStack(t, custody, env)
	e.Front(s)
	return s, e
}

// go-oidc discovers the issuer through the edge and verifies tokens from the
// real signer before and after a rotation, with the audience and the issuer
// checked; a token that differs only in iss is refused.
func TestTokensVerifyThroughDiscovery(t *testing.T) {
	allCustodies(t, testTokensVerifyThroughDiscovery)
}

func testTokensVerifyThroughDiscovery(t *testing.T, custody string) {
	s, edge := newIssuerStack(t, custody, compressed())
	c := ctx(t)
	if err := s.Rotate(c, stack.NewToken()); err != nil {
		t.Fatal(err)
	}
	payload := fmt.Sprintf(`{"claims":{"iss":%q,"aud":"hotsock","sub":"user-1"},"ttl":30,"setIat":true}`, edge.URL)
	before, err := s.Sign(c, payload)
	if err != nil {
		t.Fatal(err)
	}
	provider, err := oidc.NewProvider(c, edge.URL)
	if err != nil {
		t.Fatalf("go-oidc discovery of %s: %v", edge.URL, err)
	}
	verifier := provider.Verifier(&oidc.Config{ClientID: "hotsock"})
	if _, err := verifier.Verify(c, before); err != nil {
		t.Fatalf("go-oidc refuses a token of the current key: %v", err)
	}
	if err := s.Rotate(c, stack.NewToken()); err != nil {
		t.Fatal(err)
	}
	after, err := s.Sign(c, payload)
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"before the rotation": before, "after the rotation": after} {
		if _, err := verifier.Verify(c, tok); err != nil {
			t.Errorf("go-oidc refuses the token signed %s: %v", name, err)
		}
	}
	if _, err := provider.Verifier(&oidc.Config{ClientID: "someone-else"}).Verify(c, after); err == nil {
		t.Error("go-oidc accepts a token for another audience")
	}
	if custody == "secretsmanager" {
		forged := resign(t, s, after, map[string]any{"iss": "https://issuer.example.com"})
		if _, err := verifier.Verify(c, forged); err == nil || !strings.Contains(err.Error(), "issuer") {
			t.Errorf("go-oidc on a token whose iss differs: %v, want an issuer mismatch", err)
		}
	}
	verifyNodeJose(t, edge.URL, "hotsock", before, after)

	// The discovery document deleted by mistake comes back with cleanup.
	discoveryKey := ".well-known/openid-configuration"
	good := object(t, s, discoveryKey)
	if _, err := s.S3.DeleteObject(c, &s3.DeleteObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(discoveryKey)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Cleanup(c); err != nil {
		t.Fatal(err)
	}
	if got := object(t, s, discoveryKey); got != good {
		t.Fatalf("discovery document after cleanup:\n%s\nwant\n%s", got, good)
	}
}

func object(t *testing.T, s *stack.Stack, key string) string {
	t.Helper()
	out, err := s.S3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, _ := io.ReadAll(out.Body)
	return string(b)
}

// resign returns tok with claims changed, signed again with the current key
// read from the secret: the same key and kid, so that only the change can
// make a verifier refuse it.
func resign(t *testing.T, s *stack.Stack, tok string, changes map[string]any) string {
	t.Helper()
	out, err := s.SM.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(s.SecretARN), VersionStage: aws.String("AWSCURRENT"),
	})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := keys.ParseRecord([]byte(aws.ToString(out.SecretString)))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := rec.PrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil {
		t.Fatal(err)
	}
	for k, v := range changes {
		claims[k] = v
	}
	forged := jwt.NewWithClaims(jwt.GetSigningMethod(string(rec.Alg)), claims)
	forged.Header["kid"] = rec.Kid
	signed, err := forged.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// verifyNodeJose verifies tokens with node's jose, which discovers the key
// set's address from the issuer's discovery document and checks iss and
// aud.
func verifyNodeJose(t *testing.T, issuer, audience string, tokens ...string) {
	t.Helper()
	dir := nodeModules(t, "jose@5")
	script := `
const { createRemoteJWKSet, jwtVerify } = require("jose");
const [issuer, audience, ...tokens] = process.argv.slice(1);
(async () => {
  const discovery = await (await fetch(issuer + "/.well-known/openid-configuration")).json();
  if (discovery.issuer !== issuer) throw new Error("discovery issuer " + discovery.issuer);
  const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
  for (const token of tokens) {
    const { payload, protectedHeader } = await jwtVerify(token, jwks, {
      issuer, audience, algorithms: discovery.id_token_signing_alg_values_supported, clockTolerance: 60 });
    console.log(protectedHeader.kid, payload.iss);
  }
})().catch((e) => { console.error(e); process.exit(1); });
`
	cmd := exec.Command("node", append([]string{"-e", script, issuer, audience}, tokens...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node jose refuses a token: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), " "+issuer+"\n"); n != len(tokens) {
		t.Fatalf("node jose verified %d of %d tokens:\n%s", n, len(tokens), out)
	}
}

// nodeModules installs npm packages into a directory of the test's and
// returns it. It skips the test only where node itself is missing.
func nodeModules(t *testing.T, pkgs ...string) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: the node verifiers were not run (install Node.js 20 to run them)")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"private":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("npm", append([]string{"install", "--no-audit", "--no-fund", "--silent"}, pkgs...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm install %v: %v\n%s\n(the npm registry must be reachable)", pkgs, err, out)
	}
	return dir
}
