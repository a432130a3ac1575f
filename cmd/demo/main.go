// Command demo runs jwks-issuer on this machine with no AWS account:
// moto_server stands in for Secrets Manager and S3, and the real Lambda
// binaries run under a local Lambda Runtime API. It rotates twice and shows
// that a token issued before a rotation still verifies after it.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"jwks-issuer/internal/stack"
	"jwks-issuer/internal/testenv"
)

const payload = `{"claims":{"aud":"hotsock","channels":{"chat":{"subscribe":true}}},"ttl":30}`

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	step("starting moto_server (Secrets Manager and S3 on this machine)")
	moto, err := testenv.StartMotoProcess()
	if err != nil {
		return err
	}
	defer moto.Stop()
	fmt.Println("  endpoint", moto.Endpoint)

	step("building the signer and rotator bootstrap binaries")
	defer testenv.RemoveBuilds()
	signerBin, err := testenv.BuildLambdaBinary("jwks-issuer/functions/signer")
	if err != nil {
		return err
	}
	rotatorBin, err := testenv.BuildLambdaBinary("jwks-issuer/functions/rotator")
	if err != nil {
		return err
	}

	step("creating the key secret ({}) and the JWKS bucket, starting both functions")
	// Time is compressed so that the demo can rotate twice in a second; the
	// deployed defaults wait a day between publishing a key and signing with it.
	s, err := stack.New(ctx, moto, signerBin, rotatorBin, map[string]string{
		"MAX_TOKEN_TTL_SECONDS":    "3600",
		"KEY_CACHE_SECONDS":        "0",
		"JWKS_MAX_AGE_SECONDS":     "0",
		"ACTIVATION_GRACE_SECONDS": "0",
	})
	if err != nil {
		return err
	}
	defer s.Stop()
	fmt.Println("  secret", s.SecretARN)
	fmt.Printf("  jwks   s3://%s/%s\n", s.Bucket, s.Key)

	step("first rotation: createSecret, setSecret, testSecret, finishSecret")
	if err := s.Rotate(ctx, stack.NewToken()); err != nil {
		return err
	}

	step("issuing a token: " + payload)
	first, err := s.Sign(ctx, payload)
	if err != nil {
		return err
	}
	fmt.Println("  token ", first)
	header, claims := decode(first)
	fmt.Println("  header", header)
	fmt.Println("  claims", claims)
	jwks, cacheControl, _, err := s.JWKS(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("  published key set (Cache-Control: %s):\n%s\n", cacheControl, indent(jwks))

	step("second rotation")
	if err := s.Rotate(ctx, stack.NewToken()); err != nil {
		return err
	}
	second, err := s.Sign(ctx, payload)
	if err != nil {
		return err
	}
	jwks, _, _, err = s.JWKS(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("  published key set:\n%s\n", indent(jwks))

	step("verifying both tokens against the published key set")
	oldKid, err := verify(first, jwks)
	if err != nil {
		return fmt.Errorf("the token from before the rotation: %w", err)
	}
	newKid, err := verify(second, jwks)
	if err != nil {
		return fmt.Errorf("the token from after the rotation: %w", err)
	}
	fmt.Printf("  token issued before the rotation verifies (kid %s)\n", oldKid)
	fmt.Printf("  token issued after the rotation verifies  (kid %s)\n", newKid)
	if oldKid == newKid {
		return fmt.Errorf("the new token still carries the old kid %s", oldKid)
	}
	fmt.Println("\ndone: the key rotated and no valid token broke.")
	return nil
}

func step(s string) { fmt.Printf("\n==> %s\n", s) }

func decode(token string) (header, claims string) {
	parts := strings.Split(token, ".")
	h, _ := base64.RawURLEncoding.DecodeString(parts[0])
	c, _ := base64.RawURLEncoding.DecodeString(parts[1])
	return string(h), string(c)
}

func indent(b []byte) string {
	var out bytes.Buffer
	if json.Indent(&out, b, "    ", "  ") != nil {
		return string(b)
	}
	return "    " + out.String()
}

// verify checks a token with jwx against the key set, as a verifier would.
func verify(token string, jwks []byte) (string, error) {
	set, err := jwk.Parse(jwks)
	if err != nil {
		return "", err
	}
	msg, err := jws.Parse([]byte(token))
	if err != nil {
		return "", err
	}
	kid, _ := msg.Signatures()[0].ProtectedHeaders().KeyID()
	if _, err := jws.Verify([]byte(token), jws.WithKeySet(set, jws.WithRequireKid(true))); err != nil {
		return "", err
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(msg.Payload(), &claims); err != nil || time.Unix(claims.Exp, 0).Before(time.Now()) {
		return "", fmt.Errorf("expired or unreadable claims")
	}
	return kid, nil
}
