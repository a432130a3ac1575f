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
		{map[string]string{"KMS_DELETION_WINDOW_DAYS": "7 days"}, `KMS_DELETION_WINDOW_DAYS is "7 days", must be a whole number`},
		{map[string]string{"ACTIVATION_GRACE_SECONDS": "10", "JWKS_MAX_AGE_SECONDS": "20"}, "ACTIVATION_GRACE_SECONDS (10) is below JWKS_MAX_AGE_SECONDS (20)"},
		{map[string]string{"RETIREMENT_GRACE_SECONDS": "-1"}, "RETIREMENT_GRACE_SECONDS is -1"},
		{map[string]string{"MAX_TOKEN_TTL_SECONDS": "0"}, "MAX_TOKEN_TTL_SECONDS is 0, must be at least 1"},
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

// The deletion window's range is kmscustody.New's rule (it applies under KMS
// custody only): the loader passes the number through for it to judge.
func TestLoadRotatorLeavesTheDeletionWindowToKMSCustody(t *testing.T) {
	cfg, err := LoadRotator(env(map[string]string{"SECRET_ID": "s", "JWKS_BUCKET": "b", "KMS_DELETION_WINDOW_DAYS": "6"}))
	if err != nil || cfg.KMSDeletionWindow != 6 {
		t.Fatalf("KMS_DELETION_WINDOW_DAYS=6: %d, %v; want 6 passed through", cfg.KMSDeletionWindow, err)
	}
}

func TestLoadSigner(t *testing.T) {
	cfg, err := LoadSigner(env(map[string]string{"SECRET_ID": "s", "KEY_CACHE_SECONDS": "0"}))
	if err != nil || cfg.KeyCache != 0 || cfg.MaxTokenTTL != time.Hour || cfg.Custody != CustodySecretsManager {
		t.Fatalf("%+v, %v", cfg, err)
	}
	cfg, err = LoadSigner(env(map[string]string{"SECRET_ID": "s", "MAX_TOKEN_TTL_SECONDS": "1", "KEY_CUSTODY": "KMS"}))
	if err != nil || cfg.MaxTokenTTL != time.Second || cfg.Custody != CustodyKMS {
		t.Fatalf("MAX_TOKEN_TTL_SECONDS=1, KEY_CUSTODY=KMS: %+v, %v", cfg, err)
	}
	tests := []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{}, "SECRET_ID is required"},
		// lifecycle.Config.Validate owns this rule; the signer must reach it.
		{map[string]string{"SECRET_ID": "s", "MAX_TOKEN_TTL_SECONDS": "0"}, "MAX_TOKEN_TTL_SECONDS is 0, must be at least 1"},
		{map[string]string{"SECRET_ID": "s", "MAX_TOKEN_TTL_SECONDS": "-5"}, "MAX_TOKEN_TTL_SECONDS is -5"},
		{map[string]string{"SECRET_ID": "s", "KEY_CACHE_SECONDS": "-1"}, "KEY_CACHE_SECONDS is -1"},
		{map[string]string{"SECRET_ID": "s", "CLOCK_SKEW_SECONDS": "x"}, `CLOCK_SKEW_SECONDS is "x", must be a whole number`},
		{map[string]string{"SECRET_ID": "s", "KEY_CUSTODY": "hsm"}, `KEY_CUSTODY is "hsm"`},
	}
	for _, tt := range tests {
		if _, err := LoadSigner(env(tt.vars)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.vars, err, tt.want)
		}
	}
}
