package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"jwks-issuer/internal/stack"
)

// Under Parameter Store custody the real signer reads the signing key from
// the parameter with no Secrets Manager call, keeps it for at most
// KEY_CACHE_SECONDS when the parameter cannot be read, and signs again once
// cleanup has restored a deleted parameter.
func TestParameterStoreSigner(t *testing.T) {
	const cache = 4 * time.Second
	env := compressed()
	env["KEY_CACHE_SECONDS"] = "4"
	s := newStack(t, "parameterstore", env)
	c := ctx(t)
	if err := s.Rotate(c, stack.NewToken()); err != nil {
		t.Fatal(err)
	}
	rec, err := stack.StartRecorder(moto.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rec.Close)
	if err := s.RestartSigner(map[string]string{"AWS_ENDPOINT_URL": rec.URL}); err != nil {
		t.Fatal(err)
	}
	fetched := time.Now()
	var tokens []string
	for range 5 {
		tok, err := s.Sign(c, hotsockPayload)
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	jwks, _, _, _ := s.JWKS(c)
	for _, tok := range tokens {
		verify(t, tok, jwks)
	}
	calls := rec.Take()
	for op, n := range calls {
		if strings.HasPrefix(op, "secretsmanager.") {
			t.Errorf("the signer called Secrets Manager %d times (%s)", n, op)
		}
	}
	if n := calls["AmazonSSM.GetParameter"]; n != 1 {
		t.Errorf("GetParameter called %d times for 5 tokens inside KEY_CACHE_SECONDS/2, want 1 (calls %v)", n, calls)
	}

	// The parameter deleted: the cached key signs until S after its fetch,
	// and never after.
	param := ssm.NewFromConfig(stack.Config(moto))
	name := paramName(t, s)
	if _, err := param.DeleteParameter(c, &ssm.DeleteParameterInput{Name: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(fetched.Add(cache/2 + 200*time.Millisecond)))
	if _, err := s.Sign(c, hotsockPayload); err != nil {
		t.Fatalf("inside KEY_CACHE_SECONDS with the parameter gone: %v, want the cached key to sign", err)
	}
	time.Sleep(time.Until(fetched.Add(cache + 200*time.Millisecond)))
	if _, err := s.Sign(c, hotsockPayload); err == nil || !strings.Contains(err.Error(), "older than KEY_CACHE_SECONDS") {
		t.Fatalf("past KEY_CACHE_SECONDS with the parameter gone: %v, want a KeyUnavailableError", err)
	}

	// Cleanup restores it.
	if err := s.Cleanup(c); err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(c, hotsockPayload)
	if err != nil {
		t.Fatalf("after cleanup restored the parameter: %v", err)
	}
	verify(t, tok, jwks)
}

// paramName is the stack's SIGNING_KEY_PARAMETER.
func paramName(t *testing.T, s *stack.Stack) string {
	t.Helper()
	for _, kv := range s.Env() {
		if v, ok := strings.CutPrefix(kv, "SIGNING_KEY_PARAMETER="); ok {
			return v
		}
	}
	t.Fatal("the stack has no SIGNING_KEY_PARAMETER")
	return ""
}
