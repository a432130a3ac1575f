package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"jwks-issuer/internal/stack"
	"jwks-issuer/pkg/keys"
)

// Given the roles the template passes (SIGNER_ROLE_ARN, ROTATOR_ROLE_ARN),
// the real rotator makes every KMS key with its own policy: the account
// administers the key, and only those two roles may sign with it. The key
// names the secret it was made for, and cleanup still deletes a dropped
// key, since its policy proves the rotator made it.
func TestKMSKeysCarryTheStackPolicy(t *testing.T) {
	const (
		signerRole  = "arn:aws:iam::123456789012:role/e2e-SignerRole-0A1B2C"
		rotatorRole = "arn:aws:iam::123456789012:role/e2e-RotatorRole-3D4E5F"
	)
	env := compressed()
	env["MAX_TOKEN_TTL_SECONDS"] = "1"
	env["SIGNER_ROLE_ARN"], env["ROTATOR_ROLE_ARN"] = signerRole, rotatorRole
	s := newStack(t, "kms", env)
	c := ctx(t)
	km := kms.NewFromConfig(stack.Config(moto))
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
		return rec
	}
	keyID := func(arn string) *string { return aws.String(arn[strings.LastIndex(arn, "/")+1:]) }

	if err := s.Rotate(c, stack.NewToken()); err != nil {
		t.Fatal(err)
	}
	first := current()
	pol, err := km.GetKeyPolicy(c, &kms.GetKeyPolicyInput{KeyId: keyID(first.KMSKeyID), PolicyName: aws.String("default")})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Statement []struct {
			Principal struct{ AWS any }
			Action    []string
		}
	}
	if err := json.Unmarshal([]byte(aws.ToString(pol.Policy)), &doc); err != nil {
		t.Fatalf("key policy %s: %v", aws.ToString(pol.Policy), err)
	}
	signers := map[string]bool{}
	for _, st := range doc.Statement {
		var principals []string
		switch p := st.Principal.AWS.(type) {
		case string:
			principals = []string{p}
		case []any:
			for _, e := range p {
				principals = append(principals, e.(string))
			}
		}
		if slices.Contains(st.Action, "kms:Sign") || slices.Contains(st.Action, "kms:CreateGrant") || slices.Contains(st.Action, "kms:*") {
			for _, p := range principals {
				signers[p] = true
			}
		}
	}
	if len(signers) != 2 || !signers[signerRole] || !signers[rotatorRole] {
		t.Errorf("key policy %s lets %v sign or grant, want exactly the two roles", aws.ToString(pol.Policy), signers)
	}
	tags, err := km.ListResourceTags(c, &kms.ListResourceTagsInput{KeyId: keyID(first.KMSKeyID)})
	if err != nil {
		t.Fatal(err)
	}
	secretTagged := false
	for _, tag := range tags.Tags {
		if aws.ToString(tag.TagKey) == "jwks-issuer:secret" && aws.ToString(tag.TagValue) == s.SecretARN {
			secretTagged = true
		}
	}
	if !secretTagged {
		t.Errorf("KMS key %s is not tagged jwks-issuer:secret=%s: %v", first.KMSKeyID, s.SecretARN, tags.Tags)
	}

	// Rotate, wait out retention (T = 1 s, the rest 0), and clean up: the
	// retired key's KMS key goes.
	if err := s.Rotate(c, stack.NewToken()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond)
	if err := s.Cleanup(c); err != nil {
		t.Fatal(err)
	}
	out, err := km.DescribeKey(c, &kms.DescribeKeyInput{KeyId: keyID(first.KMSKeyID)})
	if err != nil {
		t.Fatal(err)
	}
	if st := string(out.KeyMetadata.KeyState); st != "PendingDeletion" {
		t.Errorf("the retired key's KMS key is %s after retention and cleanup, want PendingDeletion", st)
	}
	if s.Rotator.Logs() != "" && strings.Contains(s.Rotator.Logs(), "cannot prove it made") {
		t.Errorf("the rotator could not prove it made its own key:\n%s", s.Rotator.Logs())
	}
}
