package oidc

import (
	"encoding/json"
	"fmt"
	"slices"
)

// DiscoveryName is the document's name below the issuer, as OpenID Connect
// Discovery 1.0 fixes it.
const DiscoveryName = ".well-known/openid-configuration"

// Discovery is the discovery document, in the order it is written. It is
// what issuers without a login flow publish (Kubernetes' service-account
// issuer is the model): no authorization or token endpoint, because there
// is none, and nothing a verifier would have to ignore.
type Discovery struct {
	// Issuer is compared byte for byte with iss by every verifier, and with
	// the URL the document was fetched from (go-oidc, IAM).
	Issuer string `json:"issuer"`
	// JWKSURI is where verifiers fetch the keys (all of them read it).
	JWKSURI string `json:"jwks_uri"`
	// ResponseTypesSupported and SubjectTypesSupported are required by
	// OpenID Connect Discovery 1.0; the values say tokens are issued
	// directly, with subjects as the caller set them.
	ResponseTypesSupported []string `json:"response_types_supported"`
	SubjectTypesSupported  []string `json:"subject_types_supported"`
	// IDTokenSigningAlgValuesSupported lists the algorithms of the keys in
	// the published set: go-oidc accepts only these, so an algorithm change
	// lists both algorithms until the old keys leave.
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	// ClaimsSupported are the registered claims tokens carry or may carry.
	ClaimsSupported []string `json:"claims_supported"`
}

// claimsSupported: the signer sets iss, exp, and (on request) iat and jti;
// callers set sub, aud and nbf.
var claimsSupported = []string{"aud", "exp", "iat", "iss", "jti", "nbf", "sub"}

// NewDiscovery is the document of issuer whose key set is at jwksURI and
// holds keys of the algorithms algs (duplicates allowed, in any order).
func NewDiscovery(issuer Issuer, jwksURI string, algs []string) Discovery {
	algs = append([]string{}, algs...)
	slices.Sort(algs)
	return Discovery{
		Issuer:                           issuer.String(),
		JWKSURI:                          jwksURI,
		ResponseTypesSupported:           []string{"id_token"},
		SubjectTypesSupported:            []string{"public"},
		IDTokenSigningAlgValuesSupported: slices.Compact(algs),
		ClaimsSupported:                  slices.Clone(claimsSupported),
	}
}

// Marshal encodes the document. The same document gives the same bytes, so
// an unchanged state needs no write.
func (d Discovery) Marshal() []byte {
	b, err := json.Marshal(d)
	if err != nil { // strings and slices of strings only: cannot fail
		panic(fmt.Sprintf("marshal discovery document: %v", err))
	}
	return b
}
