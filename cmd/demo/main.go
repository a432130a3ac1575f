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
	"io"
	"net/http"
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
	// A local stand-in for CloudFront serves the bucket; its address is the
	// issuer, as the distribution's domain is when deployed.
	edge, err := stack.StartEdge()
	if err != nil {
		return err
	}
	defer edge.Close()
	// Time is compressed so that the demo can rotate twice in a second; the
	// deployed defaults wait a day between publishing a key and signing with it.
	s, err := stack.New(ctx, moto, signerBin, rotatorBin, map[string]string{
		"MAX_TOKEN_TTL_SECONDS":    "3600",
		"KEY_CACHE_SECONDS":        "0",
		"JWKS_MAX_AGE_SECONDS":     "0",
		"ACTIVATION_GRACE_SECONDS": "0",
		"ISSUER_URL":               edge.URL,
	})
	if err != nil {
		return err
	}
	defer s.Stop()
	edge.Front(s)
	fmt.Println("  secret", s.SecretARN)
	fmt.Printf("  jwks   s3://%s/%s\n", s.Bucket, s.Key)
	fmt.Println("  issuer", edge.URL)

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
	discovery, err := fetch(ctx, edge.URL+"/.well-known/openid-configuration")
	if err != nil {
		return err
	}
	fmt.Printf("  discovery document (%s/.well-known/openid-configuration):\n%s\n", edge.URL, indent(discovery))

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

	step("verifying both tokens as a verifier does: discovery, then the key set at its jwks_uri")
	jwks, err = discover(ctx, edge.URL)
	if err != nil {
		return err
	}
	oldKid, err := verify(first, jwks, edge.URL)
	if err != nil {
		return fmt.Errorf("the token from before the rotation: %w", err)
	}
	newKid, err := verify(second, jwks, edge.URL)
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

// fetch GETs a URL of the edge.
func fetch(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s %v", url, res.Status, err)
	}
	return body, nil
}

// discover reads the issuer's discovery document and the key set it names.
func discover(ctx context.Context, issuer string) ([]byte, error) {
	doc, err := fetch(ctx, issuer+"/.well-known/openid-configuration")
	if err != nil {
		return nil, err
	}
	var d struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(doc, &d); err != nil || d.Issuer != issuer {
		return nil, fmt.Errorf("discovery document of %s names issuer %q (%v)", issuer, d.Issuer, err)
	}
	fmt.Println("  jwks_uri", d.JWKSURI)
	return fetch(ctx, d.JWKSURI)
}

// verify checks a token with jwx against the key set, as a verifier would,
// and that its iss is the issuer.
func verify(token string, jwks []byte, issuer string) (string, error) {
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
		Exp int64  `json:"exp"`
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(msg.Payload(), &claims); err != nil || time.Unix(claims.Exp, 0).Before(time.Now()) {
		return "", fmt.Errorf("expired or unreadable claims")
	}
	if claims.Iss != issuer {
		return "", fmt.Errorf("iss is %q, want the issuer %q", claims.Iss, issuer)
	}
	return kid, nil
}
