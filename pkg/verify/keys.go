package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// minRSABits is the smallest RSA modulus accepted (RFC 7518 section 3.3).
const minRSABits = 2048

// publicKey is one usable key of a key set.
type publicKey struct {
	kid string
	alg string // the JWK's alg; "" when it has none
	pub crypto.PublicKey
}

// keySet is one fetched key set: immutable once made, swapped whole.
type keySet struct {
	byKid   map[string][]*publicKey
	kids    []string // usable keys' kids, in the document's order
	allowed algSet

	fetched   time.Time
	expires   time.Time // fetched + the documents' freshness
	refreshAt time.Time // when a background refresh begins

	// For conditional refetches.
	jwksURL, jwksETag string
	discETag          string
	disc              *discovery
}

// skipped is a key of a set that cannot verify anything here, and why.
type skipped struct{ kid, why string }

// parseKeySet reads a JWK Set with jwx, one key at a time, so that a key
// this verifier cannot use (another key type, an encryption key, a key
// without kid) is skipped rather than failing the whole set.
func parseKeySet(body []byte) (map[string][]*publicKey, []string, []skipped, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, nil, fmt.Errorf("not a JWK Set: %w", err)
	}
	if doc.Keys == nil {
		return nil, nil, nil, errors.New(`not a JWK Set: no "keys" array`)
	}
	if len(doc.Keys) > maxKeys {
		return nil, nil, nil, fmt.Errorf("the key set holds %d keys, more than %d", len(doc.Keys), maxKeys)
	}
	byKid := map[string][]*publicKey{}
	var kids []string
	var skips []skipped
	for i, raw := range doc.Keys {
		k, kid, err := usableKey(raw)
		if err != nil {
			if kid == "" {
				kid = fmt.Sprintf("keys[%d]", i)
			}
			skips = append(skips, skipped{kid: kid, why: err.Error()})
			continue
		}
		byKid[k.kid] = append(byKid[k.kid], k)
		if !slices.Contains(kids, k.kid) {
			kids = append(kids, k.kid)
		}
	}
	if len(byKid) == 0 {
		return nil, nil, skips, fmt.Errorf("the key set holds no usable signing key (%d keys, all skipped)", len(doc.Keys))
	}
	return byKid, kids, skips, nil
}

// usableKey reads one JWK of a set and returns it with its kid, or why it
// cannot verify tokens here (with its kid, when it has one, to name it in
// the log).
func usableKey(raw []byte) (*publicKey, string, error) {
	key, err := jwk.ParseKey(raw)
	if err != nil {
		return nil, "", err
	}
	kid, _ := key.KeyID()
	if kid == "" {
		return nil, "", errors.New("no kid: tokens name their key by kid")
	}
	k, err := signingKey(key)
	if err != nil {
		return nil, kid, err
	}
	k.kid = kid
	return k, kid, nil
}

// signingKey checks, in order, what the key says it is for, the key itself,
// and that the two agree.
func signingKey(key jwk.Key) (*publicKey, error) {
	if err := checkPurpose(key); err != nil {
		return nil, err
	}
	alg, err := keyAlg(key)
	if err != nil {
		return nil, err
	}
	pub, err := publicHalf(key)
	if err != nil {
		return nil, err
	}
	if err := checkStrength(pub); err != nil {
		return nil, err
	}
	if alg != "" && !lookupAlg([]byte(alg)).fits(pub) {
		return nil, fmt.Errorf("alg %s does not fit the key", alg)
	}
	return &publicKey{alg: alg, pub: pub}, nil
}

// checkPurpose refuses a key its publisher restricted to other uses (RFC
// 7517 sections 4.2 and 4.3): an encryption key of the same set, say.
func checkPurpose(key jwk.Key) error {
	if use, ok := key.KeyUsage(); ok && use != "sig" {
		return fmt.Errorf("use is %q, not sig", use)
	}
	if ops, ok := key.KeyOps(); ok && !slices.Contains(ops, jwk.KeyOpVerify) {
		return errors.New("key_ops does not include verify")
	}
	return nil
}

// keyAlg is the key's alg, "" when it has none, which must be one this
// verifier accepts: a key pinned to another algorithm verifies nothing.
func keyAlg(key jwk.Key) (string, error) {
	a, ok := key.Algorithm()
	if !ok {
		return "", nil
	}
	alg := a.String()
	if lookupAlg([]byte(alg)) == nil {
		return "", fmt.Errorf("alg %q is not a signature algorithm this verifier accepts", alg)
	}
	return alg, nil
}

// publicHalf is the key as a public key of a type the algorithms verify
// with. A private key published by mistake is accepted: only its public
// half is used.
func publicHalf(key jwk.Key) (crypto.PublicKey, error) {
	var exported any
	if err := jwk.Export(key, &exported); err != nil {
		return nil, err
	}
	switch k := exported.(type) {
	case *ecdsa.PublicKey, *rsa.PublicKey, ed25519.PublicKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return &k.PublicKey, nil
	case *rsa.PrivateKey:
		return &k.PublicKey, nil
	case ed25519.PrivateKey:
		return k.Public(), nil
	}
	return nil, fmt.Errorf("key type %T cannot verify signatures here", exported)
}

// checkStrength refuses an EC key on a curve no algorithm uses or off its
// curve, and an RSA key below minRSABits.
func checkStrength(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if !slices.ContainsFunc(algorithms, func(a *algorithm) bool { return a.fits(k) }) {
			return errors.New("unsupported curve")
		}
		if _, err := k.ECDH(); err != nil {
			return fmt.Errorf("invalid public key: %w", err)
		}
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("RSA modulus of %d bits, minimum %d", k.N.BitLen(), minRSABits)
		}
	}
	return nil
}
