package oidc

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseIssuer(t *testing.T) {
	tests := []struct {
		raw    string
		reason string // "" when accepted
	}{
		{"https://d111111abcdef8.cloudfront.net", ""},
		{"https://issuer.example.com/tenant", ""},
		{"https://issuer.example.com/a/b", ""},
		{"http://127.0.0.1:8080", ""},
		{"http://localhost:4566/tenant", ""},
		{"http://localhost", ""},
		{"http://issuer.example.com", "must use https"},
		{"http://127.0.0.2:80", "must use https"},
		{"ftp://issuer.example.com", "must use https"},
		{"https://issuer.example.com:443", "must not name a port"},
		{"https://issuer.example.com:8443", "must not name a port"},
		{"https://issuer.example.com?tenant=a", "must not have a query"},
		{"https://issuer.example.com/?", "must not have a query"},
		{"https://issuer.example.com#x", "must not have a fragment"},
		{"https://issuer.example.com/", "must not end with a slash"},
		{"https://issuer.example.com/tenant/", "must not end with a slash"},
		{"https://user@issuer.example.com", "must not carry user info"},
		{"https://issuer.example.com/a%20b", "path must be plain segments"},
		{"https://issuer.example.com//a", "path must be plain segments"},
		{"HTTPS://issuer.example.com", "canonical form"},
		{"issuer.example.com", "must be an absolute URL"},
		{"/tenant", "must be an absolute URL"},
		{"https://", "must be an absolute URL"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			iss, err := ParseIssuer("ISSUER_URL", tt.raw)
			if tt.reason == "" {
				if err != nil || iss.String() != tt.raw {
					t.Fatalf("ParseIssuer = %q, %v; want it accepted unchanged", iss, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.reason) || !strings.HasPrefix(err.Error(), `ISSUER_URL is "`+tt.raw+`"`) {
				t.Fatalf("ParseIssuer error = %v, want one naming ISSUER_URL, the value and %q", err, tt.reason)
			}
		})
	}
}

func TestObjectKeysFollowTheIssuerPath(t *testing.T) {
	tests := []struct {
		issuer, key, jwksURL string
	}{
		{"https://id.example.com", ".well-known/jwks.json", "https://id.example.com/.well-known/jwks.json"},
		{"https://id.example.com/tenant", "tenant/.well-known/jwks.json", "https://id.example.com/tenant/.well-known/jwks.json"},
		{"https://id.example.com/a/b", "a/b/.well-known/jwks.json", "https://id.example.com/a/b/.well-known/jwks.json"},
		{"http://127.0.0.1:9000", ".well-known/jwks.json", "http://127.0.0.1:9000/.well-known/jwks.json"},
	}
	for _, tt := range tests {
		t.Run(tt.issuer, func(t *testing.T) {
			iss, err := ParseIssuer("ISSUER_URL", tt.issuer)
			if err != nil {
				t.Fatal(err)
			}
			key := iss.ObjectKey(".well-known/jwks.json")
			if key != tt.key || iss.URLOf(key) != tt.jwksURL {
				t.Fatalf("key %q at %q, want %q at %q", key, iss.URLOf(key), tt.key, tt.jwksURL)
			}
			// The discovery document resolves where OIDC Discovery says it is.
			if got, want := iss.URLOf(iss.ObjectKey(DiscoveryName)), tt.issuer+"/.well-known/openid-configuration"; got != want {
				t.Fatalf("discovery at %q, want %q", got, want)
			}
		})
	}
}

func TestDiscoveryDocument(t *testing.T) {
	iss, _ := ParseIssuer("ISSUER_URL", "https://id.example.com")
	d := NewDiscovery(iss, "https://id.example.com/.well-known/jwks.json", []string{"RS256", "ES256", "ES256"})
	want := `{"issuer":"https://id.example.com","jwks_uri":"https://id.example.com/.well-known/jwks.json",` +
		`"response_types_supported":["id_token"],"subject_types_supported":["public"],` +
		`"id_token_signing_alg_values_supported":["ES256","RS256"],` +
		`"claims_supported":["aud","exp","iat","iss","jti","nbf","sub"]}`
	if got := string(d.Marshal()); got != want {
		t.Fatalf("document\n%s\nwant\n%s", got, want)
	}
	// Byte-stable: the same keys in another order give the same bytes.
	if again := NewDiscovery(iss, d.JWKSURI, []string{"ES256", "RS256"}).Marshal(); string(again) != want {
		t.Fatalf("not byte-stable:\n%s", again)
	}
	// No keys yet: an empty list, never null.
	var empty map[string]any
	if err := json.Unmarshal(NewDiscovery(iss, d.JWKSURI, nil).Marshal(), &empty); err != nil {
		t.Fatal(err)
	}
	if algs, ok := empty["id_token_signing_alg_values_supported"].([]any); !ok || len(algs) != 0 {
		t.Fatalf("algorithms of an empty set = %#v, want []", empty["id_token_signing_alg_values_supported"])
	}
}

func TestKeySetWarnings(t *testing.T) {
	tests := []struct {
		keys, bytes int
		want        []string
	}{
		{2, 400, nil},
		{10, 100_000, nil},
		{11, 5000, []string{"holds 11 keys: ALB JWT verification reads at most 10"}},
		{3, 100_001, []string{"is 100001 bytes: ALB and API Gateway HTTP API authorizers refuse more than 150000"}},
		{12, 160_000, []string{"holds 12 keys", "is 160000 bytes"}},
	}
	for _, tt := range tests {
		got := KeySetWarnings(tt.keys, tt.bytes)
		if len(got) != len(tt.want) {
			t.Fatalf("KeySetWarnings(%d, %d) = %q, want %d warnings", tt.keys, tt.bytes, got, len(tt.want))
		}
		for i := range got {
			if !strings.Contains(got[i], tt.want[i]) {
				t.Errorf("KeySetWarnings(%d, %d)[%d] = %q, want it to contain %q", tt.keys, tt.bytes, i, got[i], tt.want[i])
			}
		}
	}
}
