package rotation

import (
	"time"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
)

func keySet(snap snapshot, cfg Config, now time.Time) []keys.JWK {
	return lifecycle.KeySet(snap.state, cfg.Lifecycle, now)
}

func kids(set []keys.JWK) []string {
	out := make([]string, len(set))
	for i, k := range set {
		out[i] = k.Kid
	}
	return out
}
