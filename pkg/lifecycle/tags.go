package lifecycle

import (
	"strings"
	"time"

	"jwks-issuer/pkg/keys"
)

// The secret's tags are the second stored format, beside the key record.
// Secret versions are immutable, so the events learned after a version was
// written are kept as tags on the secret, one per key and event:
//
//	jwks-issuer:published:<kid> = RFC 3339 time   the key's first publication
//	jwks-issuer:current:<kid>   = RFC 3339 time   the moment the key's record became AWSCURRENT
//	jwks-issuer:revoked:<kid>   = RFC 3339 time   an emergency revocation not yet folded into AWSCURRENT
//	jwks-issuer:rollover        = emergency       set by an operator: the next rotation is a rollover
//
// Each time tag is written only after its event succeeded and only if
// absent, folded into the next record at the next rotation, and then
// pruned, so that only a few live at once (a secret holds at most 50 tags).
// Kids are nanoids, whose alphabet is valid in tag keys.
const (
	TagPublished = "jwks-issuer:published:"
	TagCurrent   = "jwks-issuer:current:"
	TagRevoked   = "jwks-issuer:revoked:"
	// TagRollover, set to RolloverEmergency by an operator, makes the next
	// rotation an emergency rollover.
	TagRollover       = "jwks-issuer:rollover"
	RolloverEmergency = "emergency"
	// TagAdopted holds the kid of a key the first rotation adopted (the
	// ADOPT_KEY setting); it stays, so that later rotations know the
	// adoption is done.
	TagAdopted = "jwks-issuer:adopted"
)

var timeTagPrefixes = []string{TagPublished, TagCurrent, TagRevoked}

// EmergencyRequested tells whether an operator has asked for an emergency
// rollover.
func EmergencyRequested(tags map[string]string) bool {
	return tags[TagRollover] == RolloverEmergency
}

// RolloverAnswered tells whether promoting rec answers the operator's
// emergency mark, so that finishSecret clears it: only a record made in an
// emergency does. A mark set during a normal rotation waits for the next.
func RolloverAnswered(tags map[string]string, rec keys.Record) bool {
	return rec.Emergency && tags[TagRollover] != ""
}

// AdoptionTags records that the first rotation adopted kid.
func AdoptionTags(kid string) map[string]string { return map[string]string{TagAdopted: kid} }

// Adopted is the kid of the key the first rotation adopted, or "".
func Adopted(tags map[string]string) string { return tags[TagAdopted] }

// formatTime is the value of a time tag: UTC, nanoseconds kept so that a
// fold and a re-read agree to the nanosecond.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// parseTimeTag splits a time tag into its prefix, kid and time. ok is false
// for tags that are not time tags and for time tags whose value does not
// parse (an operator's typo must not stop rotation; such a tag is ignored).
func parseTimeTag(key, value string) (prefix, kid string, at time.Time, ok bool) {
	for _, p := range timeTagPrefixes {
		if strings.HasPrefix(key, p) {
			at, err := time.Parse(time.RFC3339Nano, value)
			return p, key[len(p):], at, err == nil
		}
	}
	return "", "", time.Time{}, false
}

// foldTags adds the facts of the secret's tags to s: first publications,
// revocations in flight, and the moment Current became AWSCURRENT.
func (s *State) foldTags(tags map[string]string) {
	for k, v := range tags {
		prefix, kid, at, ok := parseTimeTag(k, v)
		if !ok {
			continue
		}
		switch prefix {
		case TagPublished:
			s.Published[kid] = at
		case TagRevoked:
			s.Revoked[kid] = at
		case TagCurrent:
			if s.Current != nil && kid == s.Current.Kid {
				s.CurrentSince = at
			}
		}
	}
}

// PublicationTags are the tags that record the first publication, at at, of
// the NEXT and pending keys that set holds and whose publication is not
// recorded yet.
func PublicationTags(s State, set []keys.JWK, at time.Time) map[string]string {
	tags := map[string]string{}
	for _, rec := range []*keys.Record{s.Next, s.Pending} {
		if rec == nil {
			continue
		}
		if _, known := s.PublishedAt(rec); known {
			continue
		}
		for _, k := range set {
			if k.Kid == rec.Kid {
				tags[TagPublished+rec.Kid] = formatTime(at)
			}
		}
	}
	return tags
}

// ActivationTags is the tag that records that kid's record became
// AWSCURRENT at at, unless tags already hold one: the first recorded moment
// stands, because a later one would only lengthen the old key's retention.
// A caller that has just made the key reach signers (Parameter Store
// custody's parameter write) passes nil tags: the moment is then at,
// whatever was recorded before.
func ActivationTags(tags map[string]string, kid string, at time.Time) map[string]string {
	if _, ok := tags[TagCurrent+kid]; ok {
		return nil
	}
	return map[string]string{TagCurrent + kid: formatTime(at)}
}

// RevocationTags are the tags of rec's revocations that tags lack. An
// emergency tags its revocations before it writes the record that carries
// them, so that they stay in force if the rotation is abandoned.
func RevocationTags(tags map[string]string, rec keys.Record) map[string]string {
	out := map[string]string{}
	for _, k := range rec.Revoked {
		if _, ok := tags[TagRevoked+k.JWK.Kid]; !ok {
			out[TagRevoked+k.JWK.Kid] = formatTime(k.RevokedAt)
		}
	}
	return out
}

// StaleTags lists the time tags whose facts s's records now carry, or that
// concern keys no label holds any more: a current tag of a key that is not
// Current, a published tag of a key that is neither NEXT nor pending, a
// revoked tag that Current's record carries. Nothing is stale before the
// first rotation.
func StaleTags(s State, tags map[string]string) []string {
	if s.Current == nil {
		return nil
	}
	var stale []string
	for k, v := range tags {
		prefix, kid, _, ok := parseTimeTag(k, v)
		if !ok {
			continue
		}
		switch prefix {
		case TagCurrent:
			ok = kid != s.Current.Kid
		case TagPublished:
			ok = !holds(s.Next, kid) && !holds(s.Pending, kid)
		case TagRevoked:
			ok = revokes(*s.Current, kid)
		}
		if ok {
			stale = append(stale, k)
		}
	}
	return stale
}

func holds(r *keys.Record, kid string) bool { return r != nil && r.Kid == kid }

// revokes tells whether rec's own revocation list holds kid.
func revokes(rec keys.Record, kid string) bool {
	for _, k := range rec.Revoked {
		if k.JWK.Kid == kid {
			return true
		}
	}
	return false
}
