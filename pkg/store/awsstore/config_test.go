package awsstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/awsstore"
	"jwks-issuer/pkg/store/s3store"
	"jwks-issuer/pkg/store/storetest"
)

// clearEndpointEnv unsets the endpoint variables for the test, whatever the
// caller's environment holds. t.Setenv keeps this test out of parallel runs.
func clearEndpointEnv(t *testing.T) {
	for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"} {
		t.Setenv(k, "")
	}
}

func TestNewS3ClientPathStyle(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  aws.Config
		env  map[string]string
		want bool
	}{
		{"AWS", aws.Config{Region: "us-east-1"}, nil, false},
		{"BaseEndpoint", aws.Config{Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1:1")}, nil, true},
		{"AWS_ENDPOINT_URL", aws.Config{Region: "us-east-1"}, map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, true},
		{"AWS_ENDPOINT_URL_S3", aws.Config{Region: "us-east-1"}, map[string]string{"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:1"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			clearEndpointEnv(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			if got := s3store.NewClient(c.cfg).Options().UsePathStyle; got != c.want {
				t.Errorf("UsePathStyle = %v, want %v", got, c.want)
			}
		})
	}
}

// LoadConfig follows AWS_ENDPOINT_URL, as the Lambda functions rely on.
func TestLoadConfigFromEnvironment(t *testing.T) {
	cfg := motoConfig(t)
	clearEndpointEnv(t)
	for _, kv := range moto.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")

	ctx := context.Background()
	loaded, err := awsstore.LoadConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	name := uniqueName(t, "jwks-env")
	if _, err := awsstore.NewSecretsManagerClient(cfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: &name, SecretString: aws.String(storetest.InitialValue),
	}); err != nil {
		t.Fatal(err)
	}
	s := awsstore.NewSecrets(awsstore.NewSecretsManagerClient(loaded), name)
	if _, value, err := s.GetStage(ctx, store.StageCurrent); err != nil || string(value) != storetest.InitialValue {
		t.Errorf("GetStage through the loaded config = %q, %v", value, err)
	}
	if !s3store.NewClient(loaded).Options().UsePathStyle {
		t.Error("S3 client from the loaded config is not path-style")
	}
}
