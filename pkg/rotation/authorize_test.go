package rotation

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/store"
)

func TestAuthorize(t *testing.T) {
	const cur, pend, next, prev = "v-current", "v-pending", "v-next", "v-previous"
	stages := map[string]string{store.StageCurrent: cur, store.StagePending: pend, store.StageNext: next, "AWSPREVIOUS": prev}
	finished := map[string]string{store.StageCurrent: pend, store.StageNext: next, "AWSPREVIOUS": cur}
	tests := []struct {
		name    string
		meta    store.SecretMeta
		tok     string
		done    bool
		refused string // "" when allowed
	}{
		{"the pending version runs", store.SecretMeta{Stages: stages, RotationEnabled: true}, pend, false, ""},
		{"a finished rotation is done", store.SecretMeta{Stages: finished, RotationEnabled: true}, pend, true, ""},
		{"pending on the current version runs (finish died before removing it)",
			store.SecretMeta{Stages: map[string]string{store.StageCurrent: pend, store.StagePending: pend}, RotationEnabled: true}, pend, false, ""},
		{"rotation not enabled", store.SecretMeta{Stages: stages}, pend, false, "rotation is not enabled"},
		{"the previous version", store.SecretMeta{Stages: stages, RotationEnabled: true}, prev, false, "is the version labelled AWSPREVIOUS"},
		{"NEXT's version", store.SecretMeta{Stages: stages, RotationEnabled: true}, next, false, "is the version labelled NEXT"},
		{"an unknown version", store.SecretMeta{Stages: stages, RotationEnabled: true}, "v-other", false, "is not a labelled version"},
		{"no rotation in progress", store.SecretMeta{Stages: finished, RotationEnabled: true}, "v-other", false, `AWSPENDING is on ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done, err := authorize(tt.meta, "finishSecret", tt.tok)
			if tt.refused == "" {
				if err != nil || done != tt.done {
					t.Fatalf("authorize = %v, %v; want done=%v", done, err, tt.done)
				}
				return
			}
			var refused *StepRefused
			if !errors.As(err, &refused) || done || !strings.Contains(err.Error(), tt.refused) ||
				!strings.Contains(err.Error(), "finishSecret refused: ClientRequestToken "+tt.tok) {
				t.Fatalf("authorize = %v, %v; want a StepRefused naming the step and token and saying %q", done, err, tt.refused)
			}
		})
	}
}

// Steps that Secrets Manager did not start are refused and change nothing:
// neither a revoked key nor an early promotion can be forced by invoking
// the rotator by hand.
func TestForgedStepsAreRefusedAndChangeNothing(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		setup func(t *testing.T, e *env) (tok string)
	}{
		{"the leaked version after an emergency rollover", func(t *testing.T, e *env) string {
			e.clock.advance(25 * time.Hour)
			leaked := e.state(t).meta.Stages[store.StageCurrent]
			_ = e.secret.Tag(ctx, map[string]string{lifecycle.TagRollover: lifecycle.RolloverEmergency})
			e.mustRotate(t, tokenN(2))
			return leaked
		}},
		{"NEXT's version a minute after a rotation", func(t *testing.T, e *env) string {
			e.clock.advance(25 * time.Hour)
			e.mustRotate(t, tokenN(2))
			e.clock.advance(time.Minute)
			return e.state(t).meta.Stages[store.StageNext]
		}},
		{"an unknown version", func(t *testing.T, e *env) string { return tokenN(99) }},
		{"the first, {} version", func(t *testing.T, e *env) string { return tokenN(0) }},
	}
	for _, tt := range tests {
		for _, step := range steps {
			t.Run(tt.name+"/"+step, func(t *testing.T) {
				e := newEnv(t, testConfig())
				e.mustRotate(t, tokenN(1))
				tok := tt.setup(t, e)
				before := e.fingerprint(t)
				err := e.rot.Handle(ctx, Event{Step: step, SecretID: "test", ClientRequestToken: tok})
				var refused *StepRefused
				if !errors.As(err, &refused) {
					t.Fatalf("forged %s: err = %v, want StepRefused", step, err)
				}
				if after := e.fingerprint(t); after != before {
					t.Fatalf("a refused step changed state:\nbefore %s\nafter  %s", before, after)
				}
			})
		}
	}
}

// Without a rotation configured (RotateSecret never called, or rotation
// cancelled), no step runs, not even with the version id of a real version.
func TestStepsNeedRotationEnabled(t *testing.T) {
	e := newEnv(t, testConfig())
	before := e.fingerprint(t)
	for _, step := range steps {
		err := e.rot.Handle(context.Background(), Event{Step: step, SecretID: "test", ClientRequestToken: tokenN(0)})
		if err == nil || !strings.Contains(err.Error(), "rotation is not enabled") {
			t.Fatalf("%s on a secret without rotation: %v", step, err)
		}
	}
	if after := e.fingerprint(t); after != before {
		t.Fatalf("refused steps changed state:\nbefore %s\nafter  %s", before, after)
	}
}

// A step delivered again after its rotation finished succeeds without
// writing anything.
func TestStepsOfAFinishedRotationAreDone(t *testing.T) {
	e := newEnv(t, testConfig())
	e.mustRotate(t, tokenN(1))
	before := e.fingerprint(t)
	for _, step := range steps {
		if err := e.rot.Handle(context.Background(), Event{Step: step, SecretID: "test", ClientRequestToken: tokenN(1)}); err != nil {
			t.Fatalf("%s of the finished rotation: %v", step, err)
		}
	}
	if after := e.fingerprint(t); after != before {
		t.Fatalf("steps of a finished rotation changed state:\nbefore %s\nafter  %s", before, after)
	}
}
