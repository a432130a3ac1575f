package main_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"jwks-issuer/internal/stack"
	"jwks-issuer/internal/testenv"
)

// compressed is a configuration where time does not hold rotations back.
var compressed = map[string]string{
	"MAX_TOKEN_TTL_SECONDS":    "60",
	"KEY_CACHE_SECONDS":        "0",
	"JWKS_MAX_AGE_SECONDS":     "0",
	"ACTIVATION_GRACE_SECONDS": "0",
	"RETIREMENT_GRACE_SECONDS": "0",
	"CLOCK_SKEW_SECONDS":       "0",
}

// Every line the rotator writes, through rotations and a cleanup in every
// custody (so through Secrets Manager, S3 and KMS), is JSON.
func TestLogIsJSON(t *testing.T) {
	m := testenv.StartMoto(t)
	signer := testenv.BuildLambda(t, "jwks-issuer/functions/signer")
	rotator := testenv.BuildLambda(t, "jwks-issuer/functions/rotator")
	for _, custody := range []string{"secretsmanager", "kms", "parameterstore"} {
		t.Run(custody, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			env := map[string]string{"KEY_CUSTODY": custody, "KMS_DELETION_WINDOW_DAYS": "7", "KMS_KEY_TAG": "logs-" + stack.NewToken(),
				"SIGNING_KEY_PARAMETER": "/jwks-issuer/logs-" + stack.NewToken() + "/signing-key"}
			for k, v := range compressed {
				env[k] = v
			}
			s, err := stack.New(ctx, m, signer, rotator, env)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Stop()
			for range 2 {
				if err := s.Rotate(ctx, stack.NewToken()); err != nil {
					t.Fatalf("rotate: %v\n%s", err, s.Rotator.Logs())
				}
			}
			if err := s.Cleanup(ctx); err != nil {
				t.Fatalf("cleanup: %v\n%s", err, s.Rotator.Logs())
			}
			s.Stop() // Logs is complete once the process has exited
			testenv.AssertJSONLines(t, s.Rotator.Logs())
		})
	}
}

// The rotator refuses at start a setting whose rule another package owns
// (the KMS deletion window is kmscustody.New's, the timing invariants
// lifecycle.Config.Validate's), naming the variable, in a JSON log line.
func TestRefusesInvalidConfigurationAtStart(t *testing.T) {
	m := testenv.StartMoto(t)
	rotator := testenv.BuildLambda(t, "jwks-issuer/functions/rotator")
	for _, c := range []struct {
		env  []string
		want string
	}{
		{[]string{"KEY_CUSTODY=kms", "KMS_DELETION_WINDOW_DAYS=6"}, "KMS_DELETION_WINDOW_DAYS is 6, must be between 7 and 30"},
		{[]string{"KEY_CUSTODY=kms", "KMS_DELETION_WINDOW_DAYS=31"}, "KMS_DELETION_WINDOW_DAYS is 31, must be between 7 and 30"},
		{[]string{"MAX_TOKEN_TTL_SECONDS=0"}, "MAX_TOKEN_TTL_SECONDS is 0, must be at least 1"},
		// Each form of issuer URL that AWS's verifiers refuse.
		{[]string{"ISSUER_URL=http://id.example.com"}, "must use https"},
		{[]string{"ISSUER_URL=https://id.example.com:8443"}, "must not name a port"},
		{[]string{"ISSUER_URL=https://id.example.com?tenant=a"}, "must not have a query"},
		{[]string{"ISSUER_URL=https://id.example.com#a"}, "must not have a fragment"},
		{[]string{"ISSUER_URL=https://id.example.com/"}, "must not end with a slash"},
	} {
		t.Run(c.want, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			env := append(m.Env(), "SECRET_ID=x", "JWKS_BUCKET=y")
			f := testenv.StartFunction(t, rotator, append(env, c.env...))
			if _, err := f.Invoke(ctx, []byte(`{"action":"cleanup"}`)); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("invoke: %v, want the init error %q", err, c.want)
			}
			f.Stop() // Logs is complete once the process has exited
			if !strings.Contains(f.Logs(), c.want) {
				t.Errorf("log does not say %q:\n%s", c.want, f.Logs())
			}
			testenv.AssertJSONLines(t, f.Logs())
		})
	}
}
