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

func TestParameterNeedsWrite(t *testing.T) {
	readAt := t0.Add(time.Hour)
	old := &keys.Record{Kid: "old", CreatedAt: t0.Add(-48 * time.Hour)}
	cur := &keys.Record{Kid: "cur", CreatedAt: t0.Add(-24 * time.Hour),
		Retired: []keys.RetiredKey{{JWK: keys.JWK{Kid: "old"}}}}
	next := &keys.Record{Kid: "next", CreatedAt: t0}
	pending := &keys.Record{Kid: "pending", CreatedAt: t0}
	state := State{Current: cur, Next: next, Pending: pending, Revoked: map[string]time.Time{"leaked": t0}}
	tests := []struct {
		name  string
		state State
		held  *keys.Record
		want  bool
	}{
		{"missing or unreadable: write", state, nil, true},
		{"the current kid (the caller compares bytes): write", state, &keys.Record{Kid: "cur"}, true},
		{"a retired key left behind: write", state, old, true},
		{"a revoked key: write", state, &keys.Record{Kid: "leaked", CreatedAt: t0.Add(2 * time.Hour)}, true},
		{"this view's NEXT: promoted since, leave it", state, next, false},
		{"this view's pending key: being promoted, leave it", state, pending, false},
		{"an unknown key made before the view: write", state, &keys.Record{Kid: "x", CreatedAt: readAt}, true},
		{"an unknown key made after the view (an emergency's fresh key): leave it", state,
			&keys.Record{Kid: "fresh", CreatedAt: readAt.Add(time.Second)}, false},
		{"before the first rotation: nothing to write", State{}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParameterNeedsWrite(tt.state, tt.held, readAt); got != tt.want {
				t.Fatalf("ParameterNeedsWrite = %v, want %v", got, tt.want)
			}
		})
	}
}
