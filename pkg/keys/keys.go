// Package keys generates signing keys, converts them to JWKs, and reads and
// writes the key record kept in a secret version.
package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	gonanoid "github.com/matoous/go-nanoid/v2"
)

// Algorithm is a JWS signing algorithm the issuer can hold keys for.
type Algorithm string

const (
	ES256 Algorithm = "ES256"
	ES384 Algorithm = "ES384"
	RS256 Algorithm = "RS256"
)

// MinRSABits is the smallest RSA modulus accepted for RS256.
const MinRSABits = 2048

// Algorithms lists the supported algorithms, default first.
var Algorithms = []Algorithm{ES256, ES384, RS256}

// ParseAlgorithm accepts one of Algorithms.
func ParseAlgorithm(s string) (Algorithm, error) {
	for _, a := range Algorithms {
		if string(a) == s {
			return a, nil
		}
	}
	names := make([]string, len(Algorithms))
	for i, a := range Algorithms {
		names[i] = string(a)
	}
	return "", fmt.Errorf("unsupported key algorithm %q: supported are %s", s, strings.Join(names, ", "))
}

// Hash is the digest the algorithm signs.
func (a Algorithm) Hash() crypto.Hash {
	if a == ES384 {
		return crypto.SHA384
	}
	return crypto.SHA256
}

// SignatureSize is the length of a JWS signature: r‖s for ECDSA, the modulus
// size for RSA (0: depends on the key).
func (a Algorithm) SignatureSize() int {
	switch a {
	case ES256:
		return 64
	case ES384:
		return 96
	}
	return 0
}

func (a Algorithm) curve() elliptic.Curve {
	switch a {
	case ES256:
		return elliptic.P256()
	case ES384:
		return elliptic.P384()
	}
	return nil
}

// checkPublic refuses a key that does not fit the algorithm.
func (a Algorithm) checkPublic(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if c := a.curve(); c == nil || k.Curve != c {
			return fmt.Errorf("key on curve %s does not fit algorithm %s", k.Curve.Params().Name, a)
		}
	case *rsa.PublicKey:
		if a != RS256 {
			return fmt.Errorf("RSA key does not fit algorithm %s", a)
		}
		if k.N.BitLen() < MinRSABits {
			return fmt.Errorf("RSA key is %d bits, minimum is %d", k.N.BitLen(), MinRSABits)
		}
	default:
		return fmt.Errorf("unsupported key type %T", pub)
	}
	return nil
}

// AlgorithmOf is the algorithm a public key signs with here: ES256 for
// P-256, ES384 for P-384, RS256 for RSA of at least MinRSABits.
func AlgorithmOf(pub crypto.PublicKey) (Algorithm, error) {
	for _, a := range []Algorithm{ES256, ES384, RS256} {
		if a.checkPublic(pub) == nil {
			return a, nil
		}
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "", fmt.Errorf("key on curve %s: supported are P-256 (ES256) and P-384 (ES384)", k.Curve.Params().Name)
	case *rsa.PublicKey:
		return "", fmt.Errorf("RSA key is %d bits, minimum is %d", k.N.BitLen(), MinRSABits)
	}
	return "", fmt.Errorf("unsupported key type %T", pub)
}

// Generate makes a new private key for the algorithm.
func Generate(a Algorithm) (crypto.Signer, error) {
	switch a {
	case ES256, ES384:
		return ecdsa.GenerateKey(a.curve(), rand.Reader)
	case RS256:
		return rsa.GenerateKey(rand.Reader, MinRSABits)
	}
	_, err := ParseAlgorithm(string(a))
	return nil, err
}

// NewKid returns a random key id. nanoid's alphabet (A-Z a-z 0-9 _ -) is safe
// in a JWS header, a URL and a Secrets Manager tag key.
func NewKid() string {
	return gonanoid.Must()
}

// EncodePrivateKey returns the PKCS#8 PEM the record stores.
func EncodePrivateKey(k crypto.Signer) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", fmt.Errorf("encode private key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

// ParsePrivateKey reads a PKCS#8, SEC 1 or PKCS#1 PEM private key. Errors
// never quote the input.
func ParsePrivateKey(pemText string) (crypto.Signer, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, errors.New("private key: no PEM block found")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			// The hotsock jwt-issuer writes PKCS #8 bytes under this
			// SEC 1 header; its keys are adopted as they are.
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		}
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("private key: unsupported PEM type %q", block.Type)
	}
	if err != nil {
		return nil, errors.New("private key: PEM block does not hold a valid key")
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key: unsupported key type %T", key)
	}
	switch signer.(type) {
	case *ecdsa.PrivateKey, *rsa.PrivateKey:
		return signer, nil
	}
	return nil, fmt.Errorf("private key: unsupported key type %T", key)
}
