package main_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"jwks-issuer/internal/stack"
	"jwks-issuer/internal/testenv"
)

// Every line the signer writes while it loads keys and signs, in every
// custody, is JSON.
func TestLogIsJSON(t *testing.T) {
	m := testenv.StartMoto(t)
	signer := testenv.BuildLambda(t, "jwks-issuer/functions/signer")
	rotator := testenv.BuildLambda(t, "jwks-issuer/functions/rotator")
	for _, custody := range []string{"secretsmanager", "kms", "parameterstore"} {
		t.Run(custody, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s, err := stack.New(ctx, m, signer, rotator, map[string]string{
				"KEY_CUSTODY": custody, "KMS_DELETION_WINDOW_DAYS": "7", "KMS_KEY_TAG": "logs-" + stack.NewToken(),
				"KEY_CACHE_SECONDS": "0", "JWKS_MAX_AGE_SECONDS": "0", "ACTIVATION_GRACE_SECONDS": "0",
				"SIGNING_KEY_PARAMETER": "/jwks-issuer/logs-" + stack.NewToken() + "/signing-key",
			})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Stop()
			if err := s.Rotate(ctx, stack.NewToken()); err != nil {
				t.Fatalf("rotate: %v\n%s", err, s.Rotator.Logs())
			}
			if _, err := s.Sign(ctx, `{"claims":{"sub":"u1"},"ttl":30}`); err != nil {
				t.Fatalf("sign: %v\n%s", err, s.Signer.Logs())
			}
			// A refused request is logged too.
			if _, err := s.Sign(ctx, `{"claims":{"sub":"u1"},"ttl":7200}`); err == nil {
				t.Fatal("a ttl above MAX_TOKEN_TTL_SECONDS was signed")
			}
			s.Stop() // Logs is complete once the process has exited
			testenv.AssertJSONLines(t, s.Signer.Logs())
		})
	}
}

// The signer refuses at start a MAX_TOKEN_TTL_SECONDS that
// lifecycle.Config.Validate refuses for the rotator, and limits it could not
// apply, naming the variable.
func TestRefusesInvalidConfigurationAtStart(t *testing.T) {
	m := testenv.StartMoto(t)
	signer := testenv.BuildLambda(t, "jwks-issuer/functions/signer")
	for _, c := range []struct {
		env  string
		want string
	}{
		{"MAX_TOKEN_TTL_SECONDS=0", "MAX_TOKEN_TTL_SECONDS is 0, must be at least 1"},
		{"KEY_CACHE_SECONDS=-1", "KEY_CACHE_SECONDS is -1, must be 0 or more"},
		{"MAX_CLAIMS_BYTES=0", "MAX_CLAIMS_BYTES is 0, must be at least 1"},
		{"MAX_CLAIMS_BYTES=-16384", "MAX_CLAIMS_BYTES is -16384, must be at least 1"},
		{"MAX_CLAIMS_BYTES=16KB", `MAX_CLAIMS_BYTES is "16KB", must be a whole number`},
		{"MAX_BATCH_KMS=1001", "MAX_BATCH_KMS is 1001, must be 1 to 1000"},
	} {
		t.Run(c.env, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			f := testenv.StartFunction(t, signer, append(m.Env(), "SECRET_ID=x", c.env))
			if _, err := f.Invoke(ctx, []byte(`{"claims":{}}`)); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("invoke: %v, want the init error %q", err, c.want)
			}
			f.Stop() // Logs is complete once the process has exited
			// The log line is JSON: quotes in the message are escaped.
			inJSON, _ := json.Marshal(c.want)
			if !strings.Contains(f.Logs(), strings.Trim(string(inJSON), `"`)) {
				t.Errorf("log does not say %q:\n%s", c.want, f.Logs())
			}
			testenv.AssertJSONLines(t, f.Logs())
		})
	}
}
