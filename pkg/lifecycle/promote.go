package lifecycle

import (
	"fmt"
	"time"

	"jwks-issuer/pkg/keys"
)

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

// NextUsable tells whether the NEXT key may stay NEXT: it exists, is not the
// key being promoted (nil: none), and neither promoting's record nor any
// record or tag of s revokes it.
func NextUsable(s State, promoting *keys.Record) bool {
	next := s.Next
	if next == nil || s.IsRevoked(next.Kid) {
		return false
	}
	return promoting == nil || (next.Kid != promoting.Kid && !revokes(*promoting, next.Kid))
}

// Readiness is what NEXT lacks before its promotion can be considered.
type Readiness int

const (
	// NextReady: NEXT is usable and its first publication is recorded.
	NextReady Readiness = iota
	// NextUnpublished: NEXT is usable but not known to be published: publish
	// it, so that the grace starts.
	NextUnpublished
	// NextMissing: there is no usable NEXT (an adopted secret, or one revoked
	// in an emergency): make one and publish it.
	NextMissing
)

// NextReadiness says what NEXT lacks. A rotation refused for want of a
// published NEXT still provides one, so that a later rotation can proceed.
func NextReadiness(s State) Readiness {
	if !NextUsable(s, nil) {
		return NextMissing
	}
	if _, ok := s.PublishedAt(s.Next); !ok {
		return NextUnpublished
	}
	return NextReady
}

// CheckPromotion tells whether NEXT may become the signing key at now: it
// must have been published for the activation grace, measured from its first
// publication (a key can be written and then wait days to be published).
func CheckPromotion(s State, c Config, now time.Time) error {
	if !NextUsable(s, nil) {
		return &PromotionRefused{}
	}
	published, ok := s.PublishedAt(s.Next)
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
	if t, ok := s.PublishedAt(s.Next); ok {
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
// signing key, and the current, pending and next keys are revoked at now.
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

// ParameterNeedsWrite tells whether a writer whose view of the secret is s,
// read at readAt, should put s.Current's key into the signing-key parameter
// (Parameter Store custody), which holds held (nil: missing or not a key
// record). Without a conditional write, a writer whose view went stale
// during its run (a rotation finished meanwhile) must not put the key back
// that the rotation retired: so a parameter holding the view's NEXT or
// pending key (promoted since, or being promoted, and written by that
// finishSecret), or a key the view does not know that was made after the
// view was read, is left alone. A missing or unreadable parameter, a
// retired or revoked key, or another key made before the view is replaced.
func ParameterNeedsWrite(s State, held *keys.Record, readAt time.Time) bool {
	switch {
	case s.Current == nil:
		return false
	case held == nil:
		return true
	case held.Kid == s.Current.Kid:
		return true // the caller compares the bytes: same kid, other content is repaired
	case holds(s.Next, held.Kid) || holds(s.Pending, held.Kid):
		return false
	case s.knows(held.Kid):
		return true
	}
	return !held.CreatedAt.After(readAt)
}

// knows tells whether kid is a key the state's records or tags list as
// retired or revoked.
func (s State) knows(kid string) bool {
	if s.IsRevoked(kid) {
		return true
	}
	for _, r := range []*keys.Record{s.Current, s.Pending} {
		if r == nil {
			continue
		}
		for _, k := range r.Retired {
			if k.JWK.Kid == kid {
				return true
			}
		}
	}
	return false
}
