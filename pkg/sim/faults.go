package sim

import (
	"context"
	"errors"
	"fmt"

	"jwks-issuer/pkg/store"
)

// errInjected is a store call that failed, or a process that died, on purpose.
var errInjected = errors.New("injected fault")

// faults decides, call by call, what goes wrong for one actor.
type faults struct {
	w *World
	// rate is the chance that a call fails before it runs; writes also die
	// after running (the response is lost) at half that rate.
	rate float64
	// interleave is the chance that a concurrent cleanup runs just before a
	// call: the interleavings of two Lambda containers, made deterministic.
	interleave float64
	// rotateDuring is the chance that a whole rotation runs just before a
	// call: a cleanup that read the state before a rotation writes after it.
	rotateDuring float64
}

func (f *faults) before(op string) error {
	if f == nil {
		return nil
	}
	if f.interleave > 0 && f.w.rng.Float64() < f.interleave {
		f.w.concurrentCleanup()
	}
	if f.rotateDuring > 0 && f.w.rng.Float64() < f.rotateDuring {
		f.w.concurrentRotation("manual")
	}
	if f.w.deferred != "" && f.rotateDuring > 0 && f.w.rng.IntN(4) == 0 {
		f.w.concurrentRotation(f.w.deferred)
	}
	if f.rate > 0 && f.w.rng.Float64() < f.rate {
		f.w.report.Faults++
		return fmt.Errorf("%s: %w (before)", op, errInjected)
	}
	return nil
}

func (f *faults) after(op string, err error) error {
	if f == nil || err != nil || f.rate == 0 {
		return err
	}
	if f.w.rng.Float64() < f.rate/2 {
		f.w.report.Faults++
		return fmt.Errorf("%s: %w (after the write)", op, errInjected)
	}
	return nil
}

// faultySecrets is a store.Secrets whose calls fail as f decides.
type faultySecrets struct {
	inner store.Secrets
	f     *faults
}

func (s faultySecrets) Describe(ctx context.Context) (store.SecretMeta, error) {
	if err := s.f.before("Describe"); err != nil {
		return store.SecretMeta{}, err
	}
	return s.inner.Describe(ctx)
}

func (s faultySecrets) GetVersion(ctx context.Context, id string) ([]byte, error) {
	if err := s.f.before("GetVersion"); err != nil {
		return nil, err
	}
	return s.inner.GetVersion(ctx, id)
}

func (s faultySecrets) GetStage(ctx context.Context, stage string) (string, []byte, error) {
	if err := s.f.before("GetStage"); err != nil {
		return "", nil, err
	}
	return s.inner.GetStage(ctx, stage)
}

func (s faultySecrets) PutVersion(ctx context.Context, id string, value []byte, stages []string) error {
	if err := s.f.before("PutVersion"); err != nil {
		return err
	}
	return s.f.after("PutVersion", s.inner.PutVersion(ctx, id, value, stages))
}

func (s faultySecrets) MoveStage(ctx context.Context, stage, to, from string) error {
	if err := s.f.before("MoveStage"); err != nil {
		return err
	}
	return s.f.after("MoveStage", s.inner.MoveStage(ctx, stage, to, from))
}

func (s faultySecrets) Tag(ctx context.Context, tags map[string]string) error {
	if err := s.f.before("Tag"); err != nil {
		return err
	}
	return s.f.after("Tag", s.inner.Tag(ctx, tags))
}

func (s faultySecrets) Untag(ctx context.Context, keys []string) error {
	if err := s.f.before("Untag"); err != nil {
		return err
	}
	return s.f.after("Untag", s.inner.Untag(ctx, keys))
}

// faultyObject is a store.Objects whose calls fail as f decides.
type faultyObject struct {
	inner store.Objects
	f     *faults
}

func (o faultyObject) Get(ctx context.Context) (store.Object, error) {
	if err := o.f.before("Get"); err != nil {
		return store.Object{}, err
	}
	return o.inner.Get(ctx)
}

func (o faultyObject) Put(ctx context.Context, body []byte, contentType, cacheControl string, cond store.PutCondition) (string, error) {
	if err := o.f.before("Put"); err != nil {
		return "", err
	}
	etag, err := o.inner.Put(ctx, body, contentType, cacheControl, cond)
	return etag, o.f.after("Put", err)
}

// faultyParameter is a store.Parameter whose calls fail as f decides.
type faultyParameter struct {
	inner store.Parameter
	f     *faults
}

func (p faultyParameter) Get(ctx context.Context) ([]byte, error) {
	if err := p.f.before("GetParameter"); err != nil {
		return nil, err
	}
	return p.inner.Get(ctx)
}

func (p faultyParameter) Put(ctx context.Context, value []byte) error {
	if err := p.f.before("PutParameter"); err != nil {
		return err
	}
	return p.f.after("PutParameter", p.inner.Put(ctx, value))
}
