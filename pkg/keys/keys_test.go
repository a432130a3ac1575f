package keys

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseAlgorithm(t *testing.T) {
	for _, a := range Algorithms {
		if got, err := ParseAlgorithm(string(a)); err != nil || got != a {
			t.Errorf("ParseAlgorithm(%s) = %v, %v", a, got, err)
		}
	}
	_, err := ParseAlgorithm("HS256")
	if err == nil || !strings.Contains(err.Error(), "ES256, ES384, RS256") {
		t.Fatalf("error %v does not list the supported algorithms", err)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for _, alg := range Algorithms {
		t.Run(string(alg), func(t *testing.T) {
			rec, err := NewRecord(alg, now)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseRecord(rec.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			if got.Kid != rec.Kid || got.Alg != alg || !got.CreatedAt.Equal(now) || got.PublicKeyJwk != rec.PublicKeyJwk {
				t.Fatalf("round trip changed the record: %+v vs %+v", got, rec)
			}
			priv, err := got.PrivateKey()
			if err != nil {
				t.Fatal(err)
			}
			switch alg {
			case RS256:
				if k := priv.(*rsa.PrivateKey); k.N.BitLen() < MinRSABits {
					t.Fatalf("RSA key of %d bits", k.N.BitLen())
				}
			default:
				if _, ok := priv.(*ecdsa.PrivateKey); !ok {
					t.Fatalf("key type %T", priv)
				}
			}
			if strings.Contains(string(MarshalSet([]JWK{got.Public()})), "PRIVATE") {
				t.Fatal("private material in the key set")
			}
		})
	}
}

// A secret written by the cdk-jwks-rotation construct (jose's exportPKCS8 and
// exportJWK; fixtures made with node jose 5) is adopted as is.
func TestParseCDKJWKSRotationRecord(t *testing.T) {
	for _, name := range []string{"es256", "rs256"} {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile("testdata/cdk-jwks-rotation-" + name + ".json")
			if err != nil {
				t.Fatal(err)
			}
			var original map[string]any
			if err := json.Unmarshal(raw, &original); err != nil {
				t.Fatal(err)
			}
			rec, err := ParseRecord(raw)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Kid != original["kid"] || string(rec.Alg) != original["alg"] {
				t.Fatalf("kid/alg = %s/%s, want %v/%v", rec.Kid, rec.Alg, original["kid"], original["alg"])
			}
			if rec.ActivatedAt == nil || rec.ActivatedAt.Format(time.RFC3339) != "2026-01-02T00:00:00Z" {
				t.Fatalf("activatedAt = %v", rec.ActivatedAt)
			}
			if _, err := rec.PrivateKey(); err != nil {
				t.Fatalf("private key: %v", err)
			}
			// Written back, the construct's fields keep their names.
			var back map[string]any
			_ = json.Unmarshal(rec.Marshal(), &back)
			for _, f := range []string{"privateKeyPem", "publicKeyJwk", "kid", "alg", "createdAt", "activatedAt"} {
				if back[f] == nil {
					t.Errorf("field %s lost on write", f)
				}
			}
		})
	}
}

func TestParseRecordRejects(t *testing.T) {
	good, _ := NewRecord(ES256, time.Now())
	other, _ := NewRecord(ES256, time.Now())
	mixed := good
	mixed.PrivateKeyPem = other.PrivateKeyPem
	tests := []struct {
		name    string
		value   string
		notRec  bool
		wantErr string
	}{
		{"empty object", `{}`, true, ""},
		{"empty", ``, true, ""},
		{"not json", `hello`, true, ""},
		{"bad alg", withField(good, "alg", "HS256"), false, "unsupported key algorithm"},
		{"no key", `{"kid":"a","alg":"ES256","publicKeyJwk":` + jsonOf(good.PublicKeyJwk) + `}`, false, "neither privateKeyPem nor kmsKeyArn"},
		{"private jwk", `{"kid":"a","alg":"ES256","privateKeyPem":"x","publicKeyJwk":{"kty":"EC","d":"secret"}}`, false, "key record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRecord([]byte(tt.value))
			if tt.notRec {
				if !errors.Is(err, ErrNotRecord) {
					t.Fatalf("err = %v, want ErrNotRecord", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "BEGIN") {
				t.Fatal("error quotes key material")
			}
		})
	}
	rec, err := ParseRecord(mixed.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rec.PrivateKey(); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("mismatched private key accepted: %v", err)
	}
}

func withField(r Record, name string, value any) string {
	var m map[string]any
	_ = json.Unmarshal(r.Marshal(), &m)
	m[name] = value
	return jsonOf(m)
}

func jsonOf(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestParseJWKRefusesPrivateMembers(t *testing.T) {
	if _, err := ParseJWK([]byte(`{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"c","kid":"k"}`)); err == nil {
		t.Fatal("private JWK accepted")
	}
	if _, err := ParseJWK([]byte(`{"kty":"EC","crv":"P-256","x":"AA","y":"AA","kid":"k"}`)); err == nil {
		t.Fatal("point of the wrong size accepted")
	}
}

func TestMarshalSetIsDeterministic(t *testing.T) {
	a, _ := NewRecord(ES256, time.Now())
	b, _ := NewRecord(RS256, time.Now())
	one := MarshalSet([]JWK{a.Public(), b.Public()})
	two := MarshalSet([]JWK{a.Public(), b.Public()})
	if string(one) != string(two) {
		t.Fatal("same keys, different bytes")
	}
	set, err := ParseSet(one)
	if err != nil || len(set.Keys) != 2 || set.Keys[1].Kty != "RSA" {
		t.Fatalf("ParseSet = %+v, %v", set, err)
	}
	if string(MarshalSet(nil)) != `{"keys":[]}` {
		t.Fatalf("empty set: %s", MarshalSet(nil))
	}
}

// The PEM forms a key may come in when it is adopted: PKCS #8, SEC 1, and
// the hotsock jwt-issuer's PKCS #8 bytes under an "EC PRIVATE KEY" header.
func TestParsePrivateKeyForms(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(ec)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	pkix, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	p521der, _ := x509.MarshalPKCS8PrivateKey(p521)
	encode := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	tests := []struct {
		name, pem string
		alg       Algorithm
		err       string
	}{
		{"PKCS #8", encode("PRIVATE KEY", pkcs8), ES256, ""},
		{"SEC 1", encode("EC PRIVATE KEY", sec1), ES256, ""},
		{"PKCS #8 under the SEC 1 header (hotsock)", encode("EC PRIVATE KEY", pkcs8), ES256, ""},
		{"a public key", encode("PUBLIC KEY", pkix), "", `unsupported PEM type "PUBLIC KEY"`},
		{"garbage under the header", encode("EC PRIVATE KEY", []byte("nope")), "", "does not hold a valid key"},
		{"not PEM", "-----BEGIN nothing", "", "no PEM block"},
		{"P-521 parses but has no algorithm here", encode("PRIVATE KEY", p521der), "", "curve P-521"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			priv, err := ParsePrivateKey(tt.pem)
			var alg Algorithm
			if err == nil {
				alg, err = AlgorithmOf(priv.Public())
			}
			if tt.err == "" {
				if err != nil || alg != tt.alg {
					t.Fatalf("= %s, %v; want %s", alg, err, tt.alg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
		})
	}
}
