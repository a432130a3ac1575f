package token

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"jwks-issuer/pkg/token/internal/request"
)

// batchReserve is kept back from the invocation's deadline to write the
// answer: a batch is refused, or stops signing, so as to answer by then.
const batchReserve = 100 * time.Millisecond

// invokeBatch validates every item first (a bad item fails the call before
// anything is signed), then signs them all with one key. The claims and
// signing inputs are assembled in order, in this goroutine; the signatures
// are made by up to GOMAXPROCS workers when the key is local and up to
// MaxInFlight when it is a round trip (RemoteSigner); the answer is
// assembled in order. Only the signatures are made concurrently, so the
// answer does not depend on the scheduling: every token is what signing the
// items in turn would give, but for the randomness of ECDSA signatures.
//
// When ctx has a deadline (a Lambda invocation's), a batch the cost model
// says cannot be signed in time is refused before any work (RequestError),
// and signing stops once the deadline is near or the rate so far shows the
// rest would miss it (SigningError): either way the caller gets an answer
// that says how many items to send at most, instead of a timeout.
func (i *Issuer) invokeBatch(ctx context.Context, reqs []request.Request) ([]byte, error) {
	now := i.now().Unix()
	exps := make([]request.Expiry, len(reqs))
	for n := range reqs {
		var err error
		if exps[n], err = reqs[n].Expiry(now, i.limit()); err != nil {
			return nil, err
		}
	}
	key, err := i.key(ctx)
	if err != nil {
		return nil, err
	}
	b := &batch{issuer: i, key: key, n: len(reqs), workers: i.batchWorkers(key, len(reqs))}
	b.cost, b.measured = i.costs.perToken(key, b.workers, i.memoryMB)
	if deadline, ok := ctx.Deadline(); ok {
		b.stopAt, b.hasDeadline = deadline.Add(-batchReserve), true
		if err := b.refuseIfTooSlow(); err != nil {
			return nil, err
		}
	}
	inputs, err := i.signingInputs(key, reqs, exps, now)
	if err != nil {
		return nil, err
	}
	sigs, err := b.sign(ctx, inputs)
	if err != nil {
		return nil, err
	}
	size := len(`{"tokens":[]}`)
	for n := range inputs {
		size += len(inputs[n]) + 1 + base64.RawURLEncoding.EncodedLen(len(sigs[n])) + len(`"",`)
	}
	out := make([]byte, 0, size)
	out = append(out, `{"tokens":[`...)
	for n := range inputs {
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, '"')
		out = append(out, inputs[n]...)
		out = append(out, '.')
		out = base64.RawURLEncoding.AppendEncode(out, sigs[n])
		out = append(out, '"')
	}
	return append(out, "]}"...), nil
}

// batchWorkers is how many signatures of an n-item batch are made at once:
// up to GOMAXPROCS for a local key (the vCPUs Lambda gives the function:
// 2 up to 3,008 MB, up to 6 above), up to MaxInFlight for a remote one.
func (i *Issuer) batchWorkers(key *Key, n int) int {
	workers := i.maxWorkers
	if _, remote := key.signer.(RemoteSigner); remote {
		workers = key.maxInFlight()
	} else if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return max(1, min(workers, n))
}

// signingInputs assembles header.claims of every item, in order, in one
// buffer: claims that read the clock or the random source (iat, jti) read
// them in request order, whatever the signing's scheduling.
func (i *Issuer) signingInputs(key *Key, reqs []request.Request, exps []request.Expiry, now int64) ([][]byte, error) {
	enc := base64.RawURLEncoding
	size := 0
	for n := range reqs {
		size += len(key.prefix) + enc.EncodedLen(len(reqs[n].Claims())+i.added)
	}
	arena := make([]byte, 0, size)
	inputs := make([][]byte, len(reqs))
	var scratch [512]byte
	for n := range reqs {
		body, err := i.appendClaims(scratch[:0], &reqs[n], now, exps[n])
		if err != nil {
			return nil, &SigningError{fmt.Errorf("batch[%d]: %w", n, err)}
		}
		start := len(arena)
		arena = append(arena, key.prefix...)
		arena = enc.AppendEncode(arena, body)
		// Capped: a signer cannot write into the next item's input.
		inputs[n] = arena[start:len(arena):len(arena)]
	}
	return inputs, nil
}

// batch is one batch's signing.
type batch struct {
	issuer  *Issuer
	key     *Key
	n       int
	workers int
	// cost is the expected time of one signature on one worker; measured
	// says whether it comes from this environment's batches or is the
	// default.
	cost     time.Duration
	measured bool
	// stopAt is the deadline less batchReserve, when hasDeadline.
	stopAt      time.Time
	hasDeadline bool

	start time.Time
	next  atomic.Int64 // the next item to sign
	done  atomic.Int64 // items signed
	stop  atomic.Bool

	mu       sync.Mutex
	failed   int   // the lowest item whose signature failed; -1: none
	failure  error // its error
	deadline error // why signing stopped for the deadline, if it did
}

// estimate is the time the whole batch is expected to take.
func (b *batch) estimate() time.Duration {
	return time.Duration((b.n+b.workers-1)/b.workers) * b.cost
}

// fits is the most items the cost model expects to sign in left.
func (b *batch) fits(left time.Duration) int {
	if left <= 0 || b.cost <= 0 {
		return 0
	}
	return int(left/b.cost) * b.workers
}

func (b *batch) costSource() string {
	if b.measured {
		return "measured on this environment's recent batches"
	}
	return "the conservative default until this environment has signed a batch"
}

// refuseIfTooSlow refuses, before any work, a batch expected to end past
// the deadline. It is a RequestError: the same batch fails the same way,
// and the caller's remedy is to split it.
func (b *batch) refuseIfTooSlow() error {
	est, left := b.estimate(), b.stopAt.Sub(b.issuer.now())
	if est <= left {
		return nil
	}
	return request.Refuse("batch of %d %s tokens needs about %s to sign (%s per token on %s, %s), "+
		"and the invocation has %s left before its deadline: send at most %d per invocation",
		b.n, b.key.Alg, round(est), round(b.cost), onWorkers(b.workers), b.costSource(), round(max(left, 0)), b.fits(left))
}

func onWorkers(n int) string {
	if n == 1 {
		return "1 worker"
	}
	return fmt.Sprintf("each of %d workers", n)
}

// sign makes every signature, with b.workers at a time, and records what
// one took. The first failure stops the rest (remote calls in flight are
// cancelled) and fails the batch naming the lowest item that failed.
func (b *batch) sign(ctx context.Context, inputs [][]byte) ([][]byte, error) {
	sigs := make([][]byte, len(inputs))
	b.failed = -1
	b.start = b.issuer.now()
	signCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := func() {
		for !b.stop.Load() {
			idx := int(b.next.Add(1) - 1)
			if idx >= len(inputs) || ctx.Err() != nil {
				return
			}
			if b.hasDeadline && b.tooLate() {
				return
			}
			sig, err := b.key.signer.Sign(signCtx, inputs[idx])
			if err != nil {
				if errors.Is(err, context.Canceled) && signCtx.Err() != nil && ctx.Err() == nil {
					return // cancelled for another item's failure
				}
				b.fail(idx, err)
				cancel()
				return
			}
			sigs[idx] = sig
			b.done.Add(1)
		}
	}
	if b.workers == 1 {
		work()
	} else {
		var wg sync.WaitGroup
		for range b.workers {
			wg.Go(work)
		}
		wg.Wait()
	}
	b.issuer.costs.record(b.key, b.workers, b.issuer.now().Sub(b.start), int(b.done.Load()))
	switch {
	case b.failure != nil:
		return nil, &SigningError{fmt.Errorf("batch[%d]: sign with key %s: %w", b.failed, b.key.Kid, b.failure)}
	case b.deadline != nil:
		return nil, &SigningError{b.deadline}
	}
	for idx, sig := range sigs {
		if sig == nil { // the caller's context ended before it was signed
			return nil, &SigningError{fmt.Errorf("batch[%d]: not signed: %w", idx, context.Cause(ctx))}
		}
	}
	return sigs, nil
}

func (b *batch) fail(idx int, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failure == nil || idx < b.failed {
		b.failed, b.failure = idx, err
	}
	b.stop.Store(true)
}

// tooLate stops the batch when the deadline is near, or when the rate so
// far (once a tenth of the batch is signed) says the rest would end past it.
func (b *batch) tooLate() bool {
	now := b.issuer.now()
	done := int(b.done.Load())
	left := b.stopAt.Sub(now)
	var why error
	switch {
	case left <= 0:
		why = fmt.Errorf("batch stopped after %d of %d tokens: the invocation's deadline is %s away: send at most %d per invocation",
			done, b.n, round(max(left+batchReserve, 0)), done)
	case done > 0 && done >= max(b.workers, b.n/10):
		perToken := now.Sub(b.start) / time.Duration(done)
		need := perToken * time.Duration(b.n-done)
		if need <= left {
			return false
		}
		fit := done + int(left/max(perToken, 1))
		why = fmt.Errorf("batch stopped after %d of %d tokens: at %s a token so far, the other %d need about %s, "+
			"and the invocation's deadline is %s away: send at most %d per invocation",
			done, b.n, round(perToken), b.n-done, round(need), round(left+batchReserve), fit)
	default:
		return false
	}
	b.mu.Lock()
	if b.deadline == nil {
		b.deadline = why
	}
	b.mu.Unlock()
	b.stop.Store(true)
	return true
}

// round shortens a duration for a message.
func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(100 * time.Nanosecond)
}
