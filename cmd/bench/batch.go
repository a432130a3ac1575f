package main

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"time"

	"jwks-issuer/internal/perf"
	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/token"
)

// speedup is a batch signed in turn (one worker) against the same batch
// signed by GOMAXPROCS workers, in wall-clock time.
type speedup struct {
	alg              keys.Algorithm
	items, workers   int
	inTurn, parallel []float64 // ms per batch, one sample per round
}

// sampleTime is the least time one sample of a batch speedup takes.
const sampleTime = 250 * time.Millisecond

// measureBatchSpeedup signs a batch of items local-key tokens for each
// algorithm, in turn and with every worker, alternately for rounds rounds.
func measureBatchSpeedup(algs []keys.Algorithm, items, rounds int) ([]speedup, error) {
	ctx := context.Background()
	payload := perf.BatchPayload(items)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var out []speedup
	for _, alg := range algs {
		rec, err := keys.NewRecord(alg, time.Now())
		if err != nil {
			return nil, err
		}
		load := func(context.Context) (*token.Key, error) { return token.KeyFromRecord(rec, nil) }
		issuer := func(workers int) *token.Issuer {
			return token.NewIssuer(token.NewKeyCache(load, time.Hour, time.Now, log), time.Hour, time.Now, token.WithBatchWorkers(workers))
		}
		inTurn, parallel := issuer(1), issuer(0)
		sp := speedup{alg: alg, items: items, workers: min(runtime.GOMAXPROCS(0), items)}
		// Warm: the key cached, the pages touched. A sample is as many
		// batches as take sampleTime in turn, so that a short batch (ES256)
		// is not a handful of scheduler ticks.
		reps := 1
		for _, iss := range []*token.Issuer{parallel, inTurn} {
			start := time.Now()
			if _, err := iss.Invoke(ctx, payload); err != nil {
				return nil, err
			}
			reps = max(1, int(sampleTime/max(time.Since(start), time.Millisecond)))
		}
		for round := range rounds {
			order := []*token.Issuer{inTurn, parallel}
			if round%2 == 1 {
				order = []*token.Issuer{parallel, inTurn}
			}
			for _, iss := range order {
				runtime.GC() // neither run pays for the other's garbage
				start := time.Now()
				for range reps {
					if _, err := iss.Invoke(ctx, payload); err != nil {
						return nil, err
					}
				}
				took := ms(time.Since(start)) / float64(reps)
				if iss == inTurn {
					sp.inTurn = append(sp.inTurn, took)
				} else {
					sp.parallel = append(sp.parallel, took)
				}
			}
		}
		out = append(out, sp)
	}
	return out, nil
}

func (s speedup) ratio() float64 { return median(s.inTurn) / median(s.parallel) }
