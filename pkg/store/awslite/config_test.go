package awslite

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func lambdaEnv(extra map[string]string) func(string) string {
	vars := map[string]string{
		"AWS_REGION":            "eu-central-1",
		"AWS_ACCESS_KEY_ID":     "ASIAEXAMPLE",
		"AWS_SECRET_ACCESS_KEY": "secret",
		"AWS_SESSION_TOKEN":     "token",
	}
	for k, v := range extra {
		if v == "" {
			delete(vars, k)
		} else {
			vars[k] = v
		}
	}
	return env(vars)
}

// What Lambda puts in the environment is the whole configuration.
func TestFromEnvironment(t *testing.T) {
	cfg, err := FromEnvironment(lambdaEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := aws.Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "secret", SessionToken: "token", Source: "environment"}
	if cfg.Region != "eu-central-1" || cfg.Credentials != want || cfg.FIPS || cfg.DualStack || cfg.MaxAttempts != 0 || cfg.RetryMode != "" {
		t.Fatalf("config %+v", cfg)
	}
	cfg, err = FromEnvironment(lambdaEnv(map[string]string{"AWS_REGION": "", "AWS_DEFAULT_REGION": "us-west-2",
		"AWS_MAX_ATTEMPTS": "5", "AWS_RETRY_MODE": "adaptive", "AWS_USE_FIPS_ENDPOINT": "TRUE", "AWS_USE_DUALSTACK_ENDPOINT": "false"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "us-west-2" || cfg.MaxAttempts != 5 || cfg.RetryMode != aws.RetryModeAdaptive || !cfg.FIPS || cfg.DualStack {
		t.Fatalf("config %+v", cfg)
	}
	client, err := New(cfg, ServiceSecretsManager)
	if err != nil {
		t.Fatal(err)
	}
	if client.retryer.MaxAttempts() != 5 {
		t.Errorf("retryer makes %d attempts, want AWS_MAX_ATTEMPTS", client.retryer.MaxAttempts())
	}
}

// A missing or malformed setting fails, naming the variable.
func TestFromEnvironmentErrors(t *testing.T) {
	for _, c := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"AWS_REGION": ""}, "AWS_REGION is not set"},
		{map[string]string{"AWS_ACCESS_KEY_ID": ""}, "no AWS credentials in the environment: AWS_ACCESS_KEY_ID"},
		{map[string]string{"AWS_SECRET_ACCESS_KEY": ""}, "no AWS credentials in the environment"},
		{map[string]string{"AWS_MAX_ATTEMPTS": "0"}, `AWS_MAX_ATTEMPTS is "0", must be a whole number of at least 1`},
		{map[string]string{"AWS_MAX_ATTEMPTS": "three"}, `AWS_MAX_ATTEMPTS is "three"`},
		{map[string]string{"AWS_RETRY_MODE": "legacy"}, `AWS_RETRY_MODE is "legacy", must be standard or adaptive`},
		{map[string]string{"AWS_USE_FIPS_ENDPOINT": "yes"}, `AWS_USE_FIPS_ENDPOINT is "yes", must be true or false`},
	} {
		if _, err := FromEnvironment(lambdaEnv(c.vars)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.vars, err, c.want)
		}
	}
}
