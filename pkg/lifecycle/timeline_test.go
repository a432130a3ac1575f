package lifecycle

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"jwks-issuer/pkg/keys"
)

// Each key's moments follow from the records and tags: the table gives a
// state after a sequence of rotations and the line Timeline must give for
// every key, in order.
func TestTimeline(t *testing.T) {
	c := cfg()
	rec := func(kid string) *keys.Record {
		return &keys.Record{Kid: kid, Alg: keys.ES256, CreatedAt: t0, PublicKeyJwk: keys.JWK{Kid: kid, Alg: "ES256"}}
	}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	ptr := func(d time.Duration) *time.Time { x := at(d); return &x }
	retired := func(kid string, r *time.Time) keys.RetiredKey {
		return keys.RetiredKey{JWK: keys.JWK{Kid: kid, Alg: "ES256"}, RetiredAt: r}
	}
	day := 24 * time.Hour
	// K1 became current at 0 (first rotation), K2 at 30 days, K3 at 30 days and 1 hour.
	k2 := rec("K2")
	k2.PublishedAt = ptr(0)
	k2.Retired = []keys.RetiredKey{retired("K1", nil)}
	k3 := rec("K3")
	k3.PublishedAt = ptr(30 * day)
	k3.Retired = []keys.RetiredKey{retired("K2", nil), retired("K1", ptr(30*day))}
	pending := rec("K3")
	pending.Retired = []keys.RetiredKey{retired("K2", nil), retired("K1", ptr(30*day))}
	fresh := rec("K9")
	fresh.Emergency = true
	fresh.Revoked = []keys.RevokedKey{
		{JWK: keys.JWK{Kid: "K2", Alg: "ES256"}, RevokedAt: at(31 * day)},
		{JWK: keys.JWK{Kid: "K3", Alg: "ES256"}, RevokedAt: at(31 * day)},
	}
	fresh.Retired = []keys.RetiredKey{retired("K1", ptr(30*day))}

	tests := []struct {
		name  string
		state State
		now   time.Time
		want  []string // kid role label published promotable signing retired removal inset
	}{
		{"after the first rotation",
			State{Current: rec("K1"), CurrentSince: at(0), Next: rec("K2"), Published: map[string]time.Time{"K2": at(0)}},
			at(time.Hour), []string{
				"K1 CURRENT AWSCURRENT - - 0s - - in",
				"K2 NEXT NEXT 0s 24h0m0s - - - in",
			}},
		{"after the second rotation, inside retention",
			State{Current: k2, CurrentSince: at(30 * day), Next: rec("K3"), Published: map[string]time.Time{"K3": at(30 * day)}},
			at(30*day + time.Hour), []string{
				"K2 CURRENT AWSCURRENT 0s - 720h0m0s - - in",
				"K3 NEXT NEXT 720h0m0s 744h0m0s - - - in",
				"K1 RETIRED - - - - 720h0m0s 722h2m0s in",
			}},
		{"after the second rotation, past retention: listed, out of the key set",
			State{Current: k2, CurrentSince: at(30 * day), Next: rec("K3"), Published: map[string]time.Time{"K3": at(30 * day)}},
			at(30*day + c.Retention()), []string{
				"K2 CURRENT AWSCURRENT 0s - 720h0m0s - - in",
				"K3 NEXT NEXT 720h0m0s 744h0m0s - - - in",
				"K1 RETIRED - - - - 720h0m0s 722h2m0s out",
			}},
		{"activation not recorded: the retired key is kept, its times unknown",
			State{Current: k2, Next: rec("K3")},
			at(100 * day), []string{
				"K2 CURRENT AWSCURRENT 0s - - - - in",
				"K3 NEXT NEXT - - - - - in",
				"K1 RETIRED - - - - - - in",
			}},
		{"two retired keys: the older one's retirement is when the newer one began signing",
			State{Current: k3, CurrentSince: at(30*day + time.Hour), Next: rec("K4")},
			at(30*day + 2*time.Hour), []string{
				"K3 CURRENT AWSCURRENT 720h0m0s - 721h0m0s - - in",
				"K4 NEXT NEXT - - - - - in",
				"K2 RETIRED - - - 720h0m0s 721h0m0s 723h2m0s in",
				"K1 RETIRED - - - - 720h0m0s 722h2m0s in",
			}},
		{"a rotation in progress: the pending record's retirements have not happened",
			State{Current: k2, CurrentSince: at(30 * day), Pending: pending, Next: rec("K4"),
				Published: map[string]time.Time{"K3": at(30 * day), "K4": at(31 * day)}},
			at(31 * day), []string{
				"K2 CURRENT AWSCURRENT 0s - 720h0m0s - - in",
				"K3 pending AWSPENDING 720h0m0s - - - - in",
				"K4 NEXT NEXT 744h0m0s 768h0m0s - - - in",
				"K1 RETIRED - - - - 720h0m0s 722h2m0s out",
			}},
		{"an emergency rollover in progress: AWSCURRENT is revoked, so is the old NEXT",
			State{Current: k2, CurrentSince: at(30 * day), Pending: fresh, Next: rec("K10"),
				Published: map[string]time.Time{"K9": at(31 * day), "K10": at(31 * day)},
				Revoked:   map[string]time.Time{"K2": at(31 * day), "K3": at(31 * day)}},
			at(31 * day), []string{
				"K2 REVOKED AWSCURRENT 0s - 720h0m0s 744h0m0s 744h0m0s out",
				"K9 pending AWSPENDING 744h0m0s - - - - in",
				"K10 NEXT NEXT 744h0m0s 768h0m0s - - - in",
				"K1 RETIRED - - - - 720h0m0s 722h2m0s out",
				"K3 REVOKED - - - - 744h0m0s 744h0m0s out",
			}},
		{"after the emergency: the revocations are in the current record",
			State{Current: fresh, CurrentSince: at(31*day + time.Minute), Next: rec("K10"),
				Published: map[string]time.Time{"K10": at(31 * day)}},
			at(31*day + time.Hour), []string{
				"K9 CURRENT AWSCURRENT - - 744h1m0s - - in",
				"K10 NEXT NEXT 744h0m0s 768h0m0s - - - in",
				"K1 RETIRED - - - - 720h0m0s 722h2m0s out",
				"K2 REVOKED - - - - 744h0m0s 744h0m0s out",
				"K3 REVOKED - - - - 744h0m0s 744h0m0s out",
			}},
		{"a fresh secret knows no key", State{}, t0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, k := range Timeline(tt.state, c, tt.now) {
				got = append(got, timelineLine(k))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("Timeline:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// The key set and the timeline agree: every key KeySet publishes is listed
// with InKeySet, and no other.
func TestTimelineAgreesWithKeySet(t *testing.T) {
	c := cfg()
	cur, next := record(t), record(t)
	old := keys.RetiredKey{JWK: record(t).Public()}
	cur.Retired = []keys.RetiredKey{old}
	s := State{Current: cur, CurrentSince: t0, Next: next}
	for _, now := range []time.Time{t0, t0.Add(c.Retention() - time.Nanosecond), t0.Add(c.Retention())} {
		set := map[string]bool{}
		for _, k := range KeySet(s, c, now) {
			set[k.Kid] = true
		}
		n := 0
		for _, k := range Timeline(s, c, now) {
			if k.InKeySet != set[k.Kid] {
				t.Errorf("at %v: %s InKeySet = %v, KeySet holds it: %v", now.Sub(t0), k.Kid, k.InKeySet, set[k.Kid])
			}
			if k.InKeySet {
				n++
			}
		}
		if n != len(set) {
			t.Errorf("at %v: %d keys in the key set, %d in the timeline", now.Sub(t0), len(set), n)
		}
	}
}

func timelineLine(k KeyTimeline) string {
	d := func(x time.Time) string {
		if x.IsZero() {
			return "-"
		}
		return x.Sub(t0).String()
	}
	label, in := k.Label, "out"
	if label == "" {
		label = "-"
	}
	if k.InKeySet {
		in = "in"
	}
	return fmt.Sprintf("%s %s %s %s %s %s %s %s %s", k.Kid, k.Role, label, d(k.Published), d(k.Promotable),
		d(k.SigningSince), d(k.Retired), d(k.Removal), in)
}
