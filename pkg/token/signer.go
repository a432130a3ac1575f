package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

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
	h := s.alg.Hash().New()
	h.Write(signingInput)
	digest := h.Sum(nil)
	switch k := s.priv.(type) {
	case *ecdsa.PrivateKey:
		der, err := ecdsa.SignASN1(rand.Reader, k, digest)
		if err != nil {
			return nil, fmt.Errorf("ecdsa sign: %w", err)
		}
		return DERToJOSE(der, s.alg.SignatureSize())
	case *rsa.PrivateKey:
		return rsa.SignPKCS1v15(nil, k, s.alg.Hash(), digest)
	}
	return nil, fmt.Errorf("unsupported key type %T", s.priv)
}

// DERToJOSE converts an ASN.1 DER ECDSA signature to the fixed-width r‖s
// form of JWS (RFC 7518 §3.4). r and s are left-padded to half of size each:
// about one signature in 128 has a shorter r or s, and dropping the padding
// makes a token that no verifier accepts.
func DERToJOSE(der []byte, size int) ([]byte, error) {
	var sig struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &sig)
	if err != nil || len(rest) != 0 {
		return nil, errors.New("ecdsa signature: not a DER SEQUENCE of two INTEGERs")
	}
	half := size / 2
	if sig.R.Sign() <= 0 || sig.S.Sign() <= 0 || sig.R.BitLen() > half*8 || sig.S.BitLen() > half*8 {
		return nil, fmt.Errorf("ecdsa signature: r or s out of range for a %d-byte signature", size)
	}
	out := make([]byte, size)
	sig.R.FillBytes(out[:half])
	sig.S.FillBytes(out[half:])
	return out, nil
}
