// Package e2e tests the issuer as AWS runs it: the real bootstrap binaries
// under a Lambda Runtime API server, AWS calls going to moto_server, and
// tokens checked by libraries independent of the issuer.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"jwks-issuer/internal/stack"
	"jwks-issuer/internal/testenv"
)

var (
	moto       *testenv.Moto
	signerBin  string
	rotatorBin string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if moto, err = testenv.StartMotoProcess(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer moto.Stop()
	defer testenv.RemoveBuilds()
	for _, b := range []struct {
		pkg string
		out *string
	}{{"jwks-issuer/functions/signer", &signerBin}, {"jwks-issuer/functions/rotator", &rotatorBin}} {
		if *b.out, err = testenv.BuildLambdaBinary(b.pkg); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: build:", err)
			return 1
		}
	}
	return m.Run()
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

// custodies are the places private keys can be kept: the suite proves
// each of them.
var custodies = []string{"secretsmanager", "kms", "parameterstore"}

// allCustodies runs a test in every custody mode.
func allCustodies(t *testing.T, test func(t *testing.T, custody string)) {
	for _, custody := range custodies {
		t.Run(custody, func(t *testing.T) { test(t, custody) })
	}
}

func newStack(t *testing.T, custody string, env map[string]string) *stack.Stack {
	t.Helper()
	env["KEY_CUSTODY"] = custody
	if custody == "kms" {
		env["KMS_DELETION_WINDOW_DAYS"] = "7"
		// moto is shared: a tag of its own keeps the orphan scan to this stack's keys.
		env["KMS_KEY_TAG"] = "e2e-" + stack.NewToken()
	}
	if custody == "parameterstore" {
		env["SIGNING_KEY_PARAMETER"] = "/jwks-issuer/e2e-" + stack.NewToken() + "/signing-key"
	}
	s, err := stack.New(context.Background(), moto, signerBin, rotatorBin, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("rotator logs:\n%s\nsigner logs:\n%s", s.Rotator.Logs(), s.Signer.Logs())
		}
		s.Stop()
	})
	return s
}

// begin starts a rotation as Secrets Manager does before it invokes
// createSecret, and returns its token.
func begin(t *testing.T, s *stack.Stack) string {
	t.Helper()
	tok := stack.NewToken()
	if err := s.Begin(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	return tok
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// verify checks a token with golang-jwt against keys parsed by jwx from the
// published set: neither is the issuer's own code.
func verify(t *testing.T, token string, jwks []byte) (jwt.MapClaims, string) {
	t.Helper()
	claims, kid, err := check(token, jwks)
	if err != nil {
		t.Fatalf("token does not verify against the published key set: %v", err)
	}
	return claims, kid
}

func check(token string, jwks []byte) (jwt.MapClaims, string, error) {
	set, err := jwk.Parse(jwks)
	if err != nil {
		return nil, "", fmt.Errorf("parse jwks: %w", err)
	}
	claims := jwt.MapClaims{}
	var kid string
	_, err = jwt.ParseWithClaims(token, claims, func(tk *jwt.Token) (any, error) {
		kid, _ = tk.Header["kid"].(string)
		if tk.Header["typ"] != "JWT" {
			return nil, fmt.Errorf("typ %v", tk.Header["typ"])
		}
		key, ok := set.LookupKeyID(kid)
		if !ok {
			return nil, fmt.Errorf("kid %q not in the key set", kid)
		}
		var raw any
		if err := jwk.Export(key, &raw); err != nil {
			return nil, err
		}
		return raw, nil
	}, jwt.WithValidMethods([]string{"ES256", "ES384", "RS256"}), jwt.WithExpirationRequired(),
		// Tests use lifetimes of seconds: a loaded machine must not turn a
		// slow step into an expired token. The kid and signature are the point.
		jwt.WithLeeway(time.Minute))
	return claims, kid, err
}

// verifyPyJWT checks tokens with PyJWT, shelled out to Debian's python3
// (the one that has PyJWT).
func verifyPyJWT(t *testing.T, jwks []byte, tokens ...string) {
	t.Helper()
	const python = "/usr/bin/python3"
	if exec.Command(python, "-c", "import jwt, cryptography").Run() != nil {
		t.Skip("PyJWT with cryptography is not available to " + python)
	}
	script := `
import json, sys, jwt
jwks = jwt.PyJWKSet.from_json(sys.argv[1])
for tok in sys.argv[2:]:
    kid = jwt.get_unverified_header(tok)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    claims = jwt.decode(tok, key.key, algorithms=["ES256", "ES384", "RS256"], options={"verify_aud": False}, leeway=60)
    print(kid)
`
	out, err := exec.Command(python, append([]string{"-c", script, string(jwks)}, tokens...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("PyJWT rejects a token: %v\n%s", err, out)
	}
	if n := strings.Count(strings.TrimSpace(string(out)), "\n") + 1; n != len(tokens) {
		t.Fatalf("PyJWT verified %d of %d tokens: %s", n, len(tokens), out)
	}
}
