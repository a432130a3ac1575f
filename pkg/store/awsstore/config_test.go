package awsstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go/logging"

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

// motoEnv points the process environment at moto, as the Lambda functions
// are pointed at it, for the rest of the test (so not in parallel).
func motoEnv(t *testing.T) {
	t.Helper()
	clearEndpointEnv(t)
	for _, kv := range moto.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
}

// LoadConfig follows AWS_ENDPOINT_URL, as the Lambda functions rely on.
func TestLoadConfigFromEnvironment(t *testing.T) {
	cfg := motoConfig(t)
	motoEnv(t)

	ctx := context.Background()
	loaded, err := awsstore.LoadConfig(ctx, slog.New(slog.DiscardHandler))
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

// jsonLines decodes every line of out as a JSON object, failing the test on
// one that is not.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var entries []map[string]any
	for line := range strings.Lines(out) {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Errorf("log line is not a JSON object (%v): %q", err, line)
			continue
		}
		entries = append(entries, e)
	}
	return entries
}

// The SDK's own entries reach the function's slog logger, at the level
// their classification means.
func TestSDKLogger(t *testing.T) {
	for _, c := range []struct {
		name      string
		handler   slog.Level
		class     logging.Classification
		wantLevel string // "": dropped
	}{
		{"WARN at Info", slog.LevelInfo, logging.Warn, "WARN"},
		{"DEBUG at Info", slog.LevelInfo, logging.Debug, ""},
		{"DEBUG at Debug", slog.LevelDebug, logging.Debug, "DEBUG"},
		{"unknown classification", slog.LevelDebug, "TRACE", "DEBUG"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: c.handler}))
			sdk := logging.WithContext(context.Background(), awsstore.SDKLogger(log))
			sdk.Logf(c.class, "retrying request %s, attempt %d", "Sign", 2)
			entries := jsonLines(t, buf.String())
			if c.wantLevel == "" {
				if len(entries) != 0 {
					t.Fatalf("logged %v, want nothing", entries)
				}
				return
			}
			if len(entries) != 1 || entries[0]["level"] != c.wantLevel ||
				entries[0]["msg"] != "retrying request Sign, attempt 2" || entries[0]["source"] != "aws-sdk" {
				t.Fatalf("logged %v, want one %s entry with the formatted message and source aws-sdk", entries, c.wantLevel)
			}
		})
	}
}

// Through LoadConfig, what the SDK logs while the functions talk to AWS is
// JSON in the function's log; the S3 client of s3store leaves out the
// skipped-checksum notice that moto's (and some of S3's) answers cause.
func TestSDKLogsThroughLoadConfig(t *testing.T) {
	motoEnv(t)
	ctx := context.Background()
	bucket, key := uniqueName(t, "jwks-log"), "jwks.json"
	admin := s3.NewFromConfig(motoConfig(t), func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := admin.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader("{}")}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		client func(aws.Config) *s3.Client
		want   string // a message the log must hold; "": the log stays empty
	}{
		{"SDK default S3 client", func(cfg aws.Config) *s3.Client {
			return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
		}, "Response has no supported checksum"},
		{"s3store client", s3store.NewClient, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			cfg, err := awsstore.LoadConfig(ctx, slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.client(cfg).GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, out.Body)
			out.Body.Close()
			entries := jsonLines(t, buf.String())
			found := false
			for _, e := range entries {
				if e["source"] != "aws-sdk" {
					t.Errorf("entry %v lacks source aws-sdk", e)
				}
				found = found || strings.Contains(fmt.Sprint(e["msg"]), c.want)
			}
			if c.want == "" && len(entries) > 0 {
				t.Errorf("logged %v, want nothing", entries)
			}
			if c.want != "" && !found {
				t.Errorf("logged %v, want an entry saying %q", entries, c.want)
			}
		})
	}
}
