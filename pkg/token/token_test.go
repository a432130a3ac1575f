package token

import (
	"context"
	"crypto/ecdsa"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwks-issuer/pkg/keys"
)

var now0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func quietLog() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

func newIssuer(t *testing.T, alg keys.Algorithm, opts ...Option) (*Issuer, keys.Record, *clock) {
	t.Helper()
	rec, err := keys.NewRecord(alg, now0)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{now0}
	load := func(context.Context) (*Key, error) { return KeyFromRecord(rec, nil) }
	cache := NewKeyCache(load, time.Minute, c.Now, quietLog())
	return NewIssuer(cache, time.Hour, c.Now, opts...), rec, c
}

// verify checks a token with golang-jwt, an implementation independent of
// this package, and returns its claims.
func verify(t *testing.T, tok string, rec keys.Record, at time.Time) jwt.MapClaims {
	t.Helper()
	pub, err := rec.PublicKeyJwk.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	parsed, err := jwt.ParseWithClaims(tok, claims, func(tk *jwt.Token) (any, error) {
		if tk.Header["kid"] != rec.Kid || tk.Header["typ"] != "JWT" {
			t.Errorf("header %v, want kid %s and typ JWT", tk.Header, rec.Kid)
		}
		return pub, nil
	}, jwt.WithValidMethods([]string{string(rec.Alg)}), jwt.WithTimeFunc(func() time.Time { return at }))
	if err != nil || !parsed.Valid {
		t.Fatalf("golang-jwt rejects %s token: %v", rec.Alg, err)
	}
	return claims
}

func invoke(t *testing.T, iss *Issuer, payload string) (string, error) {
	t.Helper()
	out, err := iss.Invoke(context.Background(), []byte(payload))
	if err != nil {
		return "", err
	}
	var resp struct{ Token string }
	if err := json.Unmarshal(out, &resp); err != nil || resp.Token == "" {
		t.Fatalf("response %s is not {\"token\":...}: %v", out, err)
	}
	return resp.Token, nil
}

// The example of the hotsock jwt-issuer README works as is.
func TestHotsockReadmePayload(t *testing.T) {
	for _, alg := range keys.Algorithms {
		t.Run(string(alg), func(t *testing.T) {
			iss, rec, _ := newIssuer(t, alg)
			tok, err := invoke(t, iss, `{"claims":{"aud":"hotsock","channels":{"chat":{"subscribe":true}}},"ttl":30}`)
			if err != nil {
				t.Fatal(err)
			}
			claims := verify(t, tok, rec, now0)
			if claims["aud"] != "hotsock" || claims["exp"] != float64(now0.Unix()+30) {
				t.Fatalf("claims %v", claims)
			}
			ch := claims["channels"].(map[string]any)["chat"].(map[string]any)
			if ch["subscribe"] != true {
				t.Fatalf("nested claims lost: %v", claims)
			}
			if _, ok := claims["iat"]; ok {
				t.Fatal("iat set without setIat")
			}
		})
	}
}

func TestIssueClaimRules(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	now := now0.Unix()
	tests := []struct {
		name    string
		payload string
		check   func(t *testing.T, c jwt.MapClaims)
	}{
		{"no ttl and no exp: exp is now + T", `{"claims":{"sub":"a"}}`, func(t *testing.T, c jwt.MapClaims) {
			if c["exp"] != float64(now+3600) {
				t.Errorf("exp %v", c["exp"])
			}
		}},
		{"ttl 0 means not set", `{"claims":{"sub":"a"},"ttl":0}`, func(t *testing.T, c jwt.MapClaims) {
			if c["exp"] != float64(now+3600) {
				t.Errorf("exp %v", c["exp"])
			}
		}},
		{"exp within T is kept", `{"claims":{"exp":` + itoa(now+60) + `}}`, func(t *testing.T, c jwt.MapClaims) {
			if c["exp"] != float64(now+60) {
				t.Errorf("exp %v", c["exp"])
			}
		}},
		{"ttl overrides exp", `{"claims":{"exp":` + itoa(now+99999) + `},"ttl":10}`, func(t *testing.T, c jwt.MapClaims) {
			if c["exp"] != float64(now+10) {
				t.Errorf("exp %v", c["exp"])
			}
		}},
		{"setIat overrides iat", `{"claims":{"iat":5},"setIat":true}`, func(t *testing.T, c jwt.MapClaims) {
			if c["iat"] != float64(now) {
				t.Errorf("iat %v", c["iat"])
			}
		}},
		{"setJti overrides jti with a UUID v4", `{"claims":{"jti":"mine"},"setJti":true}`, func(t *testing.T, c jwt.MapClaims) {
			if s, _ := c["jti"].(string); !uuid.MatchString(s) {
				t.Errorf("jti %v", c["jti"])
			}
		}},
		{"flags false leave claims", `{"claims":{"iat":5,"jti":"mine"},"setIat":false,"setJti":false}`, func(t *testing.T, c jwt.MapClaims) {
			if c["iat"] != float64(5) || c["jti"] != "mine" {
				t.Errorf("claims %v", c)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss, rec, _ := newIssuer(t, keys.ES256)
			tok, err := invoke(t, iss, tt.payload)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, verify(t, tok, rec, time.Unix(now, 0)))
		})
	}
}

func itoa(n int64) string { return big.NewInt(n).String() }

func TestRequestErrors(t *testing.T) {
	now := now0.Unix()
	tests := []struct{ payload, want string }{
		{`not json`, "payload must be a JSON object"},
		{`[1]`, "payload must be a JSON object"},
		{`{}`, "claims is required and must be a JSON object"},
		{`{"claims":null}`, "claims must be a JSON object, got null"},
		{`{"claims":[1]}`, "claims must be a JSON object, got an array"},
		{`{"claims":"x"}`, "claims must be a JSON object, got a string"},
		{`{"claims":{},"ttl":-1}`, "ttl is -1, must not be negative"},
		{`{"claims":{},"ttl":1.5}`, "ttl must be an integer number of seconds, got a number"},
		{`{"claims":{},"ttl":"30"}`, "ttl must be an integer number of seconds, got a string"},
		{`{"claims":{},"ttl":3601}`, "ttl is 3601, the limit is 3600 seconds (MAX_TOKEN_TTL_SECONDS)"},
		{`{"claims":{},"tll":30}`, `unknown field "tll"`},
		{`{"claims":{},"setIat":"yes"}`, "setIat must be true or false, got a string"},
		{`{"claims":{},"setJti":1}`, "setJti must be true or false, got a number"},
		{`{"claims":{"exp":"soon"}}`, "claims.exp must be a number"},
		{`{"claims":{"exp":` + itoa(now+3601) + `}}`, "claims.exp is 3601 seconds from now, the limit is 3600 seconds"},
	}
	iss, rec, _ := newIssuer(t, keys.ES256)
	for _, tt := range tests {
		_, err := invoke(t, iss, tt.payload)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !IsRequestError(err) {
			t.Errorf("%s: error %v, want %q", tt.payload, err, tt.want)
		}
	}
	// A bad request leaves the issuer working.
	tok, err := invoke(t, iss, `{"claims":{"sub":"after"}}`)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, tok, rec, now0)
}

func TestKeyCacheRefreshAndStaleness(t *testing.T) {
	c := &clock{now0}
	recA, _ := keys.NewRecord(keys.ES256, now0)
	recB, _ := keys.NewRecord(keys.ES256, now0)
	current, failing, loads := recA, false, 0
	load := func(context.Context) (*Key, error) {
		loads++
		if failing {
			return nil, errors.New("secrets manager unavailable")
		}
		return KeyFromRecord(current, nil)
	}
	cache := NewKeyCache(load, time.Minute, c.Now, quietLog())
	kid := func() string {
		k, err := cache.Key(context.Background())
		if err != nil {
			return "error: " + err.Error()
		}
		return k.Kid
	}
	steps := []struct {
		advance time.Duration
		rotate  bool
		fail    bool
		want    string
		loads   int
	}{
		{0, false, false, recA.Kid, 1},
		{29 * time.Second, true, false, recA.Kid, 1},            // younger than S/2: cached
		{1 * time.Second, false, false, recB.Kid, 2},            // at S/2: refreshed
		{30 * time.Second, false, true, recB.Kid, 3},            // refresh fails, younger than S: cached key
		{29 * time.Second, false, true, recB.Kid, 4},            // still younger than S
		{1 * time.Second, false, true, "error: signing key", 5}, // at S: refused
		{0, false, false, recB.Kid, 6},                          // recovered
	}
	for i, s := range steps {
		c.t = c.t.Add(s.advance)
		if s.rotate {
			current = recB
		}
		failing = s.fail
		if got := kid(); !strings.HasPrefix(got, s.want) {
			t.Fatalf("step %d: %s, want %s", i, got, s.want)
		}
		if loads != s.loads {
			t.Fatalf("step %d: %d loads, want %d", i, loads, s.loads)
		}
	}
}

func TestZeroCacheReadsEveryTime(t *testing.T) {
	c := &clock{now0}
	rec, _ := keys.NewRecord(keys.ES256, now0)
	loads := 0
	cache := NewKeyCache(func(context.Context) (*Key, error) { loads++; return KeyFromRecord(rec, nil) }, 0, c.Now, quietLog())
	for range 3 {
		if _, err := cache.Key(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if loads != 3 {
		t.Fatalf("%d loads with KEY_CACHE_SECONDS=0, want 3", loads)
	}
}

func TestDERToJOSEPadsShortIntegers(t *testing.T) {
	for _, size := range []int{64, 96} {
		r := big.NewInt(0x1234)                                // far shorter than half
		s := new(big.Int).Lsh(big.NewInt(1), uint(size/2*8-9)) // one byte short
		der, _ := asn1.Marshal(struct{ R, S *big.Int }{r, s})
		out, err := DERToJOSE(der, size)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != size {
			t.Fatalf("len %d, want %d", len(out), size)
		}
		if new(big.Int).SetBytes(out[:size/2]).Cmp(r) != 0 || new(big.Int).SetBytes(out[size/2:]).Cmp(s) != 0 {
			t.Fatal("r or s changed")
		}
	}
	for _, bad := range [][]byte{nil, {0x30, 0x00}, []byte("garbage")} {
		if _, err := DERToJOSE(bad, 64); err == nil {
			t.Errorf("DERToJOSE(%x) accepted", bad)
		}
	}
	big33 := new(big.Int).Lsh(big.NewInt(1), 33*8)
	der, _ := asn1.Marshal(struct{ R, S *big.Int }{big33, big.NewInt(1)})
	if _, err := DERToJOSE(der, 64); err == nil {
		t.Error("oversized r accepted")
	}
}

// Signatures whose r or s is short (about 1 in 128) still verify elsewhere.
func TestLocalSignerShortRAndSVerify(t *testing.T) {
	rec, _ := keys.NewRecord(keys.ES256, now0)
	priv, _ := rec.PrivateKey()
	key, _ := KeyFromRecord(rec, nil)
	short := 0
	for i := 0; i < 2000 && short < 5; i++ {
		tok, err := key.SignProbe(context.Background(), map[string]any{"i": i})
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := jwt.NewParser().DecodeSegment(tok[strings.LastIndexByte(tok, '.')+1:])
		if len(sig) != 64 {
			t.Fatalf("signature of %d bytes", len(sig))
		}
		if sig[0] == 0 || sig[32] == 0 {
			short++
			if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return priv.Public().(*ecdsa.PublicKey), nil },
				jwt.WithValidMethods([]string{"ES256"}), jwt.WithoutClaimsValidation()); err != nil {
				t.Fatalf("token with a short r or s rejected: %v", err)
			}
		}
	}
	if short == 0 {
		t.Fatal("no short r or s in 2000 signatures; the padding path went untested")
	}
}
