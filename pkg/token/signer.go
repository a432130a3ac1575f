package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"

	"jwks-issuer/pkg/keys"
)

// Signer makes the JWS signature of a signing input, in JOSE form (r‖s for
// ECDSA, PKCS #1 v1.5 for RSA).
type Signer interface {
	Sign(ctx context.Context, signingInput []byte) ([]byte, error)
}

// LocalSigner signs with a private key held in memory.
type LocalSigner struct {
	alg  keys.Algorithm
	priv crypto.Signer
}

// NewLocalSigner checks that priv fits alg.
func NewLocalSigner(alg keys.Algorithm, priv crypto.Signer) (*LocalSigner, error) {
	if _, err := keys.PublicJWK(priv.Public(), "check", alg); err != nil {
		return nil, err
	}
	return &LocalSigner{alg: alg, priv: priv}, nil
}

func (s *LocalSigner) Sign(_ context.Context, signingInput []byte) ([]byte, error) {
	switch k := s.priv.(type) {
	case *ecdsa.PrivateKey:
		// SignASN1 and a direct DER → r‖s copy: ecdsa.Sign is SignASN1
		// plus a parse into two big.Ints, which the JWS form does not need.
		var der []byte
		var err error
		if s.alg == keys.ES384 {
			d := sha512.Sum384(signingInput)
			der, err = ecdsa.SignASN1(rand.Reader, k, d[:])
		} else {
			d := sha256.Sum256(signingInput)
			der, err = ecdsa.SignASN1(rand.Reader, k, d[:])
		}
		if err != nil {
			return nil, fmt.Errorf("ecdsa sign: %w", err)
		}
		return DERToJOSE(der, s.alg.SignatureSize())
	case *rsa.PrivateKey:
		d := sha256.Sum256(signingInput)
		return rsa.SignPKCS1v15(nil, k, crypto.SHA256, d[:])
	}
	return nil, fmt.Errorf("unsupported key type %T", s.priv)
}

// RemoteSigner is implemented by a Signer whose Sign is a network round trip
// (KMS): the items of a batch are then signed with up to MaxInFlight calls
// outstanding at once. A signer computing locally does not implement it and
// signs a batch in turn, which is fastest on the one or two cores a Lambda
// function has.
type RemoteSigner interface {
	Signer
	// MaxInFlight is how many Sign calls one batch may have outstanding
	// (values below 1 mean 1). Keep it within the service's request-rate
	// quota; Sign should retry throttling within ctx's deadline.
	MaxInFlight() int
}

// DERToJOSE converts an ASN.1 DER ECDSA signature to the fixed-width r‖s
// form of JWS (RFC 7518 §3.4). r and s are left-padded to half of size each:
// about one signature in 128 has a shorter r or s, and dropping the padding
// makes a token that no verifier accepts. Only strict DER is accepted: a
// SEQUENCE of two positive, minimally encoded INTEGERs and nothing after it.
func DERToJOSE(der []byte, size int) ([]byte, error) {
	half := size / 2
	body, ok := derTLV(der, 0x30)
	if !ok || len(body) != len(der)-derHeaderLen(der) {
		return nil, errors.New("ecdsa signature: not a DER SEQUENCE of two INTEGERs")
	}
	r, ok := derTLV(body, 0x02)
	if !ok {
		return nil, errors.New("ecdsa signature: not a DER SEQUENCE of two INTEGERs")
	}
	rest := body[derHeaderLen(body)+len(r):]
	sv, ok := derTLV(rest, 0x02)
	if !ok || derHeaderLen(rest)+len(sv) != len(rest) {
		return nil, errors.New("ecdsa signature: not a DER SEQUENCE of two INTEGERs")
	}
	out := make([]byte, size)
	if !putInteger(out[:half], r) || !putInteger(out[half:], sv) {
		return nil, fmt.Errorf("ecdsa signature: r or s out of range for a %d-byte signature", size)
	}
	return out, nil
}

// derTLV returns the contents of the element at the start of b if its tag
// is tag and its length is in DER form (short, or long with one byte for
// 128 to 255).
func derTLV(b []byte, tag byte) ([]byte, bool) {
	if len(b) < 2 || b[0] != tag {
		return nil, false
	}
	n, h := int(b[1]), 2
	if n >= 0x80 {
		if n != 0x81 || len(b) < 3 || b[2] < 0x80 {
			return nil, false
		}
		n, h = int(b[2]), 3
	}
	if len(b)-h < n {
		return nil, false
	}
	return b[h : h+n], true
}

func derHeaderLen(b []byte) int {
	if len(b) > 1 && b[1] == 0x81 {
		return 3
	}
	return 2
}

// putInteger writes the positive, minimally encoded DER INTEGER contents v
// right-aligned into dst, which it must fit.
func putInteger(dst, v []byte) bool {
	if len(v) == 0 || v[0]&0x80 != 0 {
		return false // empty or negative
	}
	if v[0] == 0 {
		if len(v) == 1 || v[1]&0x80 == 0 {
			return false // zero, or a leading zero DER forbids
		}
		v = v[1:]
	}
	if len(v) > len(dst) {
		return false
	}
	copy(dst[len(dst)-len(v):], v)
	return true
}
