package keys

import (
	"encoding/json"
	"fmt"
)

// Set is a published JSON Web Key Set.
type Set struct {
	Keys []JWK `json:"keys"`
}

// MarshalSet encodes keys as a JWK Set. The same keys in the same order give
// the same bytes, so an unchanged state needs no write.
func MarshalSet(ks []JWK) []byte {
	if ks == nil {
		ks = []JWK{}
	}
	b, err := json.Marshal(Set{Keys: ks})
	if err != nil { // only strings: cannot fail
		panic(fmt.Sprintf("marshal jwks: %v", err))
	}
	return b
}

// ParseSet reads a JWK Set, checking every key as ParseJWK does.
func ParseSet(b []byte) (Set, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return Set{}, fmt.Errorf("parse jwks: %w", err)
	}
	if raw.Keys == nil {
		return Set{}, fmt.Errorf("parse jwks: no \"keys\" array")
	}
	set := Set{Keys: make([]JWK, 0, len(raw.Keys))}
	for i, k := range raw.Keys {
		j, err := ParseJWK(k)
		if err != nil {
			return Set{}, fmt.Errorf("parse jwks: keys[%d]: %w", i, err)
		}
		set.Keys = append(set.Keys, j)
	}
	return set, nil
}

// Find returns the key with the kid.
func (s Set) Find(kid string) (JWK, bool) {
	for _, k := range s.Keys {
		if k.Kid == kid {
			return k, true
		}
	}
	return JWK{}, false
}
