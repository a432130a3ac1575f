package envconfig

import (
	"strings"
	"testing"
	"time"

	"jwks-issuer/pkg/token"
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

func TestIssuerAndItsObjectKeys(t *testing.T) {
	base := map[string]string{"SECRET_ID": "s", "JWKS_BUCKET": "b"}
	tests := []struct {
		name                       string
		set                        map[string]string
		jwksKey, discoveryKey, url string
		err                        string
	}{
		{"no issuer: no discovery URL", nil, ".well-known/jwks.json", ".well-known/openid-configuration", "", ""},
		{"issuer at the root", map[string]string{"ISSUER_URL": "https://id.example.com"},
			".well-known/jwks.json", ".well-known/openid-configuration", "https://id.example.com/.well-known/jwks.json", ""},
		{"issuer with a path: the default keys follow it", map[string]string{"ISSUER_URL": "https://id.example.com/tenant"},
			"tenant/.well-known/jwks.json", "tenant/.well-known/openid-configuration", "https://id.example.com/tenant/.well-known/jwks.json", ""},
		{"keys set explicitly win", map[string]string{"ISSUER_URL": "https://id.example.com/tenant", "JWKS_KEY": "keys.json", "DISCOVERY_KEY": "d.json"},
			"keys.json", "d.json", "https://id.example.com/keys.json", ""},
		{"local issuer", map[string]string{"ISSUER_URL": "http://127.0.0.1:9000"},
			".well-known/jwks.json", ".well-known/openid-configuration", "http://127.0.0.1:9000/.well-known/jwks.json", ""},
		{"refused: trailing slash", map[string]string{"ISSUER_URL": "https://id.example.com/"}, "", "", "", `ISSUER_URL is "https://id.example.com/": must not end with a slash`},
		{"refused: http", map[string]string{"ISSUER_URL": "http://id.example.com"}, "", "", "", "ISSUER_URL is \"http://id.example.com\": must use https"},
		{"refused: port", map[string]string{"ISSUER_URL": "https://id.example.com:8443"}, "", "", "", "must not name a port"},
		{"refused: query", map[string]string{"ISSUER_URL": "https://id.example.com?a=b"}, "", "", "", "must not have a query"},
		{"refused: fragment", map[string]string{"ISSUER_URL": "https://id.example.com#a"}, "", "", "", "must not have a fragment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{}
			for k, v := range base {
				vars[k] = v
			}
			for k, v := range tt.set {
				vars[k] = v
			}
			cfg, err := LoadRotator(env(vars))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("LoadRotator: %v, want %q", err, tt.err)
				}
				if _, err := LoadSigner(env(vars)); err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("LoadSigner: %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || cfg.Key != tt.jwksKey || cfg.DiscoveryKey != tt.discoveryKey || cfg.JWKSURL != tt.url ||
				cfg.Issuer.String() != tt.set["ISSUER_URL"] {
				t.Fatalf("LoadRotator = key %q discovery %q url %q issuer %q, %v; want %q %q %q %q",
					cfg.Key, cfg.DiscoveryKey, cfg.JWKSURL, cfg.Issuer, err, tt.jwksKey, tt.discoveryKey, tt.url, tt.set["ISSUER_URL"])
			}
		})
	}
}

func TestAllowedAudiences(t *testing.T) {
	tests := []struct {
		value string
		want  []string
		err   string
	}{
		{"", nil, ""},
		{"hotsock", []string{"hotsock"}, ""},
		{" a , b,c ", []string{"a", "b", "c"}, ""},
		{"a,,b", nil, `ALLOWED_AUDIENCES is "a,,b": entry 2 is empty`},
	}
	for _, tt := range tests {
		cfg, err := LoadSigner(env(map[string]string{"SECRET_ID": "s", "ALLOWED_AUDIENCES": tt.value}))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: %v, want %q", tt.value, err, tt.err)
			}
			continue
		}
		if err != nil || strings.Join(cfg.Audiences, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%q: %q, %v; want %q", tt.value, cfg.Audiences, err, tt.want)
		}
	}
}

func TestRotatorRoles(t *testing.T) {
	cfg, err := LoadRotator(env(map[string]string{"SECRET_ID": "s", "JWKS_BUCKET": "b",
		"SIGNER_ROLE_ARN": "arn:aws:iam::123456789012:role/signer", "ROTATOR_ROLE_ARN": " arn:aws:iam::123456789012:role/rotator "}))
	if err != nil || cfg.SignerRoleARN != "arn:aws:iam::123456789012:role/signer" || cfg.RotatorRoleARN != "arn:aws:iam::123456789012:role/rotator" {
		t.Fatalf("roles %q %q, %v", cfg.SignerRoleARN, cfg.RotatorRoleARN, err)
	}
}

func TestParameterStoreCustody(t *testing.T) {
	tests := []struct {
		set  map[string]string
		want string // parameter name, or the error
		err  bool
	}{
		{map[string]string{"KEY_CUSTODY": "parameterstore", "SIGNING_KEY_PARAMETER": "/jwks-issuer/s/signing-key"}, "/jwks-issuer/s/signing-key", false},
		{map[string]string{"KEY_CUSTODY": "ParameterStore", "SIGNING_KEY_PARAMETER": "/p"}, "/p", false},
		{map[string]string{"KEY_CUSTODY": "parameterstore"}, "SIGNING_KEY_PARAMETER is required", true},
		{map[string]string{"KEY_CUSTODY": "parameterstore", "SIGNING_KEY_PARAMETER": "signing-key"}, `SIGNING_KEY_PARAMETER is "signing-key": must be a full parameter name starting with /`, true},
		{map[string]string{"SIGNING_KEY_PARAMETER": "/ignored"}, "", false}, // other custodies do not read it
		{map[string]string{"KEY_CUSTODY": "ssm"}, "must be secretsmanager, kms or parameterstore", true},
	}
	for _, tt := range tests {
		vars := map[string]string{"SECRET_ID": "s", "JWKS_BUCKET": "b"}
		for k, v := range tt.set {
			vars[k] = v
		}
		rot, rerr := LoadRotator(env(vars))
		sig, serr := LoadSigner(env(vars))
		for name, got := range map[string]struct {
			param string
			err   error
		}{"rotator": {rot.Parameter, rerr}, "signer": {sig.Parameter, serr}} {
			if tt.err {
				if got.err == nil || !strings.Contains(got.err.Error(), tt.want) {
					t.Errorf("%s %v: %v, want %q", name, tt.set, got.err, tt.want)
				}
				continue
			}
			if got.err != nil || got.param != tt.want {
				t.Errorf("%s %v: %q, %v; want %q", name, tt.set, got.param, got.err, tt.want)
			}
		}
	}
}

// The signer's limits: MAX_CLAIMS_BYTES at least 1, MAX_BATCH_KMS 1 to
// the most a batch may hold; their defaults are token's and the template's.
func TestSignerLimits(t *testing.T) {
	cfg, err := LoadSigner(env(map[string]string{"SECRET_ID": "s"}))
	if err != nil || cfg.MaxClaimsBytes != token.DefaultMaxClaimsBytes || cfg.MaxBatchKMS != 100 {
		t.Fatalf("defaults: MAX_CLAIMS_BYTES %d, MAX_BATCH_KMS %d, %v; want %d and 100", cfg.MaxClaimsBytes, cfg.MaxBatchKMS, err, token.DefaultMaxClaimsBytes)
	}
	if maxBatch != token.MaxBatch {
		t.Fatalf("MAX_BATCH_KMS is bounded at %d, a batch at %d", maxBatch, token.MaxBatch)
	}
	tests := []struct {
		set              map[string]string
		claims, batchKMS int
		err              string
	}{
		{map[string]string{"MAX_CLAIMS_BYTES": "1"}, 1, 100, ""},
		{map[string]string{"MAX_CLAIMS_BYTES": " 65536 "}, 65536, 100, ""},
		{map[string]string{"MAX_CLAIMS_BYTES": "0"}, 0, 0, "MAX_CLAIMS_BYTES is 0, must be at least 1"},
		{map[string]string{"MAX_CLAIMS_BYTES": "-1"}, 0, 0, "MAX_CLAIMS_BYTES is -1, must be at least 1"},
		{map[string]string{"MAX_CLAIMS_BYTES": "16k"}, 0, 0, `MAX_CLAIMS_BYTES is "16k", must be a whole number`},
		{map[string]string{"MAX_BATCH_KMS": "1"}, 16384, 1, ""},
		{map[string]string{"MAX_BATCH_KMS": "1000", "KEY_CUSTODY": "kms"}, 16384, 1000, ""},
		{map[string]string{"MAX_BATCH_KMS": "0"}, 0, 0, "MAX_BATCH_KMS is 0, must be 1 to 1000"},
		{map[string]string{"MAX_BATCH_KMS": "1001"}, 0, 0, "MAX_BATCH_KMS is 1001, must be 1 to 1000"},
		{map[string]string{"MAX_BATCH_KMS": "ten"}, 0, 0, `MAX_BATCH_KMS is "ten", must be a whole number`},
	}
	for _, tt := range tests {
		vars := map[string]string{"SECRET_ID": "s"}
		for k, v := range tt.set {
			vars[k] = v
		}
		cfg, err := LoadSigner(env(vars))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%v: %v, want %q", tt.set, err, tt.err)
			}
			continue
		}
		if err != nil || cfg.MaxClaimsBytes != tt.claims || cfg.MaxBatchKMS != tt.batchKMS {
			t.Errorf("%v: MAX_CLAIMS_BYTES %d, MAX_BATCH_KMS %d, %v; want %d and %d", tt.set, cfg.MaxClaimsBytes, cfg.MaxBatchKMS, err, tt.claims, tt.batchKMS)
		}
	}
}

func TestAdoption(t *testing.T) {
	const hotsock = "/jwt-issuer/stack/chat/5d7a1c40-7c0e-11ef-9b8c-0a1b2c3d4e5f/private-key"
	const arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	tests := []struct {
		name string
		set  map[string]string
		want Adoption
		err  string
	}{
		{"none", nil, Adoption{}, ""},
		{"hotsock parameter: the kid is its stack uuid", map[string]string{"ADOPT_KEY": "ssm:" + hotsock},
			Adoption{Setting: "ADOPT_KEY=ssm:" + hotsock, From: "ssm", Name: hotsock, Kid: "5d7a1c40-7c0e-11ef-9b8c-0a1b2c3d4e5f"}, ""},
		{"a kid given wins", map[string]string{"ADOPT_KEY": "ssm:" + hotsock, "ADOPT_KID": "legacy"},
			Adoption{Setting: "ADOPT_KEY=ssm:" + hotsock, From: "ssm", Name: hotsock, Kid: "legacy"}, ""},
		{"other layout needs a kid", map[string]string{"ADOPT_KEY": "ssm:/my/key"}, Adoption{}, "ADOPT_KID is required"},
		{"other layout with a kid", map[string]string{"ADOPT_KEY": "ssm:/my/key", "ADOPT_KID": "k1"},
			Adoption{Setting: "ADOPT_KEY=ssm:/my/key", From: "ssm", Name: "/my/key", Kid: "k1"}, ""},
		{"KMS key: the kid is its key id", map[string]string{"ADOPT_KEY": "kms:" + arn, "KEY_CUSTODY": "kms"},
			Adoption{Setting: "ADOPT_KEY=kms:" + arn, From: "kms", Name: arn, Kid: "1234abcd-12ab-34cd-56ef-1234567890ab"}, ""},
		{"KMS key outside KMS custody", map[string]string{"ADOPT_KEY": "kms:" + arn}, Adoption{}, "only under KEY_CUSTODY=kms"},
		{"unknown source", map[string]string{"ADOPT_KEY": "file:/tmp/key.pem"}, Adoption{}, "must be ssm:/<parameter name> or kms:<key ARN>"},
		{"relative parameter name", map[string]string{"ADOPT_KEY": "ssm:key"}, Adoption{}, "must be ssm:/<parameter name>"},
		{"kid without a key", map[string]string{"ADOPT_KID": "k1"}, Adoption{}, "ADOPT_KID is set but ADOPT_KEY is not"},
		{"kid with a quote", map[string]string{"ADOPT_KEY": "ssm:/my/key", "ADOPT_KID": `k"1`}, Adoption{}, "without spaces or quotes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{"SECRET_ID": "s", "JWKS_BUCKET": "b"}
			for k, v := range tt.set {
				vars[k] = v
			}
			cfg, err := LoadRotator(env(vars))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || cfg.Adopt != tt.want {
				t.Fatalf("Adopt = %+v, %v; want %+v", cfg.Adopt, err, tt.want)
			}
		})
	}
}
