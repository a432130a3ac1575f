// Package kmscustody keeps signing keys in AWS KMS: each new key is a new
// asymmetric KMS key, the secret holds only its ARN and public JWK, tokens
// are signed with kms:Sign, and keys the secret no longer needs are disabled
// (revoked) or scheduled for deletion (dropped).
//
// The KMS operations it needs are the port store.KMS, implemented over the
// SDK by store/awsstore and in memory by store/memstore.
package kmscustody

import (
	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/store"
)

// specFor is the key spec and signing algorithm of a JWS algorithm.
func specFor(alg keys.Algorithm) (store.KeySpec, store.SigningAlgorithm, error) {
	switch alg {
	case keys.ES256:
		return store.KeySpecP256, store.ECDSASHA256, nil
	case keys.ES384:
		return store.KeySpecP384, store.ECDSASHA384, nil
	case keys.RS256:
		return store.KeySpecRSA2048, store.RSAPKCS1SHA256, nil
	}
	_, err := keys.ParseAlgorithm(string(alg))
	return "", "", err
}
