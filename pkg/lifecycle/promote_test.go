package lifecycle

import (
	"testing"
	"time"

	"jwks-issuer/pkg/keys"
)

func TestNextUsableAndReadiness(t *testing.T) {
	next := &keys.Record{Kid: "next"}
	published := t0
	publishedNext := &keys.Record{Kid: "next", PublishedAt: &published}
	revokingNext := &keys.Record{Kid: "fresh", Revoked: []keys.RevokedKey{{JWK: keys.JWK{Kid: "next"}}}}
	tests := []struct {
		name      string
		state     State
		promoting *keys.Record
		usable    bool
		readiness Readiness
	}{
		{"no next", State{}, nil, false, NextMissing},
		{"next revoked by a tag", State{Next: next, Revoked: map[string]time.Time{"next": t0}}, nil, false, NextMissing},
		{"next revoked by the current record", State{Current: revokingNext, Next: next}, nil, false, NextMissing},
		{"next never published", State{Next: next}, nil, true, NextUnpublished},
		{"publication tagged", State{Next: next, Published: map[string]time.Time{"next": t0}}, nil, true, NextReady},
		{"publication in the record", State{Next: publishedNext}, nil, true, NextReady},
		{"next is the key being promoted", State{Next: next}, next, false, NextUnpublished},
		{"the promoted record revokes next", State{Next: next}, revokingNext, false, NextUnpublished},
		{"another key is promoted", State{Next: next}, &keys.Record{Kid: "other"}, true, NextUnpublished},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NextUsable(tt.state, tt.promoting); got != tt.usable {
				t.Errorf("NextUsable = %v, want %v", got, tt.usable)
			}
			if got := NextReadiness(tt.state); got != tt.readiness {
				t.Errorf("NextReadiness = %v, want %v", got, tt.readiness)
			}
		})
	}
}
