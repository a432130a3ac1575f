package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"jwks-issuer/internal/stack"
	"jwks-issuer/pkg/keys"
)

// A rotation cycle in KMS custody through the real binaries: every key is a
// KMS key, no secret version ever holds private key material, tokens signed
// by kms:Sign verify with independent libraries, a retired key's KMS key
// reaches PendingDeletion once retention has passed (via cleanup), and an
// emergency disables the revoked keys' KMS keys at once.
func TestRotationInKMSCustody(t *testing.T) {
	env := compressed()
	env["MAX_TOKEN_TTL_SECONDS"] = "2"
	s := newStack(t, "kms", env)
	c := ctx(t)
	km := kms.NewFromConfig(stack.Config(moto))
	noPrivateKeys := func() {
		t.Helper()
		ids, err := s.SM.ListSecretVersionIds(c, &secretsmanager.ListSecretVersionIdsInput{
			SecretId: aws.String(s.SecretARN), IncludeDeprecated: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range ids.Versions {
			out, err := s.SM.GetSecretValue(c, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.SecretARN), VersionId: v.VersionId})
			if err != nil {
				t.Fatal(err)
			}
			if value := aws.ToString(out.SecretString); strings.Contains(value, "PRIVATE KEY") || strings.Contains(value, "privateKeyPem") {
				t.Fatalf("secret version %s holds private key material", aws.ToString(v.VersionId))
			}
		}
	}
	current := func() keys.Record {
		t.Helper()
		out, err := s.SM.GetSecretValue(c, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.SecretARN), VersionStage: aws.String("AWSCURRENT")})
		if err != nil {
			t.Fatal(err)
		}
		rec, err := keys.ParseRecord([]byte(aws.ToString(out.SecretString)))
		if err != nil {
			t.Fatal(err)
		}
		if rec.KMSKeyID == "" || rec.PrivateKeyPem != "" {
			t.Fatalf("AWSCURRENT record %s: want a KMS key and no private key", rec.Kid)
		}
		return rec
	}
	state := func(arn string) string {
		t.Helper()
		out, err := km.DescribeKey(c, &kms.DescribeKeyInput{KeyId: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		return string(out.KeyMetadata.KeyState)
	}

	first := begin(t, s)
	for _, step := range stack.Steps {
		if err := s.Step(c, step, first); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		noPrivateKeys()
	}
	old := current()
	var tokens []string
	for range 50 {
		tok, err := s.Sign(c, `{"claims":{"aud":"hotsock"},"setJti":true}`)
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	jwks, _, _, _ := s.JWKS(c)
	for _, tok := range tokens {
		if _, kid := verify(t, tok, jwks); kid != old.Kid {
			t.Fatalf("kid %s, want %s", kid, old.Kid)
		}
	}

	if err := s.Rotate(c, stack.NewToken()); err != nil {
		t.Fatal(err)
	}
	retired := time.Now()
	noPrivateKeys()
	cur := current()
	if cur.KMSKeyID == old.KMSKeyID {
		t.Fatal("rotation did not move to a new KMS key")
	}
	tok, err := s.Sign(c, `{"claims":{"aud":"hotsock"},"setJti":true}`)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _, _, _ = s.JWKS(c)
	verify(t, tok, jwks)
	verify(t, tokens[0], jwks) // the old key still verifies its live tokens
	verifyPyJWT(t, jwks, tokens[0], tok)
	if st := state(old.KMSKeyID); st != "Enabled" {
		t.Fatalf("retired key's KMS key is %s within retention, want Enabled", st)
	}

	time.Sleep(time.Until(retired.Add(2*time.Second + 200*time.Millisecond)))
	if err := s.Cleanup(c); err != nil {
		t.Fatal(err)
	}
	jwks, _, _, _ = s.JWKS(c)
	if strings.Contains(string(jwks), old.Kid) {
		t.Fatalf("retired key %s still published after retention", old.Kid)
	}
	if st := state(old.KMSKeyID); st != "PendingDeletion" {
		t.Fatalf("retired key's KMS key is %s after retention and cleanup, want PendingDeletion", st)
	}
	if st := state(cur.KMSKeyID); st != "Enabled" {
		t.Fatalf("current key's KMS key is %s, want Enabled", st)
	}

	// Emergency: the current key's KMS key is disabled in createSecret.
	tagRollover(t, s)
	if err := s.Step(c, "createSecret", begin(t, s)); err != nil {
		t.Fatal(err)
	}
	if st := state(cur.KMSKeyID); st != "Disabled" {
		t.Fatalf("revoked key's KMS key is %s after the emergency createSecret, want Disabled", st)
	}
	noPrivateKeys()
}
