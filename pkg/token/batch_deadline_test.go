package token

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"jwks-issuer/pkg/keys"
)

// counter is a deterministic random source: 0, 1, 2, ...
type counter struct{ n byte }

func (c *counter) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = c.n
		c.n++
	}
	return len(p), nil
}

// A batch signed by several workers is the batch signed in turn: the same
// tokens in the same order, byte for byte but for the signature, which is
// randomised for ECDSA and the same for RSA (PKCS #1 v1.5 is
// deterministic), because the claims (iat, jti) are assembled in request
// order before any signing.
func TestParallelBatchIsTheSequentialBatch(t *testing.T) {
	var items []string
	for i := range 64 {
		items = append(items, fmt.Sprintf(`{"claims":{"sub":"user-%d"},"ttl":%d,"setIat":true,"setJti":%v}`, i, 1+i%30, i%3 != 0))
	}
	payload := batchOf(items...)
	for _, alg := range keys.Algorithms {
		t.Run(string(alg), func(t *testing.T) {
			rec, err := keys.NewRecord(alg, now0)
			if err != nil {
				t.Fatal(err)
			}
			issue := func(workers int) []string {
				c := &clock{now0}
				load := func(context.Context) (*Key, error) { return KeyFromRecord(rec, nil) }
				iss := NewIssuer(NewKeyCache(load, time.Minute, c.Now, quietLog()), time.Hour, c.Now, WithBatchWorkers(workers))
				iss.random = &counter{}
				toks, err := invokeBatch(t, iss, payload)
				if err != nil {
					t.Fatal(err)
				}
				return toks
			}
			inTurn := issue(1)
			for _, workers := range []int{2, 4, 16} {
				parallel := issue(workers)
				if len(parallel) != len(inTurn) {
					t.Fatalf("%d workers: %d tokens, in turn %d", workers, len(parallel), len(inTurn))
				}
				for n := range inTurn {
					a, b := inTurn[n], parallel[n]
					if a[:strings.LastIndexByte(a, '.')] != b[:strings.LastIndexByte(b, '.')] {
						t.Fatalf("%d workers, token %d:\n%s\nin turn:\n%s", workers, n, b, a)
					}
					if alg == keys.RS256 && a != b {
						t.Fatalf("%d workers, token %d: RS256 signatures differ", workers, n)
					}
					verify(t, b, rec, now0)
				}
			}
		})
	}
}

// deadlineCtx has a deadline and never ends: the issuer compares the
// deadline with its own (injected) clock, and the test runs on no timer.
type deadlineCtx struct {
	context.Context
	at time.Time
}

func (c deadlineCtx) Deadline() (time.Time, bool) { return c.at, true }

func withDeadline(at time.Time) context.Context { return deadlineCtx{context.Background(), at} }

// advancingSigner moves the test's clock on by step for every signature.
type advancingSigner struct {
	Signer
	clock *clock
	step  time.Duration
	calls int
}

func (s *advancingSigner) Sign(ctx context.Context, input []byte) ([]byte, error) {
	s.calls++
	s.clock.t = s.clock.t.Add(s.step)
	return s.Signer.Sign(ctx, input)
}

// slowIssuer signs in turn (one worker: the clock is not shared between
// goroutines) with a key whose every signature takes step on clock.
func slowIssuer(t *testing.T, alg keys.Algorithm, step time.Duration, opts ...Option) (*Issuer, *advancingSigner, *clock) {
	t.Helper()
	rec, err := keys.NewRecord(alg, now0)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{now0}
	s := &advancingSigner{clock: c, step: step}
	load := func(context.Context) (*Key, error) {
		k, err := KeyFromRecord(rec, nil)
		if err != nil {
			return nil, err
		}
		s.Signer = k.signer
		return NewKey(k.Kid, k.Alg, s), nil
	}
	opts = append([]Option{WithBatchWorkers(1)}, opts...)
	return NewIssuer(NewKeyCache(load, time.Hour, c.Now, quietLog()), time.Hour, c.Now, opts...), s, c
}

func manyItems(n int) []byte {
	items := make([]string, n)
	for i := range items {
		items[i] = `{"claims":{"sub":"u"}}`
	}
	return []byte(batchOf(items...))
}

// A batch the cost model says cannot be signed before the deadline is
// refused before anything is signed, with a RequestError naming the
// estimate, the time left and the most that fits. Before any batch has
// been measured, the estimate is the default, stretched by the CPU time
// the function's memory buys: RS256's 2.6 ms on a whole vCPU is 4.6 ms at
// 1,000 MB (1,769 MB is one vCPU).
func TestBatchRefusedUpFront(t *testing.T) {
	iss, s, _ := slowIssuer(t, keys.RS256, 0, WithLambdaMemory(1000))
	_, err := iss.Invoke(withDeadline(now0.Add(2*time.Second)), manyItems(1000))
	want := "invalid request: batch of 1000 RS256 tokens needs about 4.6s to sign (4.6ms per token on 1 worker, " +
		"the conservative default until this environment has signed a batch), and the invocation has 1.9s left " +
		"before its deadline: send at most 413 per invocation"
	if !IsRequestError(err) || err.Error() != want {
		t.Fatalf("error\n%v\nwant the RequestError\n%s", err, want)
	}
	if s.calls != 0 {
		t.Fatalf("%d signatures made for a refused batch", s.calls)
	}
	// What fits is signed, and without a deadline anything is.
	if _, err := iss.Invoke(withDeadline(now0.Add(2*time.Second)), manyItems(413)); err != nil {
		t.Fatal(err)
	}
	if _, err := iss.Invoke(context.Background(), manyItems(1000)); err != nil {
		t.Fatal(err)
	}
}

// The refusal of the README's example: 1,000 RS256 tokens at 256 MB, 2
// workers, invoked with the 10 s timeout.
func TestBatchRefusalExample(t *testing.T) {
	iss, _, _ := slowIssuer(t, keys.RS256, 0, WithLambdaMemory(256), WithBatchWorkers(2))
	_, err := iss.Invoke(withDeadline(now0.Add(10*time.Second)), manyItems(1000))
	want := "invalid request: batch of 1000 RS256 tokens needs about 18s to sign (35.93ms per token on each of 2 workers, " +
		"the conservative default until this environment has signed a batch), and the invocation has 9.9s left " +
		"before its deadline: send at most 550 per invocation"
	if err == nil || err.Error() != want {
		t.Fatalf("error\n%v\nwant\n%s", err, want)
	}
}

// Two workers on a share of one vCPU each take twice as long per token:
// the default cost grows with the workers the memory cannot feed.
func TestDefaultBatchCost(t *testing.T) {
	key := NewKey("k", keys.ES256, &LocalSigner{alg: keys.ES256})
	var c costs
	for _, tc := range []struct {
		workers, memoryMB int
		want              time.Duration
	}{
		{1, 0, 90 * time.Microsecond},     // not on Lambda: a whole vCPU per worker
		{2, 0, 90 * time.Microsecond},     //
		{1, 1769, 90 * time.Microsecond},  // one vCPU
		{2, 1769, 180 * time.Microsecond}, // two workers on one vCPU's time
		{2, 3538, 90 * time.Microsecond},  // two vCPUs' time
		{4, 3538, 180 * time.Microsecond}, // four workers on two vCPUs' time
	} {
		got, measured := c.perToken(key, tc.workers, tc.memoryMB)
		if got != tc.want || measured {
			t.Errorf("%d workers at %d MB: %s (measured %v), want %s", tc.workers, tc.memoryMB, got, measured, tc.want)
		}
	}
	remote := NewKey("k", keys.ES256, remoteSigner{&countingSigner{remote: 4}})
	if got, _ := c.perToken(remote, 4, 128); got != defaultRemote {
		t.Errorf("remote default %s", got)
	}
}

// Every batch signed updates the cost of its kind of key: the first sample
// replaces the default, later ones move the average by costWeight.
func TestBatchCostIsMeasured(t *testing.T) {
	iss, _, _ := slowIssuer(t, keys.ES256, 2*time.Millisecond)
	if _, err := iss.Invoke(context.Background(), manyItems(10)); err != nil {
		t.Fatal(err)
	}
	k, err := iss.key(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, measured := iss.costs.perToken(k, 1, 0); got != 2*time.Millisecond || !measured {
		t.Fatalf("cost %s (measured %v) after a batch at 2ms a token", got, measured)
	}
	iss.costs.record(k, 2, 120*time.Millisecond, 20) // 12ms a token on each of 2 workers
	if got, _ := iss.costs.perToken(k, 1, 0); got != 5*time.Millisecond {
		t.Fatalf("cost %s, want 2ms + 0.3 × (12ms - 2ms)", got)
	}
	// Another algorithm, or a remote key, keeps its own.
	other := NewKey("k", keys.ES384, &LocalSigner{alg: keys.ES384})
	if _, measured := iss.costs.perToken(other, 1, 0); measured {
		t.Fatal("ES384 inherited ES256's cost")
	}
}

// A batch slower than its estimate stops once a tenth of it is signed and
// the rate so far says the rest would end past the deadline: a
// SigningError that says how far it got and how many would fit. The
// measured rate then refuses the same batch up front.
func TestBatchStopsWhenItFallsBehind(t *testing.T) {
	iss, s, _ := slowIssuer(t, keys.ES256, 50*time.Millisecond)
	_, err := iss.Invoke(withDeadline(now0.Add(time.Second)), manyItems(100))
	var se *SigningError
	want := "signing failed: batch stopped after 10 of 100 tokens: at 50ms a token so far, the other 90 need about 4.5s, " +
		"and the invocation's deadline is 500ms away: send at most 18 per invocation"
	if !errors.As(err, &se) || err.Error() != want {
		t.Fatalf("error\n%v\nwant the SigningError\n%s", err, want)
	}
	if s.calls != 10 {
		t.Fatalf("%d signatures, want 10", s.calls)
	}
	_, err = iss.Invoke(withDeadline(now0.Add(10*time.Second)), manyItems(1000))
	if !IsRequestError(err) || !strings.Contains(err.Error(), "needs about 50s to sign (50ms per token on 1 worker, "+
		"measured on this environment's recent batches), and the invocation has 9.4s left before its deadline: send at most 188 per invocation") {
		t.Fatalf("after measuring 50ms a token: %v", err)
	}
}

// A batch that reaches the deadline stops there, before the
// projection has enough to go on.
func TestBatchStopsAtTheDeadline(t *testing.T) {
	iss, s, _ := slowIssuer(t, keys.ES256, time.Second)
	_, err := iss.Invoke(withDeadline(now0.Add(time.Second)), manyItems(100))
	var se *SigningError
	want := "signing failed: batch stopped after 1 of 100 tokens: the invocation's deadline is 0s away: send at most 1 per invocation"
	if !errors.As(err, &se) || err.Error() != want || s.calls != 1 {
		t.Fatalf("error %v after %d signatures, want\n%s", err, s.calls, want)
	}
}
