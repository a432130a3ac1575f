package verify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// fixture is an issuer with an ES256, an RS256 and an EdDSA key, and a
// verifier that discovers it.
type fixture struct {
	clock      *clock
	o          *origin
	v          *Verifier
	es, rs, ed testKey
	t          *testing.T
}

func newFixture(t *testing.T, tweak func(*Config)) *fixture {
	t.Helper()
	f := &fixture{clock: newClock(), es: newKey(t, "ES256", "es-1"), rs: newKey(t, "RS256", "rs-1"), ed: newKey(t, "EdDSA", "ed-1")}
	f.o = newOrigin(t, f.es, f.rs, f.ed)
	f.o.SetDiscovery("", "", []string{"ES256", "RS256", "EdDSA"})
	cfg := Config{Issuer: f.o.URL, Audiences: []string{"hotsock", "other"}, ClockSkew: time.Minute, Now: f.clock.Now, FetchTimeout: 2 * time.Second}
	if tweak != nil {
		tweak(&cfg)
	}
	f.v = newTestVerifier(t, cfg)
	return f
}

func (f *fixture) claims(extra map[string]any) map[string]any {
	return claimsFor(f.clock, f.o.URL, extra)
}

func ctxT(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// Every hostile token is refused with its own reason, and no token makes
// the verifier fetch from anywhere but the configured issuer.
func TestHostileTokens(t *testing.T) {
	f := newFixture(t, nil)
	attacker := newOrigin(t)
	evil := newKey(t, "ES256", "es-1") // another key under a kid of the set
	evilOwn := newKey(t, "ES256", "evil-1")
	attacker.SetKeys(evil, evilOwn)
	pubDER, _ := x509.MarshalPKIXPublicKey(f.rs.Signer.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs256 := func(secret []byte) string {
		input := b64s([]byte(`{"alg":"HS256","kid":"rs-1","typ":"JWT"}`)) + "." + b64s(mustJSON(f.claims(nil)))
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(input))
		return input + "." + b64s(m.Sum(nil))
	}
	good := f.es.Sign(f.claims(nil))
	parts := strings.Split(good, ".")
	now := f.clock.Now().Unix()
	jwkHeader, _ := json.Marshal(evilOwn.JWK(false))

	for _, tc := range []struct {
		name  string
		token string
		want  Reason // 0: accepted
	}{
		{"valid ES256", good, 0},
		{"valid RS256", f.rs.Sign(f.claims(nil)), 0},
		{"valid EdDSA", f.ed.Sign(f.claims(nil)), 0},
		{"aud in an array", f.es.Sign(f.claims(map[string]any{"aud": []string{"x", "other"}})), 0},
		{"expired within the skew", f.es.Sign(f.claims(map[string]any{"exp": now - 30})), 0},
		{"nbf ahead within the skew", f.es.Sign(f.claims(map[string]any{"nbf": now + 30})), 0},
		{"fractional exp", f.es.Sign(f.claims(map[string]any{"exp": float64(now) + 100.5})), 0},
		{"jku ignored", f.es.Sign(f.claims(nil), `"jku":`+quoteJSON(attacker.URL+"/jwks.json")), 0},

		{"alg none", b64s([]byte(`{"alg":"none","kid":"es-1"}`)) + "." + parts[1] + ".", ReasonWrongAlgorithm},
		{"alg none, no signature part", b64s([]byte(`{"alg":"none"}`)) + "." + parts[1], ReasonMalformed},
		{"alg None", b64s([]byte(`{"alg":"None","kid":"es-1"}`)) + "." + parts[1] + ".", ReasonWrongAlgorithm},
		{"HS256 keyed with the public key PEM", hs256(pubPEM), ReasonWrongAlgorithm},
		{"HS256 keyed with the JWK", hs256(jwks(f.rs)), ReasonWrongAlgorithm},
		{"alg not allowed by the discovery document", f.rs.As("PS256", f.rs.Kid).Sign(f.claims(nil)), ReasonWrongAlgorithm},
		{"alg of another key type", f.es.As("ES384", "rs-1").Sign(f.claims(nil)), ReasonWrongAlgorithm},
		{"kid not in the set", f.es.As(f.es.Alg, "nobody").Sign(f.claims(nil)), ReasonUnknownKid},
		{"jku to the attacker's set", evilOwn.Sign(f.claims(nil), `"jku":`+quoteJSON(attacker.URL+"/jwks.json")), ReasonUnknownKid},
		{"jku to the attacker's set, kid of ours", evil.Sign(f.claims(nil), `"jku":`+quoteJSON(attacker.URL+"/jwks.json")), ReasonBadSignature},
		{"x5u to the attacker", evil.Sign(f.claims(nil), `"x5u":`+quoteJSON(attacker.URL+"/cert.pem")), ReasonBadSignature},
		{"embedded jwk", evilOwn.As(evilOwn.Alg, "es-1").Sign(f.claims(nil), `"jwk":`+string(jwkHeader)), ReasonBadSignature},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(f.es.Sign(f.claims(map[string]any{"sub": "x"})), ".")[2], ReasonBadSignature},
		{"signature one byte short", parts[0] + "." + parts[1] + "." + b64s(mustB64(parts[2])[1:]), ReasonBadSignature},
		{"signature not base64url", parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-1], ReasonMalformed},
		{"wrong iss", f.es.Sign(f.claims(map[string]any{"iss": "https://issuer.example.com"})), ReasonWrongIssuer},
		{"iss with a trailing slash", f.es.Sign(f.claims(map[string]any{"iss": f.o.URL + "/"})), ReasonWrongIssuer},
		{"no iss", f.es.Sign(f.claims(map[string]any{"iss": nil})), ReasonWrongIssuer},
		{"wrong aud", f.es.Sign(f.claims(map[string]any{"aud": "someone-else"})), ReasonWrongAudience},
		{"no aud", f.es.Sign(f.claims(map[string]any{"aud": nil})), ReasonWrongAudience},
		{"empty aud array", f.es.Sign(f.claims(map[string]any{"aud": []string{}})), ReasonWrongAudience},
		{"aud a number", f.es.Sign(f.claims(map[string]any{"aud": 7})), ReasonMalformed},
		{"expired beyond the skew", f.es.Sign(f.claims(map[string]any{"exp": now - 61})), ReasonExpired},
		{"expired at the skew", f.es.Sign(f.claims(map[string]any{"exp": now - 60})), ReasonExpired},
		{"nbf ahead beyond the skew", f.es.Sign(f.claims(map[string]any{"nbf": now + 61})), ReasonNotYetValid},
		{"no exp", f.es.Sign(f.claims(map[string]any{"exp": nil})), ReasonMalformed},
		{"exp a string", f.es.Sign(f.claims(map[string]any{"exp": fmt.Sprint(now + 300)})), ReasonMalformed},
		{"exp out of range", f.es.SignRaw(`{"alg":"ES256","kid":"es-1"}`, `{"iss":"`+f.o.URL+`","aud":"hotsock","exp":1e999}`), ReasonMalformed},
		{"iss a number", f.es.Sign(f.claims(map[string]any{"iss": 1})), ReasonMalformed},
		{"aud twice", f.es.SignRaw(`{"alg":"ES256","kid":"es-1"}`, fmt.Sprintf(`{"iss":%q,"aud":"evil","exp":%d,"aud":"hotsock"}`, f.o.URL, now+300)), ReasonMalformed},
		{"aud twice, once escaped", f.es.SignRaw(`{"alg":"ES256","kid":"es-1"}`, fmt.Sprintf(`{"iss":%q,"aud":"hotsock","exp":%d,"\u0061ud":"evil"}`, f.o.URL, now+300)), ReasonMalformed},
		{"claims not an object", f.es.SignRaw(`{"alg":"ES256","kid":"es-1"}`, `["aud"]`), ReasonMalformed},
		{"claims not JSON", f.es.SignRaw(`{"alg":"ES256","kid":"es-1"}`, `{"aud":"hotsock",`), ReasonMalformed},
		{"claims invalid UTF-8", f.es.SignRaw(`{"alg":"ES256","kid":"es-1"}`, "{\"iss\":\""+f.o.URL+"\",\"aud\":\"hotsock\",\"exp\":9999999999,\"sub\":\"\xff\"}"), ReasonMalformed},
		{"header not JSON", b64s([]byte(`{alg:ES256}`)) + "." + parts[1] + "." + parts[2], ReasonMalformed},
		{"header a JSON string", b64s([]byte(`"ES256"`)) + "." + parts[1] + "." + parts[2], ReasonMalformed},
		{"header alg twice", b64s([]byte(`{"alg":"none","alg":"ES256","kid":"es-1"}`)) + "." + parts[1] + "." + parts[2], ReasonMalformed},
		{"header alg a number", b64s([]byte(`{"alg":256,"kid":"es-1"}`)) + "." + parts[1] + "." + parts[2], ReasonMalformed},
		{"header without kid", b64s([]byte(`{"alg":"ES256"}`)) + "." + parts[1] + "." + parts[2], ReasonMalformed},
		{"header with crit", f.es.Sign(f.claims(nil), `"crit":["exp"]`, `"exp":1`), ReasonMalformed},
		{"unencoded payload (b64 false)", f.es.Sign(f.claims(nil), `"b64":false`, `"crit":["b64"]`), ReasonMalformed},
		{"malformed base64 in the header", "!!!." + parts[1] + "." + parts[2], ReasonMalformed},
		{"padded base64", parts[0] + "=." + parts[1] + "." + parts[2], ReasonMalformed},
		{"newline in the base64", parts[0][:5] + "\n" + parts[0][5:] + "." + parts[1] + "." + parts[2], ReasonMalformed},
		{"base64 with non-zero trailing bits", nonCanonical(parts[0]) + "." + parts[1] + "." + parts[2], ReasonMalformed},
		{"standard base64 alphabet", strings.ReplaceAll(parts[0], "-", "+") + "+." + parts[1] + "." + parts[2], ReasonMalformed},
		{"two parts", parts[0] + "." + parts[1], ReasonMalformed},
		{"five parts (JWE)", parts[0] + "." + parts[1] + "." + parts[2] + ".a.b", ReasonMalformed},
		{"empty", "", ReasonMalformed},
		{"dots only", "..", ReasonMalformed},
		{"1 MB", strings.Repeat("a", 1<<20), ReasonTooLarge},
		{"1 MB of a valid shape", parts[0] + "." + strings.Repeat("A", 1<<20) + "." + parts[2], ReasonTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := f.v.Verify(ctxT(t), tc.token)
			if tc.want == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if tok.Subject != "user-1" || tok.Issuer != f.o.URL || tok.Expiry.IsZero() {
					t.Fatalf("token %+v", tok)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want %v", tc.want)
			}
			var e *Error
			if !errors.As(err, &e) || e.Reason != tc.want || !errors.Is(err, tc.want) {
				t.Fatalf("refused with %v, want reason %v", err, tc.want)
			}
			if tok != nil {
				t.Fatal("a token returned with the error")
			}
		})
	}
	if n := attacker.JWKSFetches(); n != 0 {
		t.Errorf("the attacker's key set was fetched %d times", n)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func mustB64(s string) []byte {
	b, err := b64.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func quoteJSON(s string) string { return string(mustJSON(s)) }

// nonCanonical changes the unused low bits of the last character of a
// base64url string whose length leaves some.
func nonCanonical(s string) string {
	for len(s)%4 == 0 {
		s = b64s([]byte(`{"alg":"ES256","kid":"es-1","x":1}`))
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[last|1])
}

// Algorithms pinned by configuration win over the discovery document, and
// the key's own alg must match the token's.
func TestAlgorithmPinning(t *testing.T) {
	for _, tc := range []struct {
		name    string
		allowed []string
		key     func(f *fixture) testKey
		want    Reason
	}{
		{"configured ES256, token ES256", []string{"ES256"}, func(f *fixture) testKey { return f.es }, 0},
		{"configured ES256, token RS256", []string{"ES256"}, func(f *fixture) testKey { return f.rs }, ReasonWrongAlgorithm},
		{"configured PS256, key published as RS256", []string{"PS256"}, func(f *fixture) testKey { return f.rs.As("PS256", f.rs.Kid) }, ReasonWrongAlgorithm},
		{"discovery lists RS256", nil, func(f *fixture) testKey { return f.rs }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.Algorithms = tc.allowed })
			_, err := f.v.Verify(ctxT(t), tc.key(f).Sign(f.claims(nil)))
			if ReasonOf(err) != tc.want {
				t.Fatalf("%v, want %v", err, tc.want)
			}
		})
	}
}

// A key without alg verifies the algorithms its type fits, and only those.
func TestKeyWithoutAlg(t *testing.T) {
	c := newClock()
	rs := newKey(t, "PS256", "rs")
	o := newOrigin(t)
	body, _ := json.Marshal(map[string]any{"keys": []any{rs.JWK(true)}})
	o.SetBody(body)
	v := newTestVerifier(t, Config{JWKSURL: o.URL + "/jwks.json", Audiences: []string{"hotsock"}, Algorithms: []string{"PS256", "RS256", "ES256"}, Now: c.Now})
	for _, tc := range []struct {
		key  testKey
		want Reason
	}{{rs, 0}, {rs.As("RS256", rs.Kid), 0}, {newKey(t, "ES256", "rs"), ReasonWrongAlgorithm}} {
		_, err := v.Verify(ctxT(t), tc.key.Sign(claimsFor(c, "anyone", nil)))
		if ReasonOf(err) != tc.want {
			t.Errorf("%s: %v, want %v", tc.key.Alg, err, tc.want)
		}
	}
}

// The verified token exposes its claims.
func TestTokenClaims(t *testing.T) {
	f := newFixture(t, nil)
	now := f.clock.Now().Unix()
	tok, err := f.v.Verify(ctxT(t), f.es.Sign(f.claims(map[string]any{
		"aud": []string{"hotsock", "b"}, "nbf": now - 5, "jti": "id-1", "scp": []string{"read", "write"},
		"channels": map[string]any{"chat": true},
	})))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Alg != "ES256" || tok.Kid != "es-1" || tok.Typ != "JWT" || tok.ID != "id-1" ||
		strings.Join(tok.Audience, ",") != "hotsock,b" || !tok.NotBefore.Equal(time.Unix(now-5, 0)) ||
		!tok.Expiry.Equal(time.Unix(now+300, 0)) || !tok.IssuedAt.Equal(time.Unix(now, 0)) {
		t.Fatalf("token %+v", tok)
	}
	if v, ok := tok.Claim("channels"); !ok || string(v) != `{"chat":true}` {
		t.Errorf("channels %s %v", v, ok)
	}
	if s, ok := tok.StringsClaim("scp"); !ok || strings.Join(s, " ") != "read write" {
		t.Errorf("scp %v %v", s, ok)
	}
	if _, ok := tok.StringsClaim("sub"); ok {
		t.Error("sub read as an array")
	}
	if s, ok := tok.StringClaim("sub"); !ok || s != "user-1" {
		t.Errorf("sub %q", s)
	}
	if _, ok := tok.Claim("missing"); ok {
		t.Error("a missing claim found")
	}
	if got := strings.Join(tok.ClaimNames(), ","); !strings.Contains(got, "channels") || !strings.Contains(got, "scp") {
		t.Errorf("claim names %s", got)
	}
}

// Bad configurations are refused by New, each with its reason.
func TestConfigRefused(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Audiences: []string{"a"}}, "issuer URL or a key set URL is required"},
		{Config{Issuer: "https://x.example.com"}, "at least one audience"},
		{Config{Issuer: "https://x.example.com", Audiences: []string{""}}, "audience is empty"},
		{Config{Issuer: "http://x.example.com", Audiences: []string{"a"}}, "must use https"},
		{Config{Issuer: "x.example.com", Audiences: []string{"a"}}, "absolute URL"},
		{Config{JWKSURL: "https://x.example.com/jwks.json", Audiences: []string{"a"}}, "algorithms are required with a key set URL"},
		{Config{Issuer: "https://x.example.com", Audiences: []string{"a"}, Algorithms: []string{"HS256"}}, `"HS256" is never accepted`},
		{Config{Issuer: "https://x.example.com", Audiences: []string{"a"}, Algorithms: []string{"none"}}, `"none" is never accepted`},
		{Config{Issuer: "https://x.example.com", Audiences: []string{"a"}, Algorithms: []string{"ES256K"}}, "not an algorithm this verifier supports"},
		{Config{Issuer: "https://x.example.com", Audiences: []string{"a"}, ClockSkew: -1}, "clock skew is -1ns"},
		{Config{Issuer: "https://u:p@x.example.com", Audiences: []string{"a"}}, "user info"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	for _, ok := range []string{"http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:2", "https://id.example.com/tenant/"} {
		v, err := New(Config{Issuer: ok, Audiences: []string{"a"}})
		if err != nil {
			t.Errorf("%s refused: %v", ok, err)
			continue
		}
		closeAndCheck(t, v)
	}
}
