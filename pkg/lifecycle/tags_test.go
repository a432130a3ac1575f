package lifecycle

import (
	"slices"
	"testing"
	"time"

	"jwks-issuer/pkg/keys"
)

func TestEmergencyRequested(t *testing.T) {
	tests := []struct {
		name string
		tags map[string]string
		want bool
	}{
		{"no tags", nil, false},
		{"emergency", map[string]string{"jwks-issuer:rollover": "emergency"}, true},
		{"other value", map[string]string{"jwks-issuer:rollover": "Emergency"}, false},
		{"empty value", map[string]string{"jwks-issuer:rollover": ""}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EmergencyRequested(tt.tags); got != tt.want {
				t.Fatalf("EmergencyRequested(%v) = %v, want %v", tt.tags, got, tt.want)
			}
		})
	}
}

func TestRolloverAnswered(t *testing.T) {
	mark := map[string]string{TagRollover: RolloverEmergency}
	tests := []struct {
		name string
		tags map[string]string
		rec  keys.Record
		want bool
	}{
		{"emergency record answers the mark", mark, keys.Record{Emergency: true}, true},
		{"a normal promotion leaves the mark for the next rotation", mark, keys.Record{}, false},
		{"no mark, nothing to clear", nil, keys.Record{Emergency: true}, false},
		{"a mistyped mark is still cleared by an emergency", map[string]string{TagRollover: "yes"}, keys.Record{Emergency: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RolloverAnswered(tt.tags, tt.rec); got != tt.want {
				t.Fatalf("RolloverAnswered = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseTimeTag(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890, time.UTC)
	tests := []struct {
		key, value  string
		prefix, kid string
		ok          bool
	}{
		{"jwks-issuer:published:abc", "2026-03-04T05:06:07.00000089Z", TagPublished, "abc", true},
		{"jwks-issuer:current:abc", "2026-03-04T05:06:07.00000089Z", TagCurrent, "abc", true},
		{"jwks-issuer:revoked:a_b-c", "2026-03-04T05:06:07.00000089Z", TagRevoked, "a_b-c", true},
		{"jwks-issuer:published:abc", "yesterday", TagPublished, "abc", false},
		{"jwks-issuer:rollover", "emergency", "", "", false},
		{"owner", "team-a", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			prefix, kid, got, ok := parseTimeTag(tt.key, tt.value)
			if ok != tt.ok || (ok && (prefix != tt.prefix || kid != tt.kid || !got.Equal(at))) {
				t.Fatalf("parseTimeTag = %q %q %v %v, want %q %q %v %v", prefix, kid, got, ok, tt.prefix, tt.kid, at, tt.ok)
			}
		})
	}
}

// Every tag this file writes parses back to the same kid and the same
// instant, to the nanosecond, whatever the time zone it was given in.
func TestTimeTagsRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 1, time.FixedZone("X", 3600))
	rec := keys.Record{Kid: "k1", Revoked: []keys.RevokedKey{{JWK: keys.JWK{Kid: "k0"}, RevokedAt: at}}}
	written := map[string]string{}
	for k, v := range ActivationTags(nil, "k1", at) {
		written[k] = v
	}
	for k, v := range RevocationTags(nil, rec) {
		written[k] = v
	}
	for k, v := range PublicationTags(State{Next: &keys.Record{Kid: "k2"}}, []keys.JWK{{Kid: "k2"}}, at) {
		written[k] = v
	}
	want := map[string]string{TagCurrent + "k1": "k1", TagRevoked + "k0": "k0", TagPublished + "k2": "k2"}
	if len(written) != len(want) {
		t.Fatalf("wrote %v, want the keys of %v", written, want)
	}
	for k, v := range written {
		_, kid, got, ok := parseTimeTag(k, v)
		if !ok || kid != want[k] || !got.Equal(at) || got.Location() != time.UTC {
			t.Errorf("%s=%s parses as %q %v %v, want %q %v in UTC", k, v, kid, got, ok, want[k], at)
		}
	}
}

func TestNewStateFoldsTags(t *testing.T) {
	cur, next := &keys.Record{Kid: "cur"}, &keys.Record{Kid: "next"}
	activated := t0.Add(-time.Hour)
	adopted := &keys.Record{Kid: "cur", ActivatedAt: &activated}
	tags := map[string]string{
		TagPublished + "next": "2026-01-01T00:00:00Z",
		TagRevoked + "old":    "2026-01-01T00:01:00Z",
		TagCurrent + "cur":    "2026-01-01T00:02:00Z",
		TagCurrent + "gone":   "2026-01-01T00:03:00Z",
		TagPublished + "bad":  "not a time",
		TagRollover:           RolloverEmergency,
		"owner":               "team-a",
	}
	tests := []struct {
		name      string
		current   *keys.Record
		tags      map[string]string
		published map[string]time.Time
		revoked   map[string]time.Time
		since     time.Time
	}{
		{"all facts", cur, tags,
			map[string]time.Time{"next": t0}, map[string]time.Time{"old": t0.Add(time.Minute)}, t0.Add(2 * time.Minute)},
		{"current tag of another key is not Current's", &keys.Record{Kid: "gone2"}, tags,
			map[string]time.Time{"next": t0}, map[string]time.Time{"old": t0.Add(time.Minute)}, time.Time{}},
		{"adopted record without a tag: activatedAt", adopted, nil, map[string]time.Time{}, map[string]time.Time{}, activated},
		{"the tag wins over activatedAt", adopted, tags,
			map[string]time.Time{"next": t0}, map[string]time.Time{"old": t0.Add(time.Minute)}, t0.Add(2 * time.Minute)},
		{"first rotation", nil, nil, map[string]time.Time{}, map[string]time.Time{}, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewState(tt.current, nil, next, tt.tags)
			if !equalTimes(s.Published, tt.published) || !equalTimes(s.Revoked, tt.revoked) || !s.CurrentSince.Equal(tt.since) {
				t.Fatalf("state published=%v revoked=%v since=%v, want %v %v %v",
					s.Published, s.Revoked, s.CurrentSince, tt.published, tt.revoked, tt.since)
			}
		})
	}
}

func equalTimes(a, b map[string]time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !w.Equal(v) {
			return false
		}
	}
	return true
}

func TestPublicationTags(t *testing.T) {
	at := t0.Add(time.Hour)
	published := t0
	next, pending := &keys.Record{Kid: "next"}, &keys.Record{Kid: "pending"}
	tests := []struct {
		name  string
		state State
		set   []string
		want  []string
	}{
		{"next and pending published now", State{Next: next, Pending: pending}, []string{"cur", "pending", "next"},
			[]string{TagPublished + "next", TagPublished + "pending"}},
		{"not in the set: not published", State{Next: next}, []string{"cur"}, nil},
		{"publication already tagged", State{Next: next, Published: map[string]time.Time{"next": published}}, []string{"next"}, nil},
		{"publication in the record", State{Next: &keys.Record{Kid: "next", PublishedAt: &published}}, []string{"next"}, nil},
		{"current and retired keys are never tagged", State{Current: &keys.Record{Kid: "cur"}}, []string{"cur", "old"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var set []keys.JWK
			for _, kid := range tt.set {
				set = append(set, keys.JWK{Kid: kid})
			}
			got := PublicationTags(tt.state, set, at)
			if !slices.Equal(sortedKeys(got), tt.want) {
				t.Fatalf("PublicationTags = %v, want keys %v", got, tt.want)
			}
			for k, v := range got {
				if v != "2026-01-01T01:00:00Z" {
					t.Errorf("%s = %s, want the publication time", k, v)
				}
			}
		})
	}
}

func TestActivationTags(t *testing.T) {
	tests := []struct {
		name string
		tags map[string]string
		want map[string]string
	}{
		{"first finish records the moment", nil, map[string]string{TagCurrent + "k": "2026-01-01T00:00:00Z"}},
		{"a retried finish keeps the first moment", map[string]string{TagCurrent + "k": "2025-12-31T00:00:00Z"}, nil},
		{"another key's tag does not count", map[string]string{TagCurrent + "j": "2025-12-31T00:00:00Z"},
			map[string]string{TagCurrent + "k": "2026-01-01T00:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ActivationTags(tt.tags, "k", t0)
			if len(got) != len(tt.want) || (len(got) > 0 && got[TagCurrent+"k"] != tt.want[TagCurrent+"k"]) {
				t.Fatalf("ActivationTags = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRevocationTags(t *testing.T) {
	rec := keys.Record{Kid: "fresh", Revoked: []keys.RevokedKey{
		{JWK: keys.JWK{Kid: "leaked"}, RevokedAt: t0},
		{JWK: keys.JWK{Kid: "next"}, RevokedAt: t0.Add(time.Second)},
	}}
	tests := []struct {
		name string
		tags map[string]string
		want map[string]string
	}{
		{"none tagged yet", nil, map[string]string{
			TagRevoked + "leaked": "2026-01-01T00:00:00Z", TagRevoked + "next": "2026-01-01T00:00:01Z"}},
		{"one tagged by an earlier attempt", map[string]string{TagRevoked + "leaked": "2026-01-01T00:00:00Z"},
			map[string]string{TagRevoked + "next": "2026-01-01T00:00:01Z"}},
		{"all tagged", map[string]string{TagRevoked + "leaked": "x", TagRevoked + "next": "y"}, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RevocationTags(tt.tags, rec)
			if len(got) != len(tt.want) {
				t.Fatalf("RevocationTags = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("RevocationTags = %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestStaleTags(t *testing.T) {
	ts := "2026-01-01T00:00:00Z"
	cur := &keys.Record{Kid: "cur", Revoked: []keys.RevokedKey{{JWK: keys.JWK{Kid: "folded"}}}}
	tags := map[string]string{
		TagCurrent + "cur":       ts, // Current's own activation: still needed
		TagCurrent + "old":       ts, // a former current's: folded into Current's retired list
		TagPublished + "next":    ts, // NEXT's publication: needed for its grace
		TagPublished + "pending": ts, // pending's: needed
		TagPublished + "cur":     ts, // folded into Current's record at promotion
		TagRevoked + "folded":    ts, // Current's record carries it
		TagRevoked + "inflight":  ts, // not carried yet: must stay
		TagRollover:              RolloverEmergency,
		"owner":                  "team-a",
		TagPublished + "bad":     "not a time", // not ours to judge: left alone
	}
	tests := []struct {
		name  string
		state State
		want  []string
	}{
		{"after a finish", State{Current: cur, Next: &keys.Record{Kid: "next"}, Pending: &keys.Record{Kid: "pending"}},
			[]string{TagCurrent + "old", TagPublished + "cur", TagRevoked + "folded"}},
		{"no pending: its publication tag goes", State{Current: cur, Next: &keys.Record{Kid: "next"}},
			[]string{TagCurrent + "old", TagPublished + "cur", TagPublished + "pending", TagRevoked + "folded"}},
		{"before the first rotation nothing is stale", State{Next: &keys.Record{Kid: "next"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := StaleTags(tt.state, tags)
			slices.Sort(got)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("StaleTags = %v, want %v", got, want)
			}
		})
	}
}

func sortedKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
