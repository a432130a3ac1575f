package envconfig

import (
	"strings"
	"testing"
	"time"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestLoadRotator(t *testing.T) {
	base := map[string]string{"SECRET_ID": "s", "JWKS_BUCKET": "b"}
	cfg, err := LoadRotator(env(base))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Key != ".well-known/jwks.json" || cfg.Algorithm != "ES256" || cfg.Custody != CustodySecretsManager ||
		cfg.Lifecycle.ActivationGrace != 24*time.Hour || cfg.Lifecycle.JWKSMaxAge != 5*time.Minute ||
		cfg.KMSDeletionWindow != 30 || cfg.StackTag != "jwks-issuer" {
		t.Fatalf("defaults: %+v", cfg)
	}
	tests := []struct {
		set  map[string]string
		want string
	}{
		{map[string]string{"SECRET_ID": ""}, "SECRET_ID is required"},
		{map[string]string{"JWKS_BUCKET": ""}, "JWKS_BUCKET is required"},
		{map[string]string{"KEY_ALGORITHM": "PS256"}, "supported are ES256, ES384, RS256"},
		{map[string]string{"KEY_CUSTODY": "hsm"}, `KEY_CUSTODY is "hsm"`},
		{map[string]string{"KMS_DELETION_WINDOW_DAYS": "6"}, "KMS_DELETION_WINDOW_DAYS is 6, must be between 7 and 30"},
		{map[string]string{"ACTIVATION_GRACE_SECONDS": "10", "JWKS_MAX_AGE_SECONDS": "20"}, "ACTIVATION_GRACE_SECONDS (10) is below JWKS_MAX_AGE_SECONDS (20)"},
		{map[string]string{"RETIREMENT_GRACE_SECONDS": "-1"}, "RETIREMENT_GRACE_SECONDS is -1"},
		{map[string]string{"MAX_TOKEN_TTL_SECONDS": "0"}, "MAX_TOKEN_TTL_SECONDS is 0"},
		{map[string]string{"CLOCK_SKEW_SECONDS": "1.5"}, `CLOCK_SKEW_SECONDS is "1.5", must be a whole number`},
	}
	for _, tt := range tests {
		vars := map[string]string{}
		for k, v := range base {
			vars[k] = v
		}
		for k, v := range tt.set {
			vars[k] = v
		}
		if _, err := LoadRotator(env(vars)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.set, err, tt.want)
		}
	}
}

func TestLoadSigner(t *testing.T) {
	cfg, err := LoadSigner(env(map[string]string{"SECRET_ID": "s", "KEY_CACHE_SECONDS": "0"}))
	if err != nil || cfg.KeyCache != 0 || cfg.MaxTokenTTL != time.Hour {
		t.Fatalf("%+v, %v", cfg, err)
	}
	if _, err := LoadSigner(env(map[string]string{})); err == nil || !strings.Contains(err.Error(), "SECRET_ID is required") {
		t.Fatalf("missing SECRET_ID: %v", err)
	}
	if _, err := LoadSigner(env(map[string]string{"SECRET_ID": "s", "CLOCK_SKEW_SECONDS": "x"})); err == nil {
		t.Fatal("a non-number CLOCK_SKEW_SECONDS accepted")
	}
}
