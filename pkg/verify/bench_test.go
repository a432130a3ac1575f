package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
	"time"
)

// BenchmarkVerify is the warm path: the key set cached, a token like the
// signer's for the hotsock payload. make bench runs the same path against
// the verify floor (cmd/bench).
func BenchmarkVerify(b *testing.B) {
	c := newClock()
	key := newKey(b, "ES256", "ZAsizLoUshQMysVdl5Ftb")
	o := newOrigin(b, key)
	o.SetCacheControl("max-age=3600", "")
	v := newTestVerifier(b, Config{Issuer: o.URL, Audiences: []string{"hotsock"}, ClockSkew: time.Minute, Now: c.Now})
	token := key.SignRaw(`{"alg":"ES256","kid":"ZAsizLoUshQMysVdl5Ftb","typ":"JWT"}`,
		`{"aud":"hotsock","sub":"user-1234","channels":{"chat":{"subscribe":true,"publish":false}},"umd":{"name":"Ada"},"exp":1780000300,"iat":1780000000,"jti":"0b6e2c8a-4f1d-4b7e-9c3a-2d5e8f1a7b6c"}`)
	if _, err := v.Verify(context.Background(), token); err == nil || ReasonOf(err) != ReasonWrongIssuer {
		b.Fatalf("setup: %v", err)
	}
	v = newTestVerifier(b, Config{JWKSURL: o.URL + "/jwks.json", Algorithms: []string{"ES256"}, Audiences: []string{"hotsock"}, ClockSkew: time.Minute, Now: c.Now})
	ctx := context.Background()
	if _, err := v.Verify(ctx, token); err != nil {
		b.Fatal(err)
	}
	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, token); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("floor", func(b *testing.B) {
		pub := key.Signer.Public().(*ecdsa.PublicKey)
		dot := strings.LastIndexByte(token, '.')
		b.ReportAllocs()
		for b.Loop() {
			sig, err := base64.RawURLEncoding.DecodeString(token[dot+1:])
			if err != nil || len(sig) != 64 {
				b.Fatal("bad signature")
			}
			d := sha256.Sum256([]byte(token[:dot]))
			r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
			if !ecdsa.Verify(pub, d[:], r, s) {
				b.Fatal("does not verify")
			}
		}
	})
	b.Run("split", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, e := split(token, 1<<14); e != nil {
				b.Fatal(e)
			}
		}
	})
}

// BenchmarkHostileHeader: the largest header a token may carry, read
// before any signature is checked, costs linear time.
func BenchmarkHostileHeader(b *testing.B) {
	var h strings.Builder
	h.WriteString(`{"alg":"ES256","kid":"k"`)
	for i := 0; h.Len() < 11000; i++ {
		h.WriteString(`,"` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + itoa(i) + `":0`)
	}
	h.WriteString("}")
	token := base64.RawURLEncoding.EncodeToString([]byte(h.String())) + ".e30.AAAA"
	if len(token) > DefaultMaxTokenBytes {
		b.Fatalf("token of %d bytes", len(token))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, e := split(token, DefaultMaxTokenBytes); e != nil {
			b.Fatal(e)
		}
	}
}

func itoa(i int) string { return big.NewInt(int64(i)).String() }
