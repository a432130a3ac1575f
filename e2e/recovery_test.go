package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"jwks-issuer/internal/stack"
	"jwks-issuer/internal/testenv"
)

// The emergency runbook, through the real binaries: tag the secret, rotate.
func TestEmergencyRollover(t *testing.T) { allCustodies(t, testEmergencyRollover) }

func testEmergencyRollover(t *testing.T, custody string) {
	env := compressed()
	env["ACTIVATION_GRACE_SECONDS"], env["JWKS_MAX_AGE_SECONDS"] = "86400", "300"
	s := newStack(t, custody, env)
	c := ctx(t)
	if err := s.Rotate(c, stack.NewToken()); err != nil {
		t.Fatal(err)
	}
	leaked, err := s.Sign(c, hotsockPayload)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _, _, _ := s.JWKS(c)
	_, leakedKid := verify(t, leaked, jwks)
	nextKid := otherKid(t, jwks, leakedKid)

	// A plain rotate-secret follows the normal guard.
	if err := s.Step(c, "createSecret", begin(t, s)); err == nil || !strings.Contains(err.Error(), "rotation may proceed at") {
		t.Fatalf("plain rotation inside the grace: %v, want a refusal", err)
	}

	tagRollover(t, s)
	tok := begin(t, s)
	if err := s.Step(c, "createSecret", tok); err != nil {
		t.Fatalf("emergency createSecret: %v", err)
	}
	jwks, _, _, _ = s.JWKS(c)
	for _, kid := range []string{leakedKid, nextKid} {
		if strings.Contains(string(jwks), kid) {
			t.Fatalf("revoked key %s still published after createSecret: %s", kid, jwks)
		}
	}
	if _, _, err := check(leaked, jwks); err == nil {
		t.Fatal("a token of the revoked key still verifies")
	}
	for _, step := range stack.Steps[1:] {
		if err := s.Step(c, step, tok); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	fresh, err := s.Sign(c, hotsockPayload)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _, _, _ = s.JWKS(c)
	_, freshKid := verify(t, fresh, jwks)
	if freshKid == leakedKid || freshKid == nextKid {
		t.Fatal("signing with a revoked key after the rollover")
	}
	d, _ := s.SM.DescribeSecret(c, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.SecretARN)})
	for _, tag := range d.Tags {
		if aws.ToString(tag.Key) == "jwks-issuer:rollover" {
			t.Fatal("the rollover mark was not cleared at finish")
		}
	}
	// Revocation is permanent: later rotations and cleanups never bring the keys back.
	if err := s.Cleanup(c); err != nil {
		t.Fatal(err)
	}
	jwks, _, _, _ = s.JWKS(c)
	if strings.Contains(string(jwks), leakedKid) || strings.Contains(string(jwks), nextKid) {
		t.Fatalf("revoked key back after cleanup: %s", jwks)
	}
}

func tagRollover(t *testing.T, s *stack.Stack) {
	t.Helper()
	_, err := s.SM.TagResource(context.Background(), &secretsmanager.TagResourceInput{
		SecretId: aws.String(s.SecretARN),
		Tags:     []smtypes.Tag{{Key: aws.String("jwks-issuer:rollover"), Value: aws.String("emergency")}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func otherKid(t *testing.T, jwks []byte, not string) string {
	t.Helper()
	for _, part := range strings.Split(string(jwks), `"kid":"`)[1:] {
		if kid := part[:strings.IndexByte(part, '"')]; kid != not {
			return kid
		}
	}
	t.Fatalf("no second key in %s", jwks)
	return ""
}

// A jwks.json deleted, truncated or replaced by a stale copy is restored by
// the next cleanup, from the secret alone.
func TestCleanupRestoresTheKeySet(t *testing.T) { allCustodies(t, testCleanupRestoresTheKeySet) }

func testCleanupRestoresTheKeySet(t *testing.T, custody string) {
	s := newStack(t, custody, compressed())
	c := ctx(t)
	if err := s.Rotate(c, stack.NewToken()); err != nil {
		t.Fatal(err)
	}
	stale, _, _, _ := s.JWKS(c)
	if err := s.Rotate(c, stack.NewToken()); err != nil {
		t.Fatal(err)
	}
	good, _, _, _ := s.JWKS(c)
	put := func(body string) {
		_, err := s.S3.PutObject(c, &s3.PutObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.Key), Body: strings.NewReader(body)})
		if err != nil {
			t.Fatal(err)
		}
	}
	for name, damage := range map[string]func(){
		"deleted": func() {
			if _, err := s.S3.DeleteObject(c, &s3.DeleteObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.Key)}); err != nil {
				t.Fatal(err)
			}
		},
		"truncated":         func() { put(string(good[:len(good)/2])) },
		"overwritten stale": func() { put(string(stale)) },
	} {
		t.Run(name, func(t *testing.T) {
			damage()
			if err := s.Cleanup(c); err != nil {
				t.Fatal(err)
			}
			got, cacheControl, contentType, err := s.JWKS(c)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(good) || cacheControl != "public, max-age=0" || contentType != "application/json" {
				t.Fatalf("restored %s (%q, %q), want %s", got, cacheControl, contentType, good)
			}
		})
	}
}

// A configuration that breaks an invariant stops the rotator at start with
// a message naming both values.
func TestRotatorRefusesUnsafeConfiguration(t *testing.T) {
	env := append(moto.Env(),
		"SECRET_ID=x", "JWKS_BUCKET=y", "ACTIVATION_GRACE_SECONDS=60", "JWKS_MAX_AGE_SECONDS=300")
	f := testenv.StartFunction(t, rotatorBin, env)
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := f.Invoke(c, []byte(`{"action":"cleanup"}`))
	const want = "ACTIVATION_GRACE_SECONDS (60) is below JWKS_MAX_AGE_SECONDS (300)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("invoke error %v, want the init error naming both values", err)
	}
	if !strings.Contains(f.Logs(), want) {
		t.Fatalf("logs do not name both values:\n%s", f.Logs())
	}
	for _, bad := range []struct{ env, want string }{
		{"KEY_ALGORITHM=HS256", "supported are ES256, ES384, RS256"},
		{"KEY_CACHE_SECONDS=-1", "KEY_CACHE_SECONDS is -1"},
		{"MAX_TOKEN_TTL_SECONDS=soon", `MAX_TOKEN_TTL_SECONDS is "soon", must be a whole number`},
	} {
		f := testenv.StartFunction(t, rotatorBin, append(moto.Env(), "SECRET_ID=x", "JWKS_BUCKET=y", bad.env))
		if _, err := f.Invoke(c, []byte(`{"action":"cleanup"}`)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want %q", bad.env, err, bad.want)
		}
	}
}

// Steps Secrets Manager did not start are refused by the real rotator and
// leave the versions, labels, tags and the published key set byte-identical:
// no one allowed to invoke the rotator can bring back a revoked key or
// promote NEXT before its grace.
func TestForgedStepsAreRefused(t *testing.T) { allCustodies(t, testForgedStepsAreRefused) }

func testForgedStepsAreRefused(t *testing.T, custody string) {
	env := compressed()
	env["ACTIVATION_GRACE_SECONDS"], env["JWKS_MAX_AGE_SECONDS"] = "86400", "300"
	s := newStack(t, custody, env)
	c := ctx(t)
	if err := s.Rotate(c, stack.NewToken()); err != nil {
		t.Fatal(err)
	}
	leakedVersion := versionWith(t, s, "AWSCURRENT")
	tagRollover(t, s)
	if err := s.Rotate(c, stack.NewToken()); err != nil {
		t.Fatalf("emergency rollover: %v", err)
	}
	forged := map[string]string{
		"the leaked key's version (AWSPREVIOUS)": leakedVersion,
		"NEXT's version, inside its grace":       versionWith(t, s, "NEXT"),
		"an unknown version":                     stack.NewToken(),
	}
	before, err := s.Snapshot(c)
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range forged {
		for _, step := range stack.Steps {
			err := s.Step(c, step, tok)
			if err == nil || !strings.Contains(err.Error(), step+" refused: ClientRequestToken "+tok) {
				t.Errorf("%s with %s: %v, want a refusal naming the step and token", step, name, err)
			}
		}
	}
	if after, _ := s.Snapshot(c); after != before {
		t.Fatalf("refused steps changed state:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// rotate-secret --no-rotate-immediately: Secrets Manager makes a pending
	// version, runs testSecret alone against it, then takes the label off.
	tok := begin(t, s)
	if err := s.Step(c, "testSecret", tok); err != nil {
		t.Fatalf("testSecret of --no-rotate-immediately: %v", err)
	}
	if _, err := s.SM.UpdateSecretVersionStage(c, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(s.SecretARN), VersionStage: aws.String("AWSPENDING"), RemoveFromVersionId: aws.String(tok),
	}); err != nil {
		t.Fatal(err)
	}
	if after, _ := s.Snapshot(c); after != before {
		t.Fatalf("--no-rotate-immediately changed state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// versionWith returns the id of the version carrying stage.
func versionWith(t *testing.T, s *stack.Stack, stage string) string {
	t.Helper()
	stages, err := s.Stages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for v, labels := range stages {
		if slices.Contains(labels, stage) {
			return v
		}
	}
	t.Fatalf("no version carries %s: %v", stage, stages)
	return ""
}
