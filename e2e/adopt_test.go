package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/golang-jwt/jwt/v5"

	"jwks-issuer/internal/stack"
)

// writeHotsockKey writes a key pair the way the hotsock jwt-issuer's key
// generator does: PKCS #8 bytes under an "EC PRIVATE KEY" header at
// /jwt-issuer/stack/<name>/<uuid>/private-key, and the PKIX public key beside
// it. It returns the private key's parameter name, the kid (the uuid) and
// the public key PEM that stack hands its users.
func writeHotsockKey(t *testing.T) (name, kid string, priv *ecdsa.PrivateKey, publicPEM []byte) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	pub, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	publicPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	kid = strings.ToLower(stack.NewToken())
	prefix := "/jwt-issuer/stack/chat-" + kid[:8] + "/" + kid
	client := ssm.NewFromConfig(stack.Config(moto))
	for n, v := range map[string][]byte{
		"/private-key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}),
		"/public-key":  publicPEM,
	} {
		if _, err := client.PutParameter(context.Background(), &ssm.PutParameterInput{
			Name: aws.String(prefix + n), Value: aws.String(string(v)), Type: ssmtypes.ParameterTypeSecureString,
		}); err != nil {
			t.Fatal(err)
		}
	}
	return prefix + "/private-key", kid, priv, publicPEM
}

// hotsockToken signs claims the way the hotsock jwt-issuer does: golang-jwt,
// ES256, its kid.
func hotsockToken(t *testing.T, priv *ecdsa.PrivateKey, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"aud": "hotsock", "exp": time.Now().Add(time.Minute).Unix()})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// verifyWithPEM checks a token against a bare public key, as a verifier
// configured for the hotsock jwt-issuer does.
func verifyWithPEM(t *testing.T, tok string, publicPEM []byte) {
	t.Helper()
	block, _ := pem.Decode(publicPEM)
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithLeeway(time.Minute)); err != nil {
		t.Fatalf("the hotsock verifier refuses a token: %v", err)
	}
}

// Taking over a running hotsock jwt-issuer: its key becomes our first
// CURRENT with its kid, so its verifiers (holding the bare public key) and
// ours (reading the JWKS) both accept both issuers' tokens until the
// adopted key has retired and its tokens have expired.
func TestAdoptsAHotsockIssuer(t *testing.T) {
	for _, custody := range []string{"secretsmanager", "parameterstore"} {
		t.Run(custody, func(t *testing.T) {
			name, kid, priv, publicPEM := writeHotsockKey(t)
			env := compressed()
			env["MAX_TOKEN_TTL_SECONDS"] = "2" // retention of a few seconds
			env["ADOPT_KEY"] = "ssm:" + name
			s := newStack(t, custody, env)
			c := ctx(t)
			if err := s.Rotate(c, stack.NewToken()); err != nil {
				t.Fatal(err)
			}
			jwks, _, _, _ := s.JWKS(c)
			// (a) a token of the running hotsock issuer verifies against our key set;
			if _, got := verify(t, hotsockToken(t, priv, kid), jwks); got != kid {
				t.Fatalf("kid %s, want the adopted %s", got, kid)
			}
			// (b) our signer signs with the adopted key, which hotsock's
			// verifiers accept with the public key they hold.
			ours, err := s.Sign(c, `{"claims":{"aud":"hotsock"},"ttl":2}`)
			if err != nil {
				t.Fatal(err)
			}
			if _, got := verify(t, ours, jwks); got != kid {
				t.Fatalf("our signer signs with %s, want the adopted %s", got, kid)
			}
			verifyWithPEM(t, ours, publicPEM)
			// (c) after the next rotation both still verify, until retention ends.
			if err := s.Rotate(c, stack.NewToken()); err != nil {
				t.Fatal(err)
			}
			retired := time.Now()
			jwks, _, _, _ = s.JWKS(c)
			verify(t, ours, jwks)
			verify(t, hotsockToken(t, priv, kid), jwks)
			next, err := s.Sign(c, `{"claims":{"aud":"hotsock"},"ttl":2}`)
			if err != nil {
				t.Fatal(err)
			}
			if _, got := verify(t, next, jwks); got == kid {
				t.Fatal("still signing with the adopted key after the rotation")
			}
			time.Sleep(time.Until(retired.Add(2500 * time.Millisecond)))
			if err := s.Cleanup(c); err != nil {
				t.Fatal(err)
			}
			if jwks, _, _, _ = s.JWKS(c); strings.Contains(string(jwks), kid) {
				t.Fatalf("the adopted kid is still published after retention: %s", jwks)
			}
		})
	}
}

// Taking over a hotsock issuer in KMS mode: the existing KMS key is adopted
// by reference, keeps its key id as the kid, and signs our tokens.
func TestAdoptsAKMSKey(t *testing.T) {
	c := ctx(t)
	km := kms.NewFromConfig(stack.Config(moto))
	key, err := km.CreateKey(c, &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecEccNistP256, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
	if err != nil {
		t.Fatal(err)
	}
	arn, kid := aws.ToString(key.KeyMetadata.Arn), aws.ToString(key.KeyMetadata.KeyId)
	env := compressed()
	env["ADOPT_KEY"] = "kms:" + arn
	s := newStack(t, "kms", env)
	if err := s.Rotate(c, stack.NewToken()); err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(c, hotsockPayload)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _, _, _ := s.JWKS(c)
	if _, got := verify(t, tok, jwks); got != kid {
		t.Fatalf("signed with %s, want the adopted KMS key's id %s", got, kid)
	}
	pub, err := km.GetPublicKey(c, &kms.GetPublicKeyInput{KeyId: aws.String(kid)})
	if err != nil {
		t.Fatal(err)
	}
	verifyWithPEM(t, tok, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub.PublicKey}))
	d, _ := km.DescribeKey(c, &kms.DescribeKeyInput{KeyId: aws.String(kid)})
	if d.KeyMetadata.KeyState != kmstypes.KeyStateEnabled {
		t.Fatalf("the adopted key is %s", d.KeyMetadata.KeyState)
	}
}
