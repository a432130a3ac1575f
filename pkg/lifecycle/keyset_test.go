package lifecycle

import (
	"slices"
	"testing"
	"time"

	"jwks-issuer/pkg/keys"
)

// KMS keys are live while their key signs or its tokens may be alive,
// revoked once any record or tag revokes them, and dropped once retention
// has let the retired entry go.
func TestExternalKeys(t *testing.T) {
	c := cfg()
	kms := func(kid, id string) *keys.Record { return &keys.Record{Kid: kid, KMSKeyID: id} }
	retiredAt := func(d time.Duration) *time.Time { at := t0.Add(d); return &at }
	current := &keys.Record{Kid: "cur", KMSKeyID: "k-cur", Retired: []keys.RetiredKey{
		{JWK: keys.JWK{Kid: "old"}, KMSKeyID: "k-old", RetiredAt: retiredAt(0)},
		{JWK: keys.JWK{Kid: "older"}, KMSKeyID: "k-older", RetiredAt: retiredAt(-c.Retention())},
		{JWK: keys.JWK{Kid: "local"}, RetiredAt: retiredAt(0)}, // no KMS key: not listed
	}, Revoked: []keys.RevokedKey{{JWK: keys.JWK{Kid: "leaked"}, KMSKeyID: "k-leaked", RevokedAt: t0}}}
	tests := []struct {
		name                   string
		state                  State
		now                    time.Time
		live, revoked, dropped []string
	}{
		{"inside retention", State{Current: current, CurrentSince: t0, Next: kms("next", "k-next")}, t0,
			[]string{"k-cur", "k-next", "k-old"}, []string{"k-leaked"}, []string{"k-older"}},
		{"after retention the retired key is dropped", State{Current: current, CurrentSince: t0, Next: kms("next", "k-next")},
			t0.Add(c.Retention()), []string{"k-cur", "k-next"}, []string{"k-leaked"}, []string{"k-old", "k-older"}},
		{"a pending record's retirement has not happened: kept live",
			State{Current: kms("cur", "k-cur"), Pending: &keys.Record{Kid: "p", KMSKeyID: "k-p",
				Retired: []keys.RetiredKey{{JWK: keys.JWK{Kid: "cur"}, KMSKeyID: "k-cur"}}}, Next: kms("next", "k-next")},
			t0.Add(100 * c.Retention()), []string{"k-cur", "k-next", "k-p"}, nil, nil},
		{"a tag revokes NEXT in flight", State{Current: kms("cur", "k-cur"), Next: kms("next", "k-next"),
			Revoked: map[string]time.Time{"next": t0}}, t0, []string{"k-cur"}, []string{"k-next"}, nil},
		{"keys in the secret: nothing", State{Current: &keys.Record{Kid: "cur"}}, t0, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live, revoked, dropped := ExternalKeys(tt.state, c, tt.now)
			if !slices.Equal(live, tt.live) || !slices.Equal(revoked, tt.revoked) || !slices.Equal(dropped, tt.dropped) {
				t.Fatalf("ExternalKeys = live %v revoked %v dropped %v, want %v %v %v",
					live, revoked, dropped, tt.live, tt.revoked, tt.dropped)
			}
		})
	}
}
