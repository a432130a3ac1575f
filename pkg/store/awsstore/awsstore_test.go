package awsstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"jwks-issuer/internal/stack"
	"jwks-issuer/internal/testenv"
	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/awsstore"
	"jwks-issuer/pkg/store/s3store"
	"jwks-issuer/pkg/store/storetest"
)

// One moto_server serves the whole package: it is the slow part, and every
// test works on a secret and a bucket of its own.
var moto *testenv.Moto

func TestMain(m *testing.M) {
	var err error
	if moto, err = testenv.StartMotoProcess(); err != nil {
		fmt.Fprintln(os.Stderr, err) // says how to install moto_server when it is missing
		os.Exit(1)
	}
	code := m.Run()
	moto.Stop()
	os.Exit(code)
}

// motoConfig points an SDK config at moto explicitly, rather than through
// the process environment, which parallel tests would share.
func motoConfig(t *testing.T) aws.Config {
	t.Helper()
	return stack.Config(moto)
}

// uniqueName is a lowercase name valid for both a secret and a bucket.
func uniqueName(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + "-" + hex.EncodeToString(b)
}

// newSecret creates a secret as an operator would, with SecretString "{}",
// which gives it one version labelled AWSCURRENT.
func newSecret(t *testing.T) *awsstore.Secrets {
	t.Helper()
	s, _ := newSecretWithBegin(t)
	return s
}

// newSecretWithBegin also returns a function that starts a rotation with
// RotateSecret, as Secrets Manager does before it invokes createSecret.
func newSecretWithBegin(t *testing.T) (*awsstore.Secrets, func(token string) error) {
	t.Helper()
	client := awsstore.NewSecretsManagerClient(motoConfig(t))
	name := uniqueName(t, "jwks-test")
	_, err := client.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name:         &name,
		SecretString: aws.String(storetest.InitialValue),
	})
	if err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	begin := func(token string) error { return stack.BeginRotation(context.Background(), client, name, token) }
	return awsstore.NewSecrets(client, name), begin
}

func newObject(t *testing.T) *s3store.Object {
	t.Helper()
	client := s3store.NewClient(motoConfig(t))
	bucket := uniqueName(t, "jwks-test")
	if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	return s3store.NewObject(client, bucket, ".well-known/jwks.json")
}

func TestSecretsContract(t *testing.T) {
	storetest.RunSecrets(t, func(t *testing.T) store.Secrets { return newSecret(t) })
}

func TestBeginRotationContract(t *testing.T) {
	storetest.RunBeginRotation(t, func(t *testing.T) (store.Secrets, func(string) error) { return newSecretWithBegin(t) })
}

func TestParameterContract(t *testing.T) {
	client := awsstore.NewSSMClient(motoConfig(t))
	storetest.RunParameter(t, func(t *testing.T) store.Parameter {
		return awsstore.NewParameter(client, "/jwks-issuer/"+uniqueName(t, "test")+"/signing-key")
	})
}

func TestObjectsContract(t *testing.T) {
	storetest.RunObjects(t, func(t *testing.T) store.Objects { return newObject(t) })
}

func TestMissingSecretIsNotFound(t *testing.T) {
	t.Parallel()
	s := awsstore.NewSecrets(awsstore.NewSecretsManagerClient(motoConfig(t)), uniqueName(t, "absent"))
	if _, err := s.Describe(context.Background()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Describe of a missing secret: err = %v, want ErrNotFound", err)
	}
}

// A missing bucket is a configuration error, not an absent key set: the
// rotator must not go on to create one.
func TestMissingBucketIsNotNotFound(t *testing.T) {
	t.Parallel()
	o := s3store.NewObject(s3store.NewClient(motoConfig(t)), uniqueName(t, "absent"), "jwks.json")
	_, err := o.Get(context.Background())
	if err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get from a missing bucket: err = %v, want an error other than ErrNotFound", err)
	}
}

// Values that are not UTF-8 go through SecretBinary and come back intact.
func TestBinarySecretValue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSecret(t)
	v := storetest.NewVersionID(t)
	value := []byte{0xff, 0x00, 0xfe}
	if err := s.PutVersion(ctx, v, value, []string{store.StageNext}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetVersion(ctx, v)
	if err != nil || string(got) != string(value) {
		t.Errorf("GetVersion = %x, %v; want %x", got, err, value)
	}
}

func TestErrorsDoNotCarrySecretValues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSecret(t)
	v := storetest.NewVersionID(t)
	const first, second = "first-secret-value", "second-secret-value"
	if err := s.PutVersion(ctx, v, []byte(first), []string{store.StageNext}); err != nil {
		t.Fatal(err)
	}
	err := s.PutVersion(ctx, v, []byte(second), []string{store.StageNext})
	if !errors.Is(err, store.ErrVersionExists) {
		t.Fatalf("err = %v, want ErrVersionExists", err)
	}
	for _, value := range []string{first, second} {
		if msg := err.Error(); strings.Contains(msg, value) {
			t.Errorf("error %q contains a secret value", msg)
		}
	}
}
