package e2e

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"jwks-issuer/internal/stack"
	"jwks-issuer/internal/testenv"
)

// The real signer, with ISSUER_URL, ALLOWED_AUDIENCES, MAX_CLAIMS_BYTES and
// MAX_BATCH_KMS set: a hotsock request without iss gets the issuer's, and
// go-oidc verifies it through discovery; an iss that differs, an audience
// not allowed, claims too large and (with keys in KMS) a batch too large
// are refused with errorType RequestError.
func TestSignerClaimRules(t *testing.T) {
	allCustodies(t, testSignerClaimRules)
}

func testSignerClaimRules(t *testing.T, custody string) {
	env := compressed()
	env["ALLOWED_AUDIENCES"] = "hotsock,chat"
	env["MAX_CLAIMS_BYTES"] = "256"
	env["MAX_BATCH_KMS"] = "2"
	s, edge := newIssuerStack(t, custody, env)
	c := ctx(t)
	if err := s.Rotate(c, stack.NewToken()); err != nil {
		t.Fatal(err)
	}

	// No claims.iss: the signer sets it.
	tok, err := s.Sign(c, `{"claims":{"aud":"hotsock","channels":{"chat":{"subscribe":true}}},"ttl":30}`)
	if err != nil {
		t.Fatal(err)
	}
	provider, err := oidc.NewProvider(c, edge.URL)
	if err != nil {
		t.Fatalf("go-oidc discovery of %s: %v", edge.URL, err)
	}
	idToken, err := provider.Verifier(&oidc.Config{ClientID: "hotsock"}).Verify(c, tok)
	if err != nil {
		t.Fatalf("go-oidc refuses a token whose iss the signer set: %v", err)
	}
	if idToken.Issuer != edge.URL {
		t.Fatalf("iss %q, want the issuer %q", idToken.Issuer, edge.URL)
	}
	body, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"aud":"hotsock","channels":{"chat":{"subscribe":true}},"iss":"` + edge.URL + `","exp":`; !strings.HasPrefix(string(body), want) {
		t.Fatalf("claims %s, want them to start %s", body, want)
	}

	// A batch of MAX_BATCH_KMS is signed in every custody, each token with
	// iss; one more is refused with keys in KMS only.
	three := `{"batch":[{"claims":{"aud":"chat"}},{"claims":{"aud":"chat"}},{"claims":{"aud":"chat","iss":"` + edge.URL + `"}}]}`
	out, err := stack.Invoke(c, s.Signer, three)
	if custody == "kms" {
		wantRequestError(t, err, "invalid request: batch holds 3 requests, the limit is 2 (MAX_BATCH_KMS)")
	} else {
		var resp struct{ Tokens []string }
		if err != nil || json.Unmarshal(out, &resp) != nil || len(resp.Tokens) != 3 {
			t.Fatalf("a batch of 3 with keys in %s: %s, %v", custody, out, err)
		}
		for n, tok := range resp.Tokens {
			if _, err := provider.Verifier(&oidc.Config{ClientID: "chat"}).Verify(c, tok); err != nil {
				t.Errorf("go-oidc refuses batch token %d: %v", n, err)
			}
		}
	}
	if out, err := stack.Invoke(c, s.Signer, `{"batch":[{"claims":{"aud":"chat"}},{"claims":{"aud":"chat"}}]}`); err != nil {
		t.Fatalf("a batch of MAX_BATCH_KMS: %s, %v", out, err)
	}

	for _, tt := range []struct{ payload, want string }{
		{`{"claims":{"aud":"hotsock","iss":"https://issuer.example.com"},"ttl":30}`,
			`invalid request: claims.iss must be "` + edge.URL + `" (ISSUER_URL) or be left out, got a different string`},
		{`{"claims":{"aud":"hotsock-admin"},"ttl":30}`,
			"invalid request: claims.aud is not an allowed audience (allowed: hotsock, chat; ALLOWED_AUDIENCES)"},
		{`{"claims":{"aud":["chat","admin"]},"ttl":30}`,
			"invalid request: claims.aud[1] is not an allowed audience (allowed: hotsock, chat; ALLOWED_AUDIENCES)"},
		{`{"claims":{"sub":"u1"},"ttl":30}`,
			"invalid request: claims.aud is required (allowed: hotsock, chat; ALLOWED_AUDIENCES)"},
		{`{"batch":[{"claims":{"aud":"chat"}},{"claims":{"aud":"chat","iss":"x"}}]}`,
			`invalid request: batch[1].claims.iss must be "` + edge.URL + `" (ISSUER_URL) or be left out, got a different string`},
		{`{"claims":{"aud":"chat","s":"` + strings.Repeat("x", 257-len(`{"aud":"chat","s":""}`)) + `"}}`,
			"invalid request: claims is 257 bytes, the limit is 256 (MAX_CLAIMS_BYTES)"},
	} {
		_, err := stack.Invoke(c, s.Signer, tt.payload)
		wantRequestError(t, err, tt.want)
	}
	// The signer goes on signing after the refusals.
	if _, err := s.Sign(c, `{"claims":{"aud":"chat","iss":"`+edge.URL+`"},"ttl":30}`); err != nil {
		t.Fatal(err)
	}
}

// wantRequestError fails the test unless err is the signer's function error
// of errorType RequestError that starts with want.
func wantRequestError(t *testing.T, err error, want string) {
	t.Helper()
	var fe *testenv.FunctionError
	if !errors.As(err, &fe) || fe.Type != "RequestError" || !strings.HasPrefix(fe.Message, want) {
		t.Errorf("error %v, want a RequestError %q", err, want)
	}
}
