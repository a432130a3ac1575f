package lifecycle

import (
	"slices"
	"time"

	"jwks-issuer/pkg/keys"
)

// KeySet returns the keys to publish at now, in order: CURRENT, the pending
// key, NEXT, then RETIRED newest first. Revoked keys are never in it. A
// retired key whose retirement moment is not known yet stays.
func KeySet(s State, c Config, now time.Time) []keys.JWK {
	revoked := s.revoked()
	seen := map[string]bool{}
	var out []keys.JWK
	add := func(j keys.JWK) {
		if _, gone := revoked[j.Kid]; gone || seen[j.Kid] {
			return
		}
		seen[j.Kid] = true
		out = append(out, j)
	}
	for _, r := range []*keys.Record{s.Current, s.Pending, s.Next} {
		if r != nil {
			add(r.Public())
		}
	}
	for _, k := range s.retained(c, now, revoked) {
		add(k.JWK)
	}
	return out
}

// ExternalKeys sorts the KMS keys the state references: live ones (they sign,
// or verify tokens that may still be alive), revoked ones (to disable at
// once), and dropped ones (retired entries past retention: no longer
// published nor needed, to delete). Each list is sorted.
func ExternalKeys(s State, c Config, now time.Time) (live, revoked, dropped []string) {
	gone := s.revoked()
	for _, v := range gone {
		if v.kmsKeyID != "" {
			revoked = append(revoked, v.kmsKeyID)
		}
	}
	live = s.liveKMSKeys(c, now, gone)
	dropped = s.droppedKMSKeys(live, revoked)
	slices.Sort(live)
	slices.Sort(revoked)
	slices.Sort(dropped)
	return live, revoked, dropped
}

// liveKMSKeys are the KMS keys of the labelled records and of the retired
// keys still inside retention, minus revoked ones.
func (s State) liveKMSKeys(c Config, now time.Time, gone map[string]revocation) []string {
	var live []string
	add := func(kid, id string) {
		if _, r := gone[kid]; !r && id != "" && !slices.Contains(live, id) {
			live = append(live, id)
		}
	}
	for _, r := range []*keys.Record{s.Current, s.Pending, s.Next} {
		if r != nil {
			add(r.Kid, r.KMSKeyID)
		}
	}
	for _, k := range s.retained(c, now, gone) {
		add(k.JWK.Kid, k.KMSKeyID)
	}
	return live
}

// droppedKMSKeys are the KMS keys the records still list as retired that
// are neither live nor revoked.
func (s State) droppedKMSKeys(live, revoked []string) []string {
	var dropped []string
	for _, r := range []*keys.Record{s.Current, s.Pending} {
		if r == nil {
			continue
		}
		for _, k := range r.Retired {
			id := k.KMSKeyID
			if id != "" && !slices.Contains(live, id) && !slices.Contains(revoked, id) && !slices.Contains(dropped, id) {
				dropped = append(dropped, id)
			}
		}
	}
	return dropped
}
