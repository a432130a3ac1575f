// Package storetest is the contract suite every store implementation must
// pass: the AWS adapters against moto_server, and the in-memory twins. It
// checks only behaviour that AWS documents and moto 5.2.1 reproduces, so
// that a twin passing it can stand in for AWS in other packages' tests.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"maps"
	"testing"

	"jwks-issuer/pkg/store"
)

// InitialValue is what a fresh secret from a RunSecrets factory holds: one
// version, labelled AWSCURRENT, as CreateSecret with SecretString "{}" makes.
const InitialValue = "{}"

// NewVersionID returns a random version id of 32 hex characters, the
// shortest ClientRequestToken AWS accepts.
func NewVersionID(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// RunSecrets runs the secrets contract. newStore must return a fresh,
// untagged secret whose only version is labelled AWSCURRENT and holds
// InitialValue. Subtests run in parallel, each with a secret of its own.
func RunSecrets(t *testing.T, newStore func(t *testing.T) store.Secrets) {
	// fresh returns a new secret and the id of its initial version.
	fresh := func(t *testing.T) (store.Secrets, string) {
		t.Helper()
		t.Parallel()
		s := newStore(t)
		v0, value := mustGetStage(t, s, store.StageCurrent)
		if string(value) != InitialValue {
			t.Fatalf("fresh secret: AWSCURRENT holds %q, want %q", value, InitialValue)
		}
		return s, v0
	}
	ctx := context.Background()

	t.Run("fresh secret has one AWSCURRENT version", func(t *testing.T) {
		s, v0 := fresh(t)
		wantMeta(t, s, map[string]string{store.StageCurrent: v0}, map[string]string{})
	})

	t.Run("put then get by version and by stage", func(t *testing.T) {
		s, _ := fresh(t)
		v1 := NewVersionID(t)
		mustPut(t, s, v1, `{"k":1}`, store.StageNext, "OTHER")
		if got := mustGetVersion(t, s, v1); string(got) != `{"k":1}` {
			t.Errorf("GetVersion = %q, want %q", got, `{"k":1}`)
		}
		for _, stage := range []string{store.StageNext, "OTHER"} {
			id, got := mustGetStage(t, s, stage)
			if id != v1 || string(got) != `{"k":1}` {
				t.Errorf("GetStage(%s) = %s, %q; want %s, %q", stage, id, got, v1, `{"k":1}`)
			}
		}
	})

	t.Run("put of the same value again is a no-op", func(t *testing.T) {
		s, v0 := fresh(t)
		v1 := NewVersionID(t)
		mustPut(t, s, v1, "same", store.StageNext)
		mustPut(t, s, v1, "same", store.StageNext)
		wantMeta(t, s, map[string]string{store.StageCurrent: v0, store.StageNext: v1}, map[string]string{})
	})

	t.Run("put of a different value under an existing version is ErrVersionExists", func(t *testing.T) {
		s, _ := fresh(t)
		v1 := NewVersionID(t)
		mustPut(t, s, v1, "first", store.StageNext)
		err := s.PutVersion(ctx, v1, []byte("second"), []string{store.StageNext})
		if !errors.Is(err, store.ErrVersionExists) {
			t.Fatalf("PutVersion with a different value: err = %v, want ErrVersionExists", err)
		}
		if got := mustGetVersion(t, s, v1); string(got) != "first" {
			t.Errorf("after refused put, version holds %q, want %q", got, "first")
		}
	})

	t.Run("put without stages is refused", func(t *testing.T) {
		s, v0 := fresh(t)
		if err := s.PutVersion(ctx, NewVersionID(t), []byte("x"), nil); err == nil {
			t.Fatal("PutVersion with no stages: err = nil, want an error")
		}
		wantMeta(t, s, map[string]string{store.StageCurrent: v0}, map[string]string{})
	})

	t.Run("missing version or stage is ErrNotFound", func(t *testing.T) {
		s, _ := fresh(t)
		for name, get := range map[string]func() error{
			"version": func() error { _, err := s.GetVersion(ctx, NewVersionID(t)); return err },
			"stage":   func() error { _, _, err := s.GetStage(ctx, "NO_SUCH_STAGE"); return err },
		} {
			if err := get(); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("get missing %s: err = %v, want ErrNotFound", name, err)
			}
		}
	})

	t.Run("put with a label another version holds moves it", func(t *testing.T) {
		s, v0 := fresh(t)
		v1, v2 := NewVersionID(t), NewVersionID(t)
		mustPut(t, s, v1, "one", store.StageNext)
		mustPut(t, s, v2, "two", store.StageNext)
		wantMeta(t, s, map[string]string{store.StageCurrent: v0, store.StageNext: v2}, map[string]string{})
		if got := mustGetVersion(t, s, v1); string(got) != "one" {
			t.Errorf("unlabelled version holds %q, want %q", got, "one")
		}
	})

	t.Run("put with AWSCURRENT moves AWSPREVIOUS to the old current", func(t *testing.T) {
		s, v0 := fresh(t)
		v1 := NewVersionID(t)
		mustPut(t, s, v1, "one", store.StageCurrent)
		wantMeta(t, s, map[string]string{store.StageCurrent: v1, "AWSPREVIOUS": v0}, map[string]string{})
	})

	t.Run("MoveStage moves AWSCURRENT", func(t *testing.T) {
		s, v0 := fresh(t)
		v1 := NewVersionID(t)
		mustPut(t, s, v1, "new", store.StagePending)
		mustMove(t, s, store.StageCurrent, v1, v0)
		wantMeta(t, s, map[string]string{
			store.StageCurrent: v1,
			store.StagePending: v1,
			"AWSPREVIOUS":      v0,
		}, map[string]string{})
		if id, got := mustGetStage(t, s, store.StageCurrent); id != v1 || string(got) != "new" {
			t.Errorf("GetStage(AWSCURRENT) = %s, %q; want %s, %q", id, got, v1, "new")
		}
		// What finishSecret does next: take AWSPENDING off, remove only.
		mustMove(t, s, store.StagePending, "", v1)
		wantMeta(t, s, map[string]string{store.StageCurrent: v1, "AWSPREVIOUS": v0}, map[string]string{})
	})

	t.Run("MoveStage of an unattached label", func(t *testing.T) {
		s, v0 := fresh(t)
		v1 := NewVersionID(t)
		mustPut(t, s, v1, "one", "OTHER")
		mustMove(t, s, store.StageNext, v1, "")
		wantMeta(t, s, map[string]string{store.StageCurrent: v0, store.StageNext: v1, "OTHER": v1}, map[string]string{})
	})

	t.Run("MoveStage remove only", func(t *testing.T) {
		s, v0 := fresh(t)
		v1 := NewVersionID(t)
		mustPut(t, s, v1, "one", store.StageNext)
		mustMove(t, s, store.StageNext, "", v1)
		wantMeta(t, s, map[string]string{store.StageCurrent: v0}, map[string]string{})
		if _, _, err := s.GetStage(ctx, store.StageNext); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetStage of removed label: err = %v, want ErrNotFound", err)
		}
		if got := mustGetVersion(t, s, v1); string(got) != "one" {
			t.Errorf("version without labels holds %q, want %q", got, "one")
		}
	})

	t.Run("MoveStage refuses a wrong version", func(t *testing.T) {
		s, v0 := fresh(t)
		v1, v2 := NewVersionID(t), NewVersionID(t)
		mustPut(t, s, v1, "one", store.StageNext)
		mustPut(t, s, v2, "two", "OTHER")
		for _, c := range []struct{ name, stage, to, from string }{
			{"from a version without the label", store.StageNext, v2, v0},
			{"remove from a version without the label", store.StageNext, "", v2},
		} {
			if err := s.MoveStage(ctx, c.stage, c.to, c.from); err == nil {
				t.Errorf("MoveStage %s: err = nil, want an error", c.name)
			}
		}
		wantMeta(t, s, map[string]string{store.StageCurrent: v0, store.StageNext: v1, "OTHER": v2}, map[string]string{})
	})

	// Only the error is checked: moto 5.2.1 takes the label off fromVersion
	// before it notices that toVersion does not exist.
	t.Run("MoveStage to a version that does not exist errors", func(t *testing.T) {
		s, _ := fresh(t)
		v1 := NewVersionID(t)
		mustPut(t, s, v1, "one", store.StageNext)
		if err := s.MoveStage(ctx, store.StageNext, NewVersionID(t), v1); err == nil {
			t.Fatal("MoveStage: err = nil, want an error")
		}
	})

	t.Run("Tag and Untag round-trip through Describe", func(t *testing.T) {
		s, v0 := fresh(t)
		stages := map[string]string{store.StageCurrent: v0}
		mustDo(t, "Tag", s.Tag(ctx, map[string]string{"a": "1", "b": "2"}))
		wantMeta(t, s, stages, map[string]string{"a": "1", "b": "2"})
		mustDo(t, "Tag", s.Tag(ctx, map[string]string{"a": "3"}))
		wantMeta(t, s, stages, map[string]string{"a": "3", "b": "2"})
		mustDo(t, "Untag", s.Untag(ctx, []string{"a", "absent"}))
		wantMeta(t, s, stages, map[string]string{"b": "2"})
		mustDo(t, "Tag nothing", s.Tag(ctx, nil))
		mustDo(t, "Untag nothing", s.Untag(ctx, nil))
		wantMeta(t, s, stages, map[string]string{"b": "2"})
	})
}

func mustPut(t *testing.T, s store.Secrets, versionID, value string, stages ...string) {
	t.Helper()
	if err := s.PutVersion(context.Background(), versionID, []byte(value), stages); err != nil {
		t.Fatalf("PutVersion(%s, %v): %v", versionID, stages, err)
	}
}

func mustMove(t *testing.T, s store.Secrets, stage, to, from string) {
	t.Helper()
	if err := s.MoveStage(context.Background(), stage, to, from); err != nil {
		t.Fatalf("MoveStage(%s, to %q, from %q): %v", stage, to, from, err)
	}
}

func mustGetVersion(t *testing.T, s store.Secrets, versionID string) []byte {
	t.Helper()
	value, err := s.GetVersion(context.Background(), versionID)
	if err != nil {
		t.Fatalf("GetVersion(%s): %v", versionID, err)
	}
	return value
}

func mustGetStage(t *testing.T, s store.Secrets, stage string) (string, []byte) {
	t.Helper()
	id, value, err := s.GetStage(context.Background(), stage)
	if err != nil {
		t.Fatalf("GetStage(%s): %v", stage, err)
	}
	return id, value
}

func mustDo(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantMeta checks the whole of Describe's answer, so that a label left
// behind on the wrong version is caught as surely as a missing one.
func wantMeta(t *testing.T, s store.Secrets, stages, tags map[string]string) {
	t.Helper()
	meta, err := s.Describe(context.Background())
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if !maps.Equal(meta.Stages, stages) {
		t.Errorf("Describe stages = %v, want %v", meta.Stages, stages)
	}
	if !maps.Equal(meta.Tags, tags) {
		t.Errorf("Describe tags = %v, want %v", meta.Tags, tags)
	}
}

// RunBeginRotation runs the contract of what RotateSecret leaves behind
// before it invokes the rotation function, which the rotator checks every
// step against. newStore returns a fresh secret as RunSecrets's factory
// does, and begin, which starts a rotation under a token.
func RunBeginRotation(t *testing.T, newStore func(t *testing.T) (s store.Secrets, begin func(token string) error)) {
	t.Parallel()
	ctx := context.Background()
	s, begin := newStore(t)
	meta, err := s.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if meta.RotationEnabled {
		t.Error("fresh secret: RotationEnabled = true, want false")
	}
	tok := NewVersionID(t)
	if err := begin(tok); err != nil {
		t.Fatalf("begin rotation: %v", err)
	}
	if meta, err = s.Describe(ctx); err != nil {
		t.Fatal(err)
	}
	if !meta.RotationEnabled || meta.Stages[store.StagePending] != tok || meta.Stages[store.StageCurrent] == tok {
		t.Fatalf("after RotateSecret: enabled=%v stages=%v, want enabled and AWSPENDING (only) on %s", meta.RotationEnabled, meta.Stages, tok)
	}
	if _, err := s.GetVersion(ctx, tok); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetVersion of the valueless pending version: err = %v, want ErrNotFound", err)
	}
	// createSecret's first write fills the version RotateSecret made.
	mustPut(t, s, tok, `{"k":2}`, store.StagePending)
	if got := mustGetVersion(t, s, tok); string(got) != `{"k":2}` {
		t.Errorf("GetVersion after the write = %q, want %q", got, `{"k":2}`)
	}
}
