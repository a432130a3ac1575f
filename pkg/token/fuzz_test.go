package token

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"jwks-issuer/pkg/keys"
)

// FuzzInvoke feeds any payload to the signer: it never panics, a rejection is
// a clear request error, and an accepted request gives a token whose claims
// are a JSON object with exp within the limit.
func FuzzInvoke(f *testing.F) {
	for _, seed := range invokeSeeds() {
		f.Add([]byte(seed))
	}
	rec, err := keys.NewRecord(keys.ES256, now0)
	if err != nil {
		f.Fatal(err)
	}
	key, _ := KeyFromRecord(rec, nil)
	load := func(context.Context) (*Key, error) { return key, nil }
	c := &clock{now0}
	iss := NewIssuer(NewKeyCache(load, 0, c.Now, quietLog()), 3600e9, c.Now)
	f.Fuzz(func(t *testing.T, payload []byte) {
		out, err := iss.Invoke(context.Background(), payload)
		if err != nil {
			if !IsRequestError(err) {
				t.Fatalf("rejection is not a request error: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "invalid request: ") {
				t.Fatalf("unclear error: %v", err)
			}
			return
		}
		var resp struct {
			Token  string   `json:"token"`
			Tokens []string `json:"tokens"`
		}
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("response is not JSON: %s", out)
		}
		toks := resp.Tokens
		if resp.Token != "" {
			toks = append(toks, resp.Token)
		}
		if len(toks) == 0 {
			t.Fatalf("no token in %s", out)
		}
		for _, tok := range toks {
			parts := strings.Split(tok, ".")
			if len(parts) != 3 {
				t.Fatalf("token %q has %d parts", tok, len(parts))
			}
			body, err := base64.RawURLEncoding.DecodeString(parts[1])
			if err != nil {
				t.Fatal(err)
			}
			var claims map[string]any
			if err := json.Unmarshal(body, &claims); err != nil {
				t.Fatalf("claims are not a JSON object: %s", body)
			}
			exp, ok := claims["exp"].(float64)
			if !ok || exp > float64(now0.Unix()+3600) {
				t.Fatalf("exp %v beyond the limit", claims["exp"])
			}
		}
	})
}
