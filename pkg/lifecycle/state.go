package lifecycle

import (
	"slices"
	"strings"
	"time"

	"jwks-issuer/pkg/keys"
)

// State is everything the secret knows about its keys at one moment.
type State struct {
	// Current is the AWSCURRENT record; nil before the first rotation.
	Current *keys.Record
	// CurrentSince is when Current became AWSCURRENT (zero: not known).
	CurrentSince time.Time
	// Pending is the AWSPENDING record when it is not Current's version: a
	// rotation in progress (or abandoned) that may still be finished.
	Pending *keys.Record
	// Next is the record labelled NEXT.
	Next *keys.Record
	// Published maps a kid to its first publication, as tagged.
	Published map[string]time.Time
	// Revoked maps a kid to its revocation, for revocations not yet folded
	// into a record (an emergency rollover in progress).
	Revoked map[string]time.Time
}

// NewState is the state of a secret whose AWSCURRENT, AWSPENDING (when it is
// another version) and NEXT versions hold current, pending and next (nil:
// no such version or no key record in it), and whose tags are tags.
func NewState(current, pending, next *keys.Record, tags map[string]string) State {
	s := State{
		Current:   current,
		Pending:   pending,
		Next:      next,
		Published: map[string]time.Time{},
		Revoked:   map[string]time.Time{},
	}
	s.foldTags(tags)
	if s.CurrentSince.IsZero() && current != nil && current.ActivatedAt != nil {
		s.CurrentSince = *current.ActivatedAt // an adopted cdk-jwks-rotation record
	}
	return s
}

// PublishedAt is a key's first publication, from the tags or the record; ok
// is false when it has never been published (or the publication was not
// recorded, which counts the same: the grace starts at a recorded moment).
func (s State) PublishedAt(r *keys.Record) (at time.Time, ok bool) {
	if t, ok := s.Published[r.Kid]; ok {
		return t, true
	}
	if r.PublishedAt != nil {
		return *r.PublishedAt, true
	}
	return time.Time{}, false
}

type revocation struct {
	jwk      keys.JWK
	kmsKeyID string
	at       time.Time
}

// revoked gathers every revocation the state knows of.
func (s State) revoked() map[string]revocation {
	out := map[string]revocation{}
	for _, r := range []*keys.Record{s.Current, s.Pending} {
		if r == nil {
			continue
		}
		for _, k := range r.Revoked {
			out[k.JWK.Kid] = revocation{jwk: k.JWK, kmsKeyID: k.KMSKeyID, at: k.RevokedAt}
		}
	}
	for kid, at := range s.Revoked {
		if _, ok := out[kid]; !ok {
			jwk, kmsKeyID := s.keyOf(kid)
			out[kid] = revocation{jwk: jwk, kmsKeyID: kmsKeyID, at: at}
		}
	}
	return out
}

// labelled tells whether AWSCURRENT, AWSPENDING or NEXT holds the key.
func (s State) labelled(kid string) bool {
	for _, r := range []*keys.Record{s.Current, s.Pending, s.Next} {
		if holds(r, kid) {
			return true
		}
	}
	return false
}

// IsRevoked tells whether any record or tag of the state revokes the key.
func (s State) IsRevoked(kid string) bool {
	_, ok := s.revoked()[kid]
	return ok
}

func (s State) keyOf(kid string) (keys.JWK, string) {
	for _, r := range []*keys.Record{s.Current, s.Pending, s.Next} {
		if holds(r, kid) {
			return r.Public(), r.KMSKeyID
		}
	}
	return keys.JWK{Kid: kid}, ""
}

// revokedHistory is the revocation list a new record carries. A revocation
// is kept while a label still points at the key and for the retention time
// after, when no token the key could have signed is alive.
func (s State) revokedHistory(c Config, now time.Time, revoked map[string]revocation) []keys.RevokedKey {
	var out []keys.RevokedKey
	for kid, v := range revoked {
		if now.Before(v.at.Add(c.Retention())) || s.labelled(kid) {
			out = append(out, keys.RevokedKey{JWK: v.jwk, KMSKeyID: v.kmsKeyID, RevokedAt: v.at})
		}
	}
	slices.SortFunc(out, func(a, b keys.RevokedKey) int {
		if c := b.RevokedAt.Compare(a.RevokedAt); c != 0 {
			return c
		}
		return strings.Compare(a.JWK.Kid, b.JWK.Kid)
	})
	return out
}

// retiredAt resolves Current's retired keys to their retirement times and
// keeps those still within retention at now, newest first.
func (s State) retiredAt(c Config, now time.Time, revoked map[string]revocation) []keys.RetiredKey {
	if s.Current == nil {
		return nil
	}
	since := s.CurrentSince
	if since.IsZero() || since.After(now) {
		since = now // not known: the latest it can be
	}
	var out []keys.RetiredKey
	for _, k := range s.Current.Retired {
		if _, gone := revoked[k.JWK.Kid]; gone {
			continue
		}
		at := since
		if k.RetiredAt != nil {
			at = *k.RetiredAt
		}
		if now.Before(at.Add(c.Retention())) {
			at := at
			out = append(out, keys.RetiredKey{JWK: k.JWK, KMSKeyID: k.KMSKeyID, RetiredAt: &at})
		}
	}
	sortRetired(out)
	return out
}

// retained lists the retired keys whose tokens may still be alive at now,
// newest first: Current's retired keys inside retention, and the keys the
// pending record retires, which are retired only once it becomes current
// (nil retirement: kept). A kid may be listed twice; the first wins.
func (s State) retained(c Config, now time.Time, revoked map[string]revocation) []keys.RetiredKey {
	var retired []keys.RetiredKey
	if s.Pending != nil {
		retired = append(retired, s.Pending.Retired...)
	}
	retired = append(retired, s.retiredAt(c, now, revoked)...)
	kept := retired[:0:0]
	for _, k := range retired {
		if k.RetiredAt == nil || now.Before(k.RetiredAt.Add(c.Retention())) {
			kept = append(kept, k)
		}
	}
	// Prefer the latest known retirement of a kid listed twice.
	sortRetired(kept)
	return kept
}

func sortRetired(ks []keys.RetiredKey) {
	slices.SortStableFunc(ks, func(a, b keys.RetiredKey) int {
		switch {
		case a.RetiredAt == nil && b.RetiredAt == nil:
			return strings.Compare(a.JWK.Kid, b.JWK.Kid)
		case a.RetiredAt == nil:
			return -1
		case b.RetiredAt == nil:
			return 1
		}
		if c := b.RetiredAt.Compare(*a.RetiredAt); c != 0 {
			return c
		}
		return strings.Compare(a.JWK.Kid, b.JWK.Kid)
	})
}
