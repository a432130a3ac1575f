// Package perf holds the benchmarks `make bench` reports: the signing floor,
// the signer's warm path, a golang-jwt baseline doing the same work, batch
// issuing and verification. They live outside _test files so that
// cmd/bench can run them in one process with testing.Benchmark, in
// interleaved rounds (machine noise then falls on every path alike), and
// pkg/token's `go test -bench` runs the very same functions.
package perf

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/token"
)

// Payload is a typical hotsock request: a few claims, nested objects, and
// every override flag set. Every path signs these claims.
const Payload = `{"claims":{"aud":"hotsock","sub":"user-1234","channels":{"chat":{"subscribe":true,"publish":false}},"umd":{"name":"Ada"}},"ttl":300,"setIat":true,"setJti":true}`

// Path is one benchmark.
type Path struct {
	Name string
	// Tokens is how many tokens one operation makes (batch paths).
	Tokens int
	// Floor and Baseline name the paths this one is compared with.
	Floor, Baseline string
	Bench           func(b *testing.B)
}

// Floors are the candidates for each algorithm's floor; the faster of
// each list is the floor.
var Floors = map[string][]string{
	"es256-floor":        {"es256-floor-sign", "es256-floor-asn1"},
	"es384-floor":        {"es384-floor-sign", "es384-floor-asn1"},
	"rs256-floor":        {"rs256-floor-pkcs1"},
	"es256-verify-floor": {"es256-verify-floor-ecdsa"},
}

// BatchSizes are the batch paths measured.
var BatchSizes = []int{100, 1000}

type fixture struct {
	alg    keys.Algorithm
	rec    keys.Record
	priv   crypto.Signer
	issuer *token.Issuer
	jwks   []byte
	input  []byte // header.claims of a token the signer made for Payload
	token  string
}

func newFixture(alg keys.Algorithm) (*fixture, error) {
	rec, err := keys.NewRecord(alg, time.Now())
	if err != nil {
		return nil, err
	}
	priv, err := rec.PrivateKey()
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	load := func(context.Context) (*token.Key, error) { return token.KeyFromRecord(rec, nil) }
	cache := token.NewKeyCache(load, time.Hour, time.Now, log)
	f := &fixture{alg: alg, rec: rec, priv: priv,
		issuer: token.NewIssuer(cache, time.Hour, time.Now),
		jwks:   keys.MarshalSet([]keys.JWK{rec.PublicKeyJwk})}
	out, err := f.issuer.Invoke(context.Background(), []byte(Payload))
	if err != nil {
		return nil, err
	}
	var resp struct{ Token string }
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil, err
	}
	f.token = resp.Token
	f.input = []byte(f.token[:strings.LastIndexByte(f.token, '.')])
	return f, nil
}

// Paths sets up keys and returns every path, floors first.
func Paths() ([]Path, error) {
	var paths []Path
	fixtures := map[keys.Algorithm]*fixture{}
	for _, alg := range keys.Algorithms {
		f, err := newFixture(alg)
		if err != nil {
			return nil, fmt.Errorf("%s fixture: %w", alg, err)
		}
		fixtures[alg] = f
		name := strings.ToLower(string(alg))
		floor, baseline := name+"-floor", name+"-golangjwt"
		switch priv := f.priv.(type) {
		case *ecdsa.PrivateKey:
			paths = append(paths,
				Path{Name: name + "-floor-sign", Tokens: 1, Floor: floor, Baseline: baseline, Bench: floorSign(alg, priv, f.input)},
				Path{Name: name + "-floor-asn1", Tokens: 1, Floor: floor, Baseline: baseline, Bench: floorASN1(alg, priv, f.input)})
		case *rsa.PrivateKey:
			paths = append(paths, Path{Name: name + "-floor-pkcs1", Tokens: 1, Floor: floor, Baseline: baseline, Bench: floorPKCS1(priv, f.input)})
		}
		paths = append(paths,
			Path{Name: name + "-signer", Tokens: 1, Floor: floor, Baseline: baseline, Bench: signer(f.issuer, []byte(Payload))},
			Path{Name: baseline, Tokens: 1, Floor: floor, Baseline: baseline, Bench: golangJWT(alg, f.rec.Kid, f.priv)})
	}
	es256 := fixtures[keys.ES256]
	for _, n := range BatchSizes {
		paths = append(paths, Path{Name: fmt.Sprintf("es256-batch%d", n), Tokens: n,
			Floor: "es256-floor", Baseline: "es256-golangjwt", Bench: signer(es256.issuer, BatchPayload(n))})
	}
	verifyFloor := "es256-verify-floor"
	paths = append(paths,
		Path{Name: "es256-verify-floor-ecdsa", Tokens: 1, Floor: verifyFloor, Baseline: "es256-verify-golangjwt", Bench: verifyFloorECDSA(es256)},
		Path{Name: "es256-verify", Tokens: 1, Floor: verifyFloor, Baseline: "es256-verify-golangjwt", Bench: verifyJWX(es256)},
		Path{Name: "es256-verify-golangjwt", Tokens: 1, Floor: verifyFloor, Baseline: "es256-verify-golangjwt", Bench: verifyGolangJWT(es256)})
	return paths, nil
}

// BatchPayload is {"batch":[...]} of n requests like Payload.
func BatchPayload(n int) []byte {
	item := strings.TrimSuffix(strings.TrimPrefix(Payload, "{"), "}")
	var b strings.Builder
	b.WriteString(`{"batch":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("{" + item + "}")
	}
	b.WriteString("]}")
	return []byte(b.String())
}

func digest(alg keys.Algorithm, input []byte) []byte {
	if alg == keys.ES384 {
		d := sha512.Sum384(input)
		return d[:]
	}
	d := sha256.Sum256(input)
	return d[:]
}

// floorSign: hash, ecdsa.Sign, r‖s, base64url.
func floorSign(alg keys.Algorithm, priv *ecdsa.PrivateKey, input []byte) func(*testing.B) {
	return func(b *testing.B) {
		size := alg.SignatureSize()
		buf := make([]byte, 0, 256)
		b.ReportAllocs()
		for b.Loop() {
			r, s, err := ecdsa.Sign(rand.Reader, priv, digest(alg, input))
			if err != nil {
				b.Fatal(err)
			}
			sig := make([]byte, size)
			r.FillBytes(sig[:size/2])
			s.FillBytes(sig[size/2:])
			buf = base64.RawURLEncoding.AppendEncode(buf[:0], sig)
		}
	}
}

// floorASN1: hash, ecdsa.SignASN1, DER → r‖s, base64url.
func floorASN1(alg keys.Algorithm, priv *ecdsa.PrivateKey, input []byte) func(*testing.B) {
	return func(b *testing.B) {
		size := alg.SignatureSize()
		buf := make([]byte, 0, 256)
		b.ReportAllocs()
		for b.Loop() {
			der, err := ecdsa.SignASN1(rand.Reader, priv, digest(alg, input))
			if err != nil {
				b.Fatal(err)
			}
			sig, err := token.DERToJOSE(der, size)
			if err != nil {
				b.Fatal(err)
			}
			buf = base64.RawURLEncoding.AppendEncode(buf[:0], sig)
		}
	}
}

// floorPKCS1: hash, rsa.SignPKCS1v15, base64url.
func floorPKCS1(priv *rsa.PrivateKey, input []byte) func(*testing.B) {
	return func(b *testing.B) {
		buf := make([]byte, 0, 512)
		b.ReportAllocs()
		for b.Loop() {
			d := sha256.Sum256(input)
			sig, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, d[:])
			if err != nil {
				b.Fatal(err)
			}
			buf = base64.RawURLEncoding.AppendEncode(buf[:0], sig)
		}
	}
}

// signer: the Lambda handler's warm path, invoke JSON in, token JSON out.
func signer(iss *token.Issuer, payload []byte) func(*testing.B) {
	return func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := iss.Invoke(ctx, payload); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func golangJWT(alg keys.Algorithm, kid string, priv crypto.Signer) func(*testing.B) {
	method := jwt.GetSigningMethod(string(alg))
	return func(b *testing.B) {
		payload := []byte(Payload)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := GolangJWTInvoke(payload, method, kid, priv); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// GolangJWTInvoke does what the common Go issuers do for the same request:
// decode into MapClaims, set exp, iat and jti, sign with golang-jwt, encode
// the response.
func GolangJWTInvoke(payload []byte, method jwt.SigningMethod, kid string, priv any) ([]byte, error) {
	var req struct {
		Claims jwt.MapClaims `json:"claims"`
		TTL    int64         `json:"ttl"`
		SetIat bool          `json:"setIat"`
		SetJti bool          `json:"setJti"`
	}
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, err
	}
	now := time.Now().Unix()
	if req.TTL > 0 {
		req.Claims["exp"] = now + req.TTL
	}
	if req.SetIat {
		req.Claims["iat"] = now
	}
	if req.SetJti {
		var u [16]byte
		if _, err := rand.Read(u[:]); err != nil {
			return nil, err
		}
		u[6] = u[6]&0x0f | 0x40
		u[8] = u[8]&0x3f | 0x80
		h := hex.EncodeToString(u[:])
		req.Claims["jti"] = h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	}
	t := jwt.NewWithClaims(method, req.Claims)
	t.Header["kid"] = kid
	s, err := t.SignedString(priv)
	if err != nil {
		return nil, err
	}
	return json.Marshal(struct {
		Token string `json:"token"`
	}{s})
}

// verifyFloorECDSA: base64url-decode the signature, hash, ecdsa.Verify.
func verifyFloorECDSA(f *fixture) func(*testing.B) {
	return func(b *testing.B) {
		pub := f.priv.Public().(*ecdsa.PublicKey)
		dot := strings.LastIndexByte(f.token, '.')
		b.ReportAllocs()
		for b.Loop() {
			sig, err := base64.RawURLEncoding.DecodeString(f.token[dot+1:])
			if err != nil || len(sig) != 64 {
				b.Fatal("bad signature")
			}
			d := sha256.Sum256([]byte(f.token[:dot]))
			r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
			if !ecdsa.Verify(pub, d[:], r, s) {
				b.Fatal("does not verify")
			}
		}
	}
}

// verifyJWX: a verifier holding the published key set (fetched and parsed
// once) checks a token with jwx, the key found by the token's kid.
func verifyJWX(f *fixture) func(*testing.B) {
	return func(b *testing.B) {
		set, err := jwk.Parse(f.jwks)
		if err != nil {
			b.Fatal(err)
		}
		tok := []byte(f.token)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jws.Verify(tok, jws.WithKeySet(set)); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// verifyGolangJWT: the same with golang-jwt, exp required and checked.
func verifyGolangJWT(f *fixture) func(*testing.B) {
	return func(b *testing.B) {
		set, err := keys.ParseSet(f.jwks)
		if err != nil {
			b.Fatal(err)
		}
		byKid := map[string]any{}
		for _, j := range set.Keys {
			pub, err := j.PublicKey()
			if err != nil {
				b.Fatal(err)
			}
			byKid[j.Kid] = pub
		}
		keyfunc := func(t *jwt.Token) (any, error) {
			kid, _ := t.Header["kid"].(string)
			if k, ok := byKid[kid]; ok {
				return k, nil
			}
			return nil, fmt.Errorf("unknown kid %q", kid)
		}
		parser := jwt.NewParser(jwt.WithValidMethods([]string{"ES256"}), jwt.WithExpirationRequired())
		b.ReportAllocs()
		for b.Loop() {
			if _, err := parser.Parse(f.token, keyfunc); err != nil {
				b.Fatal(err)
			}
		}
	}
}
