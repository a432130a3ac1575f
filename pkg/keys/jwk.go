package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// JWK is the public half of a key as published: the members a verifier needs
// and nothing else. Field order is fixed so that the same key always
// serialises to the same bytes.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// PublicJWK describes pub as a signing JWK.
func PublicJWK(pub crypto.PublicKey, kid string, alg Algorithm) (JWK, error) {
	j := JWK{Kid: kid, Alg: string(alg), Use: "sig"}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		raw, err := k.Bytes() // 0x04 || X || Y, each left-padded to size
		if err != nil {
			return JWK{}, fmt.Errorf("encode ec public key: %w", err)
		}
		j.Kty, j.Crv = "EC", k.Curve.Params().Name
		j.X = b64(raw[1 : 1+size])
		j.Y = b64(raw[1+size:])
	case *rsa.PublicKey:
		j.Kty = "RSA"
		j.N = b64(k.N.Bytes())
		j.E = b64(big.NewInt(int64(k.E)).Bytes())
	default:
		return JWK{}, fmt.Errorf("unsupported public key type %T", pub)
	}
	if err := alg.checkPublic(pub); err != nil {
		return JWK{}, err
	}
	return j, nil
}

// ParseJWK reads a public JWK, keeping only the public members. It refuses
// a JWK without kid or with private members, so that a record can never leak
// a private key into the published set.
func ParseJWK(raw []byte) (JWK, error) {
	var probe struct {
		JWK
		D  *json.RawMessage `json:"d"`
		P  *json.RawMessage `json:"p"`
		K  *json.RawMessage `json:"k"`
		Qi *json.RawMessage `json:"qi"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return JWK{}, fmt.Errorf("parse jwk: %w", err)
	}
	if probe.D != nil || probe.P != nil || probe.K != nil || probe.Qi != nil {
		return JWK{}, errors.New("parse jwk: holds private key members; only a public JWK is accepted")
	}
	j := probe.JWK
	if j.Use == "" {
		j.Use = "sig"
	}
	if _, err := j.PublicKey(); err != nil {
		return JWK{}, err
	}
	return j, nil
}

// PublicKey decodes the JWK into a Go public key, checking that the point is
// on the curve and the RSA modulus is large enough for the algorithm.
func (j JWK) PublicKey() (crypto.PublicKey, error) {
	switch j.Kty {
	case "EC":
		curve, size := curveByName(j.Crv)
		if curve == nil {
			return nil, fmt.Errorf("jwk %q: unsupported crv %q (want P-256 or P-384)", j.Kid, j.Crv)
		}
		x, errX := unb64(j.X)
		y, errY := unb64(j.Y)
		if errX != nil || errY != nil || len(x) != size || len(y) != size {
			return nil, fmt.Errorf("jwk %q: x and y must be base64url of %d bytes each", j.Kid, size)
		}
		raw := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, raw)
		if err != nil {
			return nil, fmt.Errorf("jwk %q: %w", j.Kid, err)
		}
		return pub, nil
	case "RSA":
		n, errN := unb64(j.N)
		e, errE := unb64(j.E)
		if errN != nil || errE != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 {
			return nil, fmt.Errorf("jwk %q: n and e must be base64url big-endian integers", j.Kid)
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("jwk %q: RSA modulus is %d bits, minimum is %d", j.Kid, pub.N.BitLen(), MinRSABits)
		}
		return pub, nil
	default:
		return nil, fmt.Errorf("jwk %q: unsupported kty %q (want EC or RSA)", j.Kid, j.Kty)
	}
}

func curveByName(name string) (elliptic.Curve, int) {
	switch name {
	case "P-256":
		return elliptic.P256(), 32
	case "P-384":
		return elliptic.P384(), 48
	}
	return nil, 0
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func unb64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
