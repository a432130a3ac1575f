package rotation

import (
	"context"
	"errors"
	"testing"
	"time"

	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/memstore"
	"jwks-issuer/pkg/token"
)

// withParameter gives the env's rotator the signing-key parameter.
func withParameter(t *testing.T, e *env) *memstore.Parameter {
	t.Helper()
	p := memstore.NewParameter()
	rot, err := New(e.rot.cfg, e.secret, e.jwks, LocalCustody{}, e.clock.now, quiet(), WithParameter(p))
	if err != nil {
		t.Fatal(err)
	}
	e.rot = rot
	return p
}

// parameterKid is the kid a signer reading the parameter signs with.
func parameterKid(t *testing.T, p *memstore.Parameter) string {
	t.Helper()
	key, err := token.ParameterKeyLoader(p, nil)(context.Background())
	if err != nil {
		t.Fatalf("signer reading the parameter: %v", err)
	}
	return key.Kid
}

func activation(t *testing.T, e *env, kid string) time.Time {
	t.Helper()
	meta, _ := e.secret.Describe(context.Background())
	at, err := time.Parse(time.RFC3339Nano, meta.Tags[lifecycle.TagCurrent+kid])
	if err != nil {
		t.Fatalf("activation tag of %s: %v (tags %v)", kid, err, meta.Tags)
	}
	return at
}

func TestParameterFollowsCurrent(t *testing.T) {
	e := newEnv(t, testConfig())
	p := withParameter(t, e)
	e.mustRotate(t, tokenN(1))
	s := e.state(t).state
	if got := parameterKid(t, p); got != s.Current.Kid {
		t.Fatalf("parameter signs with %s, AWSCURRENT is %s", got, s.Current.Kid)
	}
	value, _ := p.Get(context.Background())
	if string(value) != string(s.Current.SigningOnly().Marshal()) {
		t.Fatalf("parameter holds %s, want AWSCURRENT's key without its history", value)
	}
	e.clock.advance(25 * time.Hour)
	e.mustRotate(t, tokenN(2))
	if got, want := parameterKid(t, p), e.state(t).state.Current.Kid; got != want {
		t.Fatalf("after the second rotation the parameter signs with %s, want %s", got, want)
	}
}

// finishSecret writes the parameter before the activation tag: the old key
// goes on signing until the parameter changes, and its retention must count
// from then.
func TestFinishWritesTheParameterBeforeTheActivationTag(t *testing.T) {
	e := newEnv(t, testConfig())
	p := withParameter(t, e)
	e.mustRotate(t, tokenN(1))
	e.clock.advance(25 * time.Hour)
	var order []string
	p.SetHook(func(op string) error { order = append(order, op); return nil })
	e.secret.SetHook(func(op string) error {
		if op == memstore.OpTag || op == memstore.OpMoveStage {
			order = append(order, op)
		}
		return nil
	})
	if err := e.secret.BeginRotation(tokenN(2)); err != nil {
		t.Fatal(err)
	}
	for _, step := range steps[:3] {
		if err := e.rot.Handle(context.Background(), Event{Step: step, SecretID: "test", ClientRequestToken: tokenN(2)}); err != nil {
			t.Fatal(err)
		}
	}
	order = nil
	if err := e.rot.FinishSecret(context.Background(), tokenN(2)); err != nil {
		t.Fatal(err)
	}
	want := []string{memstore.OpMoveStage, memstore.OpGetParameter, memstore.OpPutParameter, memstore.OpTag}
	if len(order) < len(want) {
		t.Fatalf("finishSecret's calls %v", order)
	}
	for i, op := range want {
		if order[i] != op {
			t.Fatalf("finishSecret's calls %v, want them to start %v", order, want)
		}
	}
}

// Cleanup restores a deleted or overwritten parameter, and a key put back
// where signers read it counts as signing from the repair on.
func TestCleanupRepairsTheParameter(t *testing.T) {
	e := newEnv(t, testConfig())
	p := withParameter(t, e)
	e.mustRotate(t, tokenN(1))
	old := e.state(t).state.Current
	e.clock.advance(25 * time.Hour)
	e.mustRotate(t, tokenN(2))
	cur := e.state(t).state.Current
	ctx := context.Background()
	for _, damage := range []struct {
		name string
		do   func()
	}{
		{"deleted", p.Delete},
		{"overwritten with the retired key", func() { _ = p.Put(ctx, old.SigningOnly().Marshal()) }},
		{"overwritten with garbage", func() { _ = p.Put(ctx, []byte("{}")) }},
	} {
		e.clock.advance(time.Minute)
		damage.do()
		if err := e.rot.Cleanup(ctx); err != nil {
			t.Fatalf("%s: cleanup: %v", damage.name, err)
		}
		if got := parameterKid(t, p); got != cur.Kid {
			t.Fatalf("%s: parameter signs with %s after cleanup, want %s", damage.name, got, cur.Kid)
		}
		if at := activation(t, e, cur.Kid); !at.Equal(e.clock.t) {
			t.Fatalf("%s: activation recorded at %v, want the repair's moment %v", damage.name, at, e.clock.t)
		}
	}
	// An intact parameter changes nothing.
	before := e.fingerprint(t)
	e.clock.advance(time.Minute)
	if err := e.rot.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if after := e.fingerprint(t); after != before {
		t.Fatalf("cleanup with an intact parameter changed state:\n%s\n%s", before, after)
	}
}

// A cleanup that read the secret before a whole rotation ran finds the
// parameter holding what was NEXT in its view, and leaves it alone: it
// must not put the retired key back where signers read it.
func TestStaleCleanupCannotPutARetiredKeyBack(t *testing.T) {
	e := newEnv(t, testConfig())
	p := withParameter(t, e)
	e.mustRotate(t, tokenN(1))
	e.clock.advance(25 * time.Hour)
	raced, writes := false, 0
	var hook func(op string) error
	hook = func(op string) error {
		if op == memstore.OpPutParameter && raced {
			writes++
		}
		if op == memstore.OpGetParameter && !raced {
			raced = true
			p.SetHook(nil)
			e.clock.advance(time.Second)
			if err := e.rotate(tokenN(2)); err != nil {
				return err
			}
			e.clock.advance(time.Second)
			p.SetHook(hook)
		}
		return nil
	}
	p.SetHook(hook)
	// The cleanup reads the secret (the old key current), then the whole
	// rotation runs inside its first parameter read.
	if err := e.rot.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !raced {
		t.Fatal("the rotation did not run inside the cleanup")
	}
	cur := e.state(t).state.Current
	if got := parameterKid(t, p); got != cur.Kid || writes != 0 {
		t.Fatalf("after the race the parameter signs with %s (want %s) and the stale cleanup wrote it %d times (want 0)", got, cur.Kid, writes)
	}
}

// A finishSecret that dies at any call, before or after it runs, is
// finished by the retry with the parameter holding the new key and the
// activation recorded no earlier than the parameter's last write.
func TestParameterThroughADeathAtEveryFinishCall(t *testing.T) {
	for _, after := range []bool{false, true} {
		for n := 1; n < 30; n++ {
			e := newEnv(t, testConfig())
			p := withParameter(t, e)
			e.mustRotate(t, tokenN(1))
			e.clock.advance(25 * time.Hour)
			if err := e.secret.BeginRotation(tokenN(2)); err != nil {
				t.Fatal(err)
			}
			for _, step := range steps[:3] {
				if err := e.rot.Handle(context.Background(), Event{Step: step, SecretID: "test", ClientRequestToken: tokenN(2)}); err != nil {
					t.Fatal(err)
				}
			}
			c := &crashing{n: n, after: after}
			var lastWrite time.Time
			crashy, err := New(e.rot.cfg, crashingSecrets{e.secret, c}, crashingObject{e.jwks, c}, LocalCustody{}, e.clock.now, quiet(),
				WithParameter(crashingParameter{p, c, func() { lastWrite = e.clock.t }}))
			if err != nil {
				t.Fatal(err)
			}
			err = crashy.FinishSecret(context.Background(), tokenN(2))
			if err == nil {
				break // finished before the n-th call: every call has been a death point
			}
			if !errors.Is(err, errDied) {
				t.Fatalf("call %d after=%v: %v", n, after, err)
			}
			e.clock.advance(time.Hour)
			if err := e.rot.FinishSecret(context.Background(), tokenN(2)); err != nil {
				t.Fatalf("call %d after=%v: retry: %v", n, after, err)
			}
			cur := e.state(t).state.Current
			if got := parameterKid(t, p); got != cur.Kid {
				t.Fatalf("call %d after=%v: parameter signs with %s, want %s", n, after, got, cur.Kid)
			}
			if at := activation(t, e, cur.Kid); at.Before(lastWrite) {
				t.Fatalf("call %d after=%v: activation %v before the parameter's write %v", n, after, at, lastWrite)
			}
		}
	}
}

type crashingParameter struct {
	store.Parameter
	c       *crashing
	onWrite func()
}

func (p crashingParameter) Get(ctx context.Context) (v []byte, err error) {
	err = p.c.around(func() error { v, err = p.Parameter.Get(ctx); return err })
	return v, err
}

func (p crashingParameter) Put(ctx context.Context, v []byte) error {
	return p.c.around(func() error {
		err := p.Parameter.Put(ctx, v)
		if err == nil {
			p.onWrite()
		}
		return err
	})
}
