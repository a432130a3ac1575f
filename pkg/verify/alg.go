package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"strings"
)

// family is the kind of key an algorithm needs.
type family uint8

const (
	familyEC family = iota + 1
	familyRSA
	familyPSS
	familyEdDSA
)

// algorithm is one JWS algorithm this package verifies: asymmetric only.
// HMAC and "none" are absent on purpose, so no configuration, discovery
// document or token can enable them.
type algorithm struct {
	name   string
	family family
	hash   crypto.Hash
	curve  elliptic.Curve // familyEC
	size   int            // familyEC: bytes of r and of s
}

var algorithms = []*algorithm{
	{name: "ES256", family: familyEC, hash: crypto.SHA256, curve: elliptic.P256(), size: 32},
	{name: "ES384", family: familyEC, hash: crypto.SHA384, curve: elliptic.P384(), size: 48},
	{name: "ES512", family: familyEC, hash: crypto.SHA512, curve: elliptic.P521(), size: 66},
	{name: "RS256", family: familyRSA, hash: crypto.SHA256},
	{name: "RS384", family: familyRSA, hash: crypto.SHA384},
	{name: "RS512", family: familyRSA, hash: crypto.SHA512},
	{name: "PS256", family: familyPSS, hash: crypto.SHA256},
	{name: "PS384", family: familyPSS, hash: crypto.SHA384},
	{name: "PS512", family: familyPSS, hash: crypto.SHA512},
	{name: "EdDSA", family: familyEdDSA},
}

// SupportedAlgorithms are the algorithms Config.Algorithms may name.
func SupportedAlgorithms() []string {
	out := make([]string, len(algorithms))
	for i, a := range algorithms {
		out[i] = a.name
	}
	return out
}

// lookupAlg finds an algorithm by the bytes of a header's alg, without
// allocating.
func lookupAlg(name []byte) *algorithm {
	for _, a := range algorithms {
		if string(name) == a.name {
			return a
		}
	}
	return nil
}

// algSet is a set of allowed algorithms, as a bit mask over algorithms.
type algSet uint32

func (s algSet) has(a *algorithm) bool {
	for i, x := range algorithms {
		if x == a {
			return s&(1<<i) != 0
		}
	}
	return false
}

func (s algSet) names() []string {
	var out []string
	for i, a := range algorithms {
		if s&(1<<i) != 0 {
			out = append(out, a.name)
		}
	}
	return out
}

// parseAlgs makes the set of names, refusing any this package does not
// verify (strict: for configuration) or skipping them (for a discovery
// document, which may list algorithms for other uses).
func parseAlgs(names []string, strict bool) (algSet, error) {
	var s algSet
	for _, n := range names {
		found := false
		for i, a := range algorithms {
			if n == a.name {
				s |= 1 << i
				found = true
			}
		}
		if !found && strict {
			why := "not an algorithm this verifier supports"
			if n == "none" || strings.HasPrefix(strings.ToUpper(n), "HS") {
				why = "never accepted: it is not an asymmetric signature, so anyone who can read the key set could forge tokens"
			}
			return 0, fmt.Errorf("algorithm %q is %s (supported: %s)", n, why, strings.Join(SupportedAlgorithms(), ", "))
		}
	}
	return s, nil
}

// fits tells whether pub can verify signatures of a.
func (a *algorithm) fits(pub crypto.PublicKey) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return a.family == familyEC && k.Curve == a.curve
	case *rsa.PublicKey:
		return a.family == familyRSA || a.family == familyPSS
	case ed25519.PublicKey:
		return a.family == familyEdDSA
	}
	return false
}

// verify checks sig over input with pub, which fits a.
func (a *algorithm) verify(pub crypto.PublicKey, input, sig []byte) bool {
	if a.family == familyEdDSA {
		k, ok := pub.(ed25519.PublicKey)
		return ok && len(sig) == ed25519.SignatureSize && ed25519.Verify(k, input, sig)
	}
	// One array for the digest and the DER signature: both escape into
	// crypto/ecdsa, and one allocation is cheaper than two.
	var buf [64 + 2*(3+67) + 3]byte
	var digest []byte
	switch a.hash {
	case crypto.SHA256:
		d := sha256.Sum256(input)
		digest = append(buf[:0], d[:]...)
	case crypto.SHA384:
		d := sha512.Sum384(input)
		digest = append(buf[:0], d[:]...)
	case crypto.SHA512:
		d := sha512.Sum512(input)
		digest = append(buf[:0], d[:]...)
	default:
		return false
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if a.family != familyEC || len(sig) != 2*a.size {
			return false
		}
		return ecdsa.VerifyASN1(k, digest, joseToDER(buf[64:64], sig))
	case *rsa.PublicKey:
		switch a.family {
		case familyRSA:
			return rsa.VerifyPKCS1v15(k, a.hash, digest, sig) == nil
		case familyPSS:
			// RFC 7518 section 3.5: the salt is as long as the hash.
			return rsa.VerifyPSS(k, a.hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
	}
	return false
}

// joseToDER turns a JWS ECDSA signature (r‖s, fixed width) into the ASN.1
// DER SEQUENCE of two INTEGERs that crypto/ecdsa verifies, without the
// big.Int round trip of ecdsa.Verify.
func joseToDER(dst, sig []byte) []byte {
	n := len(sig) / 2
	body := 0
	var ints [2][]byte
	for i, x := range [2][]byte{sig[:n], sig[n:]} {
		for len(x) > 1 && x[0] == 0 {
			x = x[1:]
		}
		ints[i] = x
		body += 2 + len(x)
		if x[0]&0x80 != 0 {
			body++ // a leading zero keeps the INTEGER positive
		}
	}
	dst = append(dst, 0x30)
	if body > 127 {
		dst = append(dst, 0x81)
	}
	dst = append(dst, byte(body))
	for _, x := range ints {
		if x[0]&0x80 != 0 {
			dst = append(dst, 0x02, byte(len(x)+1), 0)
		} else {
			dst = append(dst, 0x02, byte(len(x)))
		}
		dst = append(dst, x...)
	}
	return dst
}
