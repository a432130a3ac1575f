package lifecycle

import (
	"slices"
	"strings"
	"time"

	"jwks-issuer/pkg/keys"
)

// Role is a key's state, as docs/lifecycle.md ("States") names it.
type Role string

const (
	RoleCurrent Role = "CURRENT"
	RolePending Role = "pending"
	RoleNext    Role = "NEXT"
	RoleRetired Role = "RETIRED"
	RoleRevoked Role = "REVOKED"
)

// Staging labels, as the secret's versions carry them.
const (
	labelCurrent = "AWSCURRENT"
	labelPending = "AWSPENDING"
	labelNext    = "NEXT"
)

// KeyTimeline is one key's moments, as the state knows them at one moment.
// A zero time is not known, or has not happened and is not scheduled.
type KeyTimeline struct {
	Kid  string
	Alg  string
	Role Role
	// Label is the staging label of the version that holds the key
	// (AWSCURRENT, AWSPENDING or NEXT); "" for a key kept only in a record's
	// history. During an emergency rollover a REVOKED key can still be
	// AWSCURRENT: the signers use it until finishSecret.
	Label string
	// KMSKeyID is the KMS key of the private half (KMS custody); "" when the
	// private key is in the secret, or was (retired and revoked keys keep
	// only their public half).
	KMSKeyID string
	// Emergency: an emergency rollover made the key.
	Emergency bool
	// Created is the record's creation time (labelled keys only).
	Created time.Time
	// Published is the key's first publication (labelled keys only: the
	// history does not keep it).
	Published time.Time
	// Promotable is, for NEXT, the earliest moment it may be promoted:
	// Published + Ga (zero while it is unpublished). CheckPromotion decides.
	Promotable time.Time
	// SigningSince is when the key became AWSCURRENT. For CURRENT it is
	// the recorded moment; for a RETIRED key it is the moment its
	// predecessor left AWSCURRENT (the retirement or revocation just before
	// its own, each of which hands AWSCURRENT to the next key), when the
	// history still holds that predecessor.
	SigningSince time.Time
	// Retired is when AWSCURRENT left the key (RETIRED) or when it was
	// revoked (REVOKED). Zero for a retired key whose retirement is not
	// recorded yet: it is kept until it is.
	Retired time.Time
	// Removal is the moment from which the next publish leaves the key out:
	// Retired + Retention for a RETIRED key, Retired for a REVOKED one (the
	// rollover's first publish drops it).
	Removal time.Time
	// InKeySet tells whether KeySet at that moment holds the key.
	InKeySet bool
}

// Timeline lists every key the state knows at now with its moments, in
// the order of the key set: the labelled keys (AWSCURRENT, AWSPENDING,
// NEXT), then RETIRED keys newest first (unknown retirement first), then
// REVOKED keys newest first. Retired keys past their retention are listed
// too, with InKeySet false, as long as a record still holds them.
func Timeline(s State, c Config, now time.Time) []KeyTimeline {
	b := timelineBuilder{s: s, c: c, revoked: s.revoked(), seen: map[string]bool{}}
	labelled := b.labelled()
	retired, gone := b.fromHistory()
	gone = append(gone, b.fromRevocations()...)
	slices.SortFunc(retired, newestFirst)
	slices.SortFunc(gone, newestFirst)
	out := append(append(labelled, retired...), gone...)
	inSet := map[string]bool{}
	for _, k := range KeySet(s, c, now) {
		inSet[k.Kid] = true
	}
	handovers := handoverTimes(out)
	for i := range out {
		k := &out[i]
		k.InKeySet = inSet[k.Kid]
		if k.Role == RoleRetired && k.SigningSince.IsZero() && !k.Retired.IsZero() {
			k.SigningSince = latestBefore(handovers, k.Retired)
		}
	}
	return out
}

// timelineBuilder gathers the keys of a state from the three places that
// know them, in this order: the labelled versions, the records' key
// history, the revocations (records and tags).
type timelineBuilder struct {
	s       State
	c       Config
	revoked map[string]revocation
	seen    map[string]bool
}

// first tells whether kid is met for the first time, and marks it met. A
// key can be in several places (NEXT is also the pending record's key
// during a rotation; Current's and Pending's histories overlap; a revoked
// key is still labelled until the rollover finishes): it is listed once,
// where it is met first, which is the place that knows the most about it.
func (b *timelineBuilder) first(kid string) bool {
	if b.seen[kid] {
		return false
	}
	b.seen[kid] = true
	return true
}

// revoke makes k REVOKED if the state revokes it: a revoked key leaves the
// key set at its revocation, so that is both its retirement and its
// removal.
func (b *timelineBuilder) revoke(k *KeyTimeline) bool {
	v, ok := b.revoked[k.Kid]
	if ok {
		k.Role, k.Retired, k.Removal = RoleRevoked, v.at, v.at
	}
	return ok
}

// labelled lists the keys of AWSCURRENT, AWSPENDING and NEXT, in that
// order.
func (b *timelineBuilder) labelled() []KeyTimeline {
	var out []KeyTimeline
	for _, l := range []struct {
		label string
		role  Role
		rec   *keys.Record
	}{{labelCurrent, RoleCurrent, b.s.Current}, {labelPending, RolePending, b.s.Pending}, {labelNext, RoleNext, b.s.Next}} {
		if l.rec == nil || !b.first(l.rec.Kid) {
			continue
		}
		out = append(out, b.labelledKey(l.label, l.role, l.rec))
	}
	return out
}

// labelledKey is one labelled key's moments: the record knows its
// creation and the tags its first publication; CURRENT has signed since
// the current tag's moment, and NEXT may be promoted once it has been
// published for ACTIVATION_GRACE.
func (b *timelineBuilder) labelledKey(label string, role Role, r *keys.Record) KeyTimeline {
	k := KeyTimeline{Kid: r.Kid, Alg: string(r.Alg), Role: role, Label: label, KMSKeyID: r.KMSKeyID,
		Emergency: r.Emergency, Created: r.CreatedAt}
	k.Published, _ = b.s.PublishedAt(r)
	switch role {
	case RoleCurrent:
		k.SigningSince = b.s.CurrentSince
	case RoleNext:
		if !k.Published.IsZero() {
			k.Promotable = k.Published.Add(b.c.ActivationGrace)
		}
	}
	b.revoke(&k)
	return k
}

// fromHistory lists the keys the records' history holds that no label
// does: RETIRED ones (removed Retention after their retirement, kept while
// it is not recorded), and REVOKED ones apart.
func (b *timelineBuilder) fromHistory() (retired, gone []KeyTimeline) {
	for _, e := range b.s.history() {
		if !b.first(e.JWK.Kid) {
			continue
		}
		k := KeyTimeline{Kid: e.JWK.Kid, Alg: e.JWK.Alg, Role: RoleRetired, KMSKeyID: e.KMSKeyID}
		if b.revoke(&k) {
			gone = append(gone, k)
			continue
		}
		if e.RetiredAt != nil {
			k.Retired = *e.RetiredAt
			k.Removal = k.Retired.Add(b.c.Retention())
		}
		retired = append(retired, k)
	}
	return retired, gone
}

// fromRevocations lists the revoked keys that neither a label nor the
// history holds: known only from a record's revocations or a tag.
func (b *timelineBuilder) fromRevocations() []KeyTimeline {
	var gone []KeyTimeline
	for kid, v := range b.revoked {
		if b.first(kid) {
			gone = append(gone, KeyTimeline{Kid: kid, Alg: v.jwk.Alg, Role: RoleRevoked, KMSKeyID: v.kmsKeyID, Retired: v.at, Removal: v.at})
		}
	}
	return gone
}

// newestFirst orders retired and revoked keys as the key set does: a key
// whose retirement is not recorded yet first (it is the one retired last,
// or being retired), then by retirement, newest first, then by kid so that
// the order is total.
func newestFirst(a, b KeyTimeline) int {
	switch {
	case a.Retired.IsZero() != b.Retired.IsZero():
		if a.Retired.IsZero() {
			return -1
		}
		return 1
	case !a.Retired.Equal(b.Retired):
		return b.Retired.Compare(a.Retired)
	}
	return strings.Compare(a.Kid, b.Kid)
}

// history is the retired entries of Current and then of Pending, with
// Current's unrecorded retirements resolved to CurrentSince (left nil when
// that is not known either). Pending's entries are its view of Current's
// history, and the current key it will retire.
func (s State) history() []keys.RetiredKey {
	var out []keys.RetiredKey
	if s.Current != nil {
		for _, k := range s.Current.Retired {
			if k.RetiredAt == nil && !s.CurrentSince.IsZero() {
				at := s.CurrentSince
				k.RetiredAt = &at
			}
			out = append(out, k)
		}
	}
	if s.Pending != nil {
		out = append(out, s.Pending.Retired...)
	}
	return out
}

// handoverTimes are the moments AWSCURRENT moved on from a key: its
// retirement, or an emergency revocation.
func handoverTimes(ks []KeyTimeline) []time.Time {
	var out []time.Time
	for _, k := range ks {
		if !k.Retired.IsZero() {
			out = append(out, k.Retired)
		}
	}
	return out
}

// latestBefore is the latest of ts strictly before t; zero if none.
func latestBefore(ts []time.Time, t time.Time) time.Time {
	var best time.Time
	for _, x := range ts {
		if x.Before(t) && x.After(best) {
			best = x
		}
	}
	return best
}
