package memstore_test

import (
	"context"
	"errors"
	"testing"

	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/memstore"
	"jwks-issuer/pkg/store/storetest"
)

// newSecret seeds what CreateSecret with SecretString "{}" makes.
func newSecret(t *testing.T) *memstore.Secrets {
	t.Helper()
	s := memstore.NewSecrets()
	if err := s.PutVersion(context.Background(), storetest.NewVersionID(t), []byte(storetest.InitialValue), []string{store.StageCurrent}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSecretsContract(t *testing.T) {
	storetest.RunSecrets(t, func(t *testing.T) store.Secrets { return newSecret(t) })
}

func TestBeginRotationContract(t *testing.T) {
	storetest.RunBeginRotation(t, func(t *testing.T) (store.Secrets, func(string) error) {
		s := newSecret(t)
		return s, s.BeginRotation
	})
}

func TestParameterContract(t *testing.T) {
	storetest.RunParameter(t, func(t *testing.T) store.Parameter { return memstore.NewParameter() })
}

func TestObjectsContract(t *testing.T) {
	storetest.RunObjects(t, func(t *testing.T) store.Objects { return memstore.NewObject() })
}

var errInjected = errors.New("injected")

func TestHookFailsEachOperation(t *testing.T) {
	ctx := context.Background()
	s := newSecret(t)
	o := memstore.NewObject()
	v := storetest.NewVersionID(t)
	ops := []struct {
		op   string
		call func() error
	}{
		{memstore.OpDescribe, func() error { _, err := s.Describe(ctx); return err }},
		{memstore.OpGetVersion, func() error { _, err := s.GetVersion(ctx, v); return err }},
		{memstore.OpGetStage, func() error { _, _, err := s.GetStage(ctx, store.StageCurrent); return err }},
		{memstore.OpPutVersion, func() error { return s.PutVersion(ctx, v, []byte("x"), []string{store.StageNext}) }},
		{memstore.OpMoveStage, func() error { return s.MoveStage(ctx, store.StageNext, v, "") }},
		{memstore.OpTag, func() error { return s.Tag(ctx, map[string]string{"k": "v"}) }},
		{memstore.OpUntag, func() error { return s.Untag(ctx, []string{"k"}) }},
		{memstore.OpGet, func() error { _, err := o.Get(ctx); return err }},
		{memstore.OpPut, func() error { _, err := o.Put(ctx, []byte("x"), "", "", store.PutCondition{}); return err }},
	}
	var seen []string
	hook := func(op string) error { seen = append(seen, op); return errInjected }
	s.SetHook(hook)
	o.SetHook(hook)
	for _, c := range ops {
		if err := c.call(); !errors.Is(err, errInjected) {
			t.Errorf("%s: err = %v, want the injected error", c.op, err)
		}
	}
	for i, c := range ops {
		if i >= len(seen) || seen[i] != c.op {
			t.Fatalf("hook saw %v, want the operations in call order", seen)
		}
	}

	// Nothing was performed: the secret still has only its seed.
	s.SetHook(nil)
	o.SetHook(nil)
	meta, err := s.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(meta.Stages) != 1 || len(meta.Tags) != 0 || len(s.Versions()) != 1 {
		t.Errorf("after failed operations: %+v, versions %v", meta, s.Versions())
	}
	if _, err := o.Get(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("object after failed Put: err = %v, want ErrNotFound", err)
	}
}

// A hook runs without the lock held, so it can play a concurrent writer
// that wins the race between a read and a conditional write.
func TestHookCanInterleaveAWriter(t *testing.T) {
	ctx := context.Background()
	o := memstore.NewObject()
	etag, err := o.Put(ctx, []byte("v1"), "", "", store.PutCondition{})
	if err != nil {
		t.Fatal(err)
	}
	o.SetHook(func(op string) error {
		o.SetHook(nil) // one rival write, whose own Put must not recurse
		if _, err := o.Put(ctx, []byte("rival"), "", "", store.PutCondition{}); err != nil {
			t.Errorf("rival Put: %v", err)
		}
		return nil
	})
	if _, err := o.Put(ctx, []byte("v2"), "", "", store.PutCondition{IfMatch: etag}); !errors.Is(err, store.ErrPrecondition) {
		t.Fatalf("Put after a rival write: err = %v, want ErrPrecondition", err)
	}
}

// The twin enforces AWS rules that moto does not, so that code breaking
// them fails in unit tests rather than in production.
func TestSecretsAWSRules(t *testing.T) {
	ctx := context.Background()
	s := newSecret(t)
	current, _, err := s.GetStage(ctx, store.StageCurrent)
	if err != nil {
		t.Fatal(err)
	}
	v1 := storetest.NewVersionID(t)
	if err := s.PutVersion(ctx, v1, []byte("one"), []string{store.StageNext}); err != nil {
		t.Fatal(err)
	}

	refused := []struct {
		name string
		call func() error
	}{
		{"short ClientRequestToken", func() error { return s.PutVersion(ctx, "v2", []byte("x"), []string{"X"}) }},
		{"moving a held label without naming its version", func() error { return s.MoveStage(ctx, store.StageNext, current, "") }},
		{"removing AWSCURRENT without moving it", func() error { return s.MoveStage(ctx, store.StageCurrent, "", current) }},
		{"nothing to move to or from", func() error { return s.MoveStage(ctx, store.StageNext, "", "") }},
		// Atomic, unlike moto, which takes NEXT off v1 before failing.
		{"moving to a version that does not exist", func() error {
			return s.MoveStage(ctx, store.StageNext, storetest.NewVersionID(t), v1)
		}},
		{"more than 50 tags", func() error {
			tags := map[string]string{}
			for i := range 51 {
				tags[string(rune('A'+i))] = "x"
			}
			return s.Tag(ctx, tags)
		}},
	}
	for _, c := range refused {
		if err := c.call(); err == nil {
			t.Errorf("%s: err = nil, want an error", c.name)
		}
	}
	meta, err := s.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Stages[store.StageCurrent] != current || meta.Stages[store.StageNext] != v1 || len(meta.Tags) != 0 {
		t.Errorf("refused calls changed state: %+v", meta)
	}
}

// BeginRotation makes the valueless AWSPENDING version RotateSecret makes;
// it reads as missing until the rotation function puts a value under it.
func TestBeginRotation(t *testing.T) {
	ctx := context.Background()
	s := newSecret(t)
	token := storetest.NewVersionID(t)
	if err := s.BeginRotation(token); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetVersion(ctx, token); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetVersion of the valueless version: err = %v, want ErrNotFound", err)
	}
	if _, _, err := s.GetStage(ctx, store.StagePending); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetStage(AWSPENDING) of the valueless version: err = %v, want ErrNotFound", err)
	}
	if err := s.BeginRotation(storetest.NewVersionID(t)); err == nil {
		t.Error("second BeginRotation while one is in progress: err = nil, want an error")
	}
	if err := s.PutVersion(ctx, token, []byte("k2"), []string{store.StagePending}); err != nil {
		t.Fatalf("PutVersion under the rotation token: %v", err)
	}
	if id, v, err := s.GetStage(ctx, store.StagePending); err != nil || id != token || string(v) != "k2" {
		t.Errorf("GetStage(AWSPENDING) = %s, %q, %v; want %s, %q", id, v, err, token, "k2")
	}
}

// Values handed in and out are copies: callers cannot edit a stored version.
func TestValuesAreCopied(t *testing.T) {
	ctx := context.Background()
	s := newSecret(t)
	v := storetest.NewVersionID(t)
	in := []byte("abc")
	if err := s.PutVersion(ctx, v, in, []string{store.StageNext}); err != nil {
		t.Fatal(err)
	}
	in[0] = 'X'
	out, err := s.GetVersion(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	out[1] = 'Y'
	if again, _ := s.GetVersion(ctx, v); string(again) != "abc" {
		t.Errorf("stored value changed to %q", again)
	}
}
