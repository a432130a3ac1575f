package lifecycle

import (
	"fmt"
	"slices"
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
	// Published maps a kid to its first publication.
	Published map[string]time.Time
	// Revoked maps a kid to its revocation, for revocations not yet folded
	// into a record (an emergency rollover in progress).
	Revoked map[string]time.Time
}

// PromotionRefused says that NEXT may not sign yet, and from when it may.
type PromotionRefused struct {
	Kid         string
	PublishedAt time.Time // zero: never published
	NotBefore   time.Time // zero: not before it is published and the grace has passed
}

func (e *PromotionRefused) Error() string {
	if e.Kid == "" {
		return "rotation refused: there is no usable NEXT key (missing or revoked); " +
			"a new one is made and published, and rotation may proceed once the activation grace has passed"
	}
	if e.PublishedAt.IsZero() {
		return fmt.Sprintf("rotation refused: NEXT key %s has not been published yet; it was published now "+
			"and rotation may proceed once the activation grace has passed", e.Kid)
	}
	return fmt.Sprintf("rotation refused: NEXT key %s was first published at %s; rotation may proceed at %s "+
		"(ACTIVATION_GRACE_SECONDS after publication)", e.Kid,
		e.PublishedAt.UTC().Format(time.RFC3339), e.NotBefore.UTC().Format(time.RFC3339))
}

// publishedAt is a key's first publication, from the tags or the record.
func (s State) publishedAt(r *keys.Record) (time.Time, bool) {
	if t, ok := s.Published[r.Kid]; ok {
		return t, true
	}
	if r.PublishedAt != nil {
		return *r.PublishedAt, true
	}
	return time.Time{}, false
}

// CheckPromotion tells whether NEXT may become the signing key at now: it
// must have been published for the activation grace, measured from its first
// publication (a key can be written and then wait days to be published).
func CheckPromotion(s State, c Config, now time.Time) error {
	if s.Next == nil || s.IsRevoked(s.Next.Kid) {
		return &PromotionRefused{}
	}
	published, ok := s.publishedAt(s.Next)
	if !ok {
		if c.ActivationGrace == 0 {
			return nil
		}
		return &PromotionRefused{Kid: s.Next.Kid}
	}
	if notBefore := published.Add(c.ActivationGrace); now.Before(notBefore) {
		return &PromotionRefused{Kid: s.Next.Kid, PublishedAt: published, NotBefore: notBefore}
	}
	return nil
}

// Promote returns the record that makes NEXT the signing key: NEXT's key with
// the current key retired (at the moment the new record becomes AWSCURRENT)
// and the history carried forward, minus what retention lets go at now.
func Promote(s State, c Config, now time.Time) keys.Record {
	r := *s.Next
	r.ActivatedAt, r.Emergency = nil, false
	if t, ok := s.publishedAt(s.Next); ok {
		r.PublishedAt = &t
	}
	revoked := s.revoked()
	r.Retired = nil
	if s.Current != nil && s.Current.Kid != r.Kid {
		if _, gone := revoked[s.Current.Kid]; !gone {
			r.Retired = append(r.Retired, keys.RetiredKey{JWK: s.Current.Public(), KMSKeyID: s.Current.KMSKeyID})
		}
	}
	r.Retired = append(r.Retired, s.retiredAt(c, now, revoked)...)
	r.Revoked = s.revokedHistory(c, now, revoked)
	return r
}

// Rollover returns the record of an emergency rollover: fresh becomes the
// signing key, and the current and next keys are revoked at now.
func Rollover(s State, c Config, now time.Time, fresh keys.Record) keys.Record {
	r := fresh
	r.Emergency = true
	revoked := s.revoked()
	for _, k := range []*keys.Record{s.Current, s.Pending, s.Next} {
		if k != nil && k.Kid != fresh.Kid {
			if _, done := revoked[k.Kid]; !done {
				revoked[k.Kid] = revocation{jwk: k.Public(), kmsKeyID: k.KMSKeyID, at: now}
			}
		}
	}
	r.Retired = s.retiredAt(c, now, revoked)
	r.Revoked = s.revokedHistory(c, now, revoked)
	return r
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
		if r != nil && r.Kid == kid {
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
		if r != nil && r.Kid == kid {
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
		return compareString(a.JWK.Kid, b.JWK.Kid)
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

func sortRetired(ks []keys.RetiredKey) {
	slices.SortStableFunc(ks, func(a, b keys.RetiredKey) int {
		switch {
		case a.RetiredAt == nil && b.RetiredAt == nil:
			return compareString(a.JWK.Kid, b.JWK.Kid)
		case a.RetiredAt == nil:
			return -1
		case b.RetiredAt == nil:
			return 1
		}
		if c := b.RetiredAt.Compare(*a.RetiredAt); c != 0 {
			return c
		}
		return compareString(a.JWK.Kid, b.JWK.Kid)
	})
}

func compareString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

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
	var retired []keys.RetiredKey
	if s.Pending != nil {
		// Keys the pending record retires are retired only once it becomes
		// current: nil stays nil (kept).
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
	for _, k := range kept {
		add(k.JWK)
	}
	return out
}

// ExternalKeys sorts the KMS keys the state references: live ones (they sign,
// or verify tokens that may still be alive), revoked ones (to disable at
// once), and dropped ones (retired entries past retention: no longer
// published nor needed, to delete).
func ExternalKeys(s State, c Config, now time.Time) (live, revoked, dropped []string) {
	gone := s.revoked()
	for _, v := range gone {
		if v.kmsKeyID != "" {
			revoked = append(revoked, v.kmsKeyID)
		}
	}
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
	var retired []keys.RetiredKey
	if s.Pending != nil {
		retired = append(retired, s.Pending.Retired...)
	}
	retired = append(retired, s.retiredAt(c, now, gone)...)
	for _, k := range retired {
		if k.RetiredAt == nil || now.Before(k.RetiredAt.Add(c.Retention())) {
			add(k.JWK.Kid, k.KMSKeyID)
		}
	}
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
	slices.Sort(live)
	slices.Sort(revoked)
	slices.Sort(dropped)
	return live, revoked, dropped
}
