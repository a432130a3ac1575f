// Package sim runs the issuer's own rotation and signing code through years
// of virtual time: scheduled, manual and emergency rotations, hourly
// cleanups, many signers with their own key caches, verifiers caching the
// key set, and faults at every store call. It counts what a user of the
// issuer cares about: tokens wrongly rejected, revoked keys accepted too
// late, and key-set publications that broke an invariant.
package sim

import (
	"container/heap"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/rotation"
	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/memstore"
	"jwks-issuer/pkg/token"
)

// Params shape one simulated run.
type Params struct {
	Seed     uint64
	Duration time.Duration
	Config   lifecycle.Config

	RotationEvery      time.Duration // the rotation schedule
	ManualPerYear      float64       // operator rotate-secret calls
	EmergenciesPerYear float64
	Signers            int
	Verifiers          int
	TokensPerHour      float64 // per signer, between bursts
	ColdStartsPerDay   float64 // per signer
	FaultRate          float64 // per store call of the rotator and the signers
	Interleave         float64 // chance of a concurrent cleanup before a rotator call
	RotateDuring       float64 // chance of a whole rotation before a cleanup call
	DuplicateStep      float64 // chance Secrets Manager delivers a step twice
	ForgedPerYear      float64 // steps sent by hand with a known or made-up version id
	// ParameterStore: signers read the signing-key parameter, which the
	// rotator keeps equal to AWSCURRENT (a third store, with the same
	// faults), instead of the secret.
	ParameterStore bool
	VerifySample   int // check one signature in this many for real
	// Trace, if set, receives a line per rotation event, to debug a seed.
	Trace func(string)
}

// DefaultParams are the deployed defaults with busy, faulty surroundings.
func DefaultParams(seed uint64, duration time.Duration) Params {
	return Params{
		Seed:               seed,
		Duration:           duration,
		Config:             lifecycle.Defaults(),
		RotationEvery:      30 * 24 * time.Hour,
		ManualPerYear:      12,
		EmergenciesPerYear: 2,
		Signers:            4,
		Verifiers:          3,
		TokensPerHour:      2,
		ColdStartsPerDay:   6,
		FaultRate:          0.03,
		Interleave:         0.05,
		RotateDuring:       0.005,
		DuplicateStep:      0.1,
		ForgedPerYear:      24,
		ParameterStore:     seed%2 == 0, // half the seeds in each custody
		VerifySample:       8,
	}
}

// Report counts one or more runs.
type Report struct {
	Issued                  int
	SignErrors              int // refused to sign (no fresh key): an error to the caller, never a bad token
	Verifications           int
	Rotations               int
	Refused                 int
	Emergencies             int
	Faults                  int
	Publications            int
	ParameterWrites         int // signing-key parameter writes (Parameter Store custody)
	Forged                  int // forged steps sent
	ForgedRefused           int // of which refused without a change
	WronglyRejected         int
	RevokedRejected         int // tokens of revoked keys rejected, as intended
	AcceptedAfterRevocation int
	InvariantBreaks         int
	Problems                []string // the first few, for a regression test
}

// Add sums reports.
func (r *Report) Add(o Report) {
	r.Issued += o.Issued
	r.SignErrors += o.SignErrors
	r.Verifications += o.Verifications
	r.Rotations += o.Rotations
	r.Refused += o.Refused
	r.Emergencies += o.Emergencies
	r.Faults += o.Faults
	r.Publications += o.Publications
	r.ParameterWrites += o.ParameterWrites
	r.Forged += o.Forged
	r.ForgedRefused += o.ForgedRefused
	r.WronglyRejected += o.WronglyRejected
	r.RevokedRejected += o.RevokedRejected
	r.AcceptedAfterRevocation += o.AcceptedAfterRevocation
	r.InvariantBreaks += o.InvariantBreaks
	r.Problems = append(r.Problems, o.Problems...)
}

// Violations is the number of outcomes that must be zero.
func (r Report) Violations() int {
	return r.WronglyRejected + r.AcceptedAfterRevocation + r.InvariantBreaks
}

// World is one simulated deployment.
type World struct {
	p      Params
	rng    *rand.Rand
	now    time.Time
	start  time.Time
	queue  events
	seq    int
	report Report

	secret  *memstore.Secrets
	jwks    *memstore.Object
	param   *memstore.Parameter // Parameter Store custody only
	rotator *rotation.Rotator
	cleaner *rotation.Rotator
	forger  *rotation.Rotator // invoked by hand, not by Secrets Manager

	signers   []*signer
	verifiers []*verifier

	inCleanup    bool
	inRotation   int    // depth: a cleanup inside a rotation may nest another attempt
	deferred     string // a rotation to run in the middle of the next cleanup
	retries      map[string]int
	revokedCache map[string]bool

	// What the world knows independently of the code under test.
	jwkOf          map[string]keys.JWK  // kid → public key as first written to the secret
	liveUntil      map[string]time.Time // kid → latest exp + skew allowance of its tokens
	revokedSince   map[string]time.Time // kid → first publication without it after its revocation
	firstPublished map[string]time.Time
	exempt         map[string]bool // keys that may sign before Ga: the first key, emergency keys
}

// Run simulates one seed.
func Run(p Params) Report {
	w := newWorld(p)
	w.run()
	return w.report
}

func newWorld(p Params) *World {
	start := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	w := &World{
		p: p, rng: rand.New(rand.NewPCG(p.Seed, p.Seed^0x9e3779b97f4a7c15)), now: start, start: start,
		secret: memstore.NewSecrets(), jwks: memstore.NewObject(),
		retries: map[string]int{}, jwkOf: map[string]keys.JWK{}, liveUntil: map[string]time.Time{},
		revokedSince: map[string]time.Time{}, firstPublished: map[string]time.Time{}, exempt: map[string]bool{},
	}
	_ = w.secret.PutVersion(context.Background(), w.newToken(), []byte("{}"), []string{store.StageCurrent})
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	observed := observedObject{Objects: w.jwks, w: w}
	secrets := observedSecrets{Secrets: w.secret, w: w}
	if p.ParameterStore {
		w.param = memstore.NewParameter()
	}
	mk := func(f *faults) *rotation.Rotator {
		var opts []rotation.Option
		if w.param != nil {
			opts = append(opts, rotation.WithParameter(faultyParameter{observedParameter{w.param, w}, f}))
		}
		r, err := rotation.New(rotation.Config{Lifecycle: p.Config, Algorithm: keys.ES256, SecretID: "sim"},
			faultySecrets{secrets, f}, faultyObject{observed, f}, rotation.LocalCustody{}, w.clock, quiet, opts...)
		if err != nil {
			panic(err)
		}
		return r
	}
	w.rotator = mk(&faults{w: w, rate: p.FaultRate, interleave: p.Interleave})
	w.cleaner = mk(&faults{w: w, rate: p.FaultRate, rotateDuring: p.RotateDuring})
	w.forger = mk(nil)
	for i := 0; i < p.Signers; i++ {
		s := &signer{w: w, skew: w.skew(), faults: &faults{w: w, rate: p.FaultRate}}
		s.coldStart()
		w.signers = append(w.signers, s)
	}
	for i := 0; i < p.Verifiers; i++ {
		w.verifiers = append(w.verifiers, &verifier{w: w, skew: w.skew()})
	}
	return w
}

func (w *World) clock() time.Time { return w.now }

// skew is a clock offset within ±k/2, so that signer and verifier together
// stay within the allowance k.
func (w *World) skew() time.Duration {
	k := w.p.Config.ClockSkew
	if k == 0 {
		return 0
	}
	return time.Duration(w.rng.Int64N(int64(k))) - k/2
}

func (w *World) trace(format string, args ...any) {
	if w.p.Trace != nil {
		w.p.Trace(fmt.Sprintf("+%s ", w.now.Sub(w.start)) + fmt.Sprintf(format, args...))
	}
}

func (w *World) problem(format string, args ...any) {
	w.trace("PROBLEM "+format, args...)
	if len(w.report.Problems) < 10 {
		w.report.Problems = append(w.report.Problems, fmt.Sprintf("seed %d at +%s: ", w.p.Seed, w.now.Sub(w.start))+fmt.Sprintf(format, args...))
	}
}

func (w *World) newToken() string {
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", w.rng.Uint32(), w.rng.Uint32()&0xffff, w.rng.Uint32()&0xfff, w.rng.Uint32()&0xfff, w.rng.Uint64()&0xffffffffffff)
}

// poisson schedules fn at exponential intervals averaging every.
func (w *World) poisson(every time.Duration, fn func()) {
	if every <= 0 {
		return
	}
	var next func()
	next = func() {
		fn()
		w.after(time.Duration(w.rng.ExpFloat64()*float64(every)), next)
	}
	w.after(time.Duration(w.rng.ExpFloat64()*float64(every)), next)
}

func (w *World) run() {
	year := 365 * 24 * time.Hour
	w.after(0, func() { w.rotate("first") }) // RotateImmediatelyOnUpdate
	var schedule func()
	schedule = func() {
		if w.rng.IntN(2) == 0 {
			// Half the scheduled rotations race the next cleanup: they
			// run between two of its store calls.
			w.deferred = "scheduled"
			w.after(time.Hour, w.cleanup)
		} else {
			w.rotate("scheduled")
		}
		w.after(w.p.RotationEvery, schedule)
	}
	w.after(w.p.RotationEvery, schedule)
	var cleanup func()
	cleanup = func() { w.cleanup(); w.after(time.Hour, cleanup) }
	w.after(time.Hour, cleanup)
	if w.p.ManualPerYear > 0 {
		w.poisson(time.Duration(float64(year)/w.p.ManualPerYear), func() { w.rotate("manual") })
	}
	if w.p.EmergenciesPerYear > 0 {
		w.poisson(time.Duration(float64(year)/w.p.EmergenciesPerYear), func() { w.rotate("emergency") })
	}
	if w.p.ForgedPerYear > 0 {
		w.poisson(time.Duration(float64(year)/w.p.ForgedPerYear), w.forge)
	}
	for _, s := range w.signers {
		if w.p.TokensPerHour > 0 {
			w.poisson(time.Duration(float64(time.Hour)/w.p.TokensPerHour), s.issue)
		}
		if w.p.ColdStartsPerDay > 0 {
			w.poisson(time.Duration(float64(24*time.Hour)/w.p.ColdStartsPerDay), s.coldStart)
		}
	}
	end := w.start.Add(w.p.Duration)
	for w.queue.Len() > 0 {
		ev := heap.Pop(&w.queue).(event)
		if ev.at.After(end) {
			break
		}
		w.now = ev.at
		ev.fn()
	}
}

// burst issues tokens from every signer over the next 2S, where rotation
// bugs would show.
func (w *World) burst() {
	window := 2*w.p.Config.KeyCacheMaxAge + time.Second
	for _, s := range w.signers {
		for range 3 {
			w.after(time.Duration(w.rng.Int64N(int64(window))), s.issue)
		}
	}
}

var steps = []string{"createSecret", "setSecret", "testSecret", "finishSecret"}

// rotate does what rotate-secret or the schedule does.
func (w *World) rotate(kind string) {
	w.trace("rotate %s", kind)
	ctx := context.Background()
	if kind == "emergency" {
		w.report.Emergencies++
		_ = w.secret.Tag(ctx, map[string]string{lifecycle.TagRollover: lifecycle.RolloverEmergency})
		w.secretWritten()
	}
	meta, _ := w.secret.Describe(ctx)
	pending := meta.Stages[store.StagePending]
	if pending != "" && pending != meta.Stages[store.StageCurrent] {
		w.attempt(pending) // "a previous rotation isn't complete": Secrets Manager reattempts it
		return
	}
	tok := w.newToken()
	if err := w.secret.BeginRotation(tok); err != nil {
		w.problem("begin rotation: %v", err)
		return
	}
	w.attempt(tok)
}

// attempt runs the four steps for a token, as Secrets Manager does,
// retrying a failed rotation later.
func (w *World) attempt(tok string) {
	w.inRotation++
	defer func() { w.inRotation-- }()
	ctx := context.Background()
	for _, step := range steps {
		ev := rotation.Event{Step: step, SecretID: "sim", ClientRequestToken: tok}
		err := w.rotator.Handle(ctx, ev)
		if err == nil && w.rng.Float64() < w.p.DuplicateStep {
			err = w.rotator.Handle(ctx, ev)
		}
		w.trace("%s %s: %v %s", step, tok[:8], err, w.describe())
		w.burst()
		if err == nil {
			continue
		}
		var refused *lifecycle.PromotionRefused
		if errors.As(err, &refused) && !errors.Is(err, errInjected) {
			w.report.Refused++
			w.checkNoPendingLeft(tok)
			return
		}
		if !errors.Is(err, errInjected) {
			w.report.InvariantBreaks++
			w.problem("%s failed without an injected fault: %v", step, err)
		}
		w.retries[tok]++
		if w.retries[tok] <= 4 {
			w.after(time.Duration(1+w.rng.IntN(47))*time.Hour, func() { w.retryIfPending(tok) })
		} else {
			// The operator steps in: finish it, or abandon it.
			w.after(time.Duration(1+w.rng.IntN(7))*24*time.Hour, func() {
				if w.rng.IntN(2) == 0 {
					w.retryIfPending(tok)
				} else {
					w.abandon(tok)
				}
			})
		}
		return
	}
	w.report.Rotations++
	meta, _ := w.secret.Describe(ctx)
	if meta.Tags[lifecycle.TagRollover] != "" {
		// The mark was set during a normal rotation: the runbook rotates again.
		w.after(time.Minute, func() { w.rotate("after-emergency-mark") })
	}
}

// forge sends a random step with the id of a random version the secret has
// or had, or a made-up one, as someone allowed to invoke the rotator could.
// Unless the id is the pending version of a rotation in progress (which a
// step cannot tell from Secrets Manager's own), the step must be refused and
// change nothing, or, for the AWSCURRENT version, succeed as already done.
// The invariants are checked as for every publication.
func (w *World) forge() {
	ctx := context.Background()
	w.report.Forged++
	tok := w.newToken()
	if versions := w.secret.Versions(); w.rng.IntN(2) == 0 {
		tok = versions[w.rng.IntN(len(versions))]
	}
	step := steps[w.rng.IntN(len(steps))]
	meta, _ := w.secret.Describe(ctx)
	pending := meta.Stages[store.StagePending] == tok
	before := w.fingerprint()
	err := w.forger.Handle(ctx, rotation.Event{Step: step, SecretID: "sim", ClientRequestToken: tok})
	w.trace("forged %s %.8s: %v", step, tok, err)
	w.secretWritten()
	var refused *rotation.StepRefused
	switch {
	case pending:
		// Indistinguishable from Secrets Manager's own step: only the
		// invariants apply.
	case errors.As(err, &refused):
		if after := w.fingerprint(); after != before {
			w.report.InvariantBreaks++
			w.problem("a refused forged %s changed the secret or the key set", step)
		}
		w.report.ForgedRefused++
	case err == nil && meta.Stages[store.StageCurrent] == tok:
		// The current version: its rotation is done.
	default:
		w.report.InvariantBreaks++
		w.problem("forged %s with %s was not refused: %v", step, tok, err)
	}
}

// fingerprint is everything a step may change.
func (w *World) fingerprint() string {
	ctx := context.Background()
	meta, _ := w.secret.Describe(ctx)
	obj, _ := w.jwks.Get(ctx)
	return fmt.Sprintf("%v %v %v %s", w.secret.Versions(), meta.Stages, meta.Tags, obj.Body)
}

func (w *World) retryIfPending(tok string) {
	meta, _ := w.secret.Describe(context.Background())
	if meta.Stages[store.StagePending] == tok && meta.Stages[store.StageCurrent] != tok {
		w.attempt(tok)
	}
}

// describe summarises the secret for a trace.
func (w *World) describe() string {
	if w.p.Trace == nil {
		return ""
	}
	ctx := context.Background()
	meta, _ := w.secret.Describe(ctx)
	var b strings.Builder
	for _, stage := range []string{store.StageCurrent, store.StagePending, store.StageNext} {
		v := meta.Stages[stage]
		kid := "-"
		if value, err := w.secret.GetVersion(ctx, v); err == nil {
			if rec, err := keys.ParseRecord(value); err == nil {
				kid = rec.Kid
				if len(rec.Revoked) > 0 {
					kid += fmt.Sprintf("(revokes %d)", len(rec.Revoked))
				}
			}
		}
		fmt.Fprintf(&b, " %s=%.8s:%s", stage, v, kid)
	}
	for k, v := range meta.Tags {
		fmt.Fprintf(&b, " %s=%.19s", k, v)
	}
	return b.String()
}

func (w *World) abandon(tok string) {
	w.trace("abandon %s", tok[:8])
	meta, _ := w.secret.Describe(context.Background())
	if meta.Stages[store.StagePending] == tok && meta.Stages[store.StageCurrent] != tok {
		_ = w.secret.MoveStage(context.Background(), store.StagePending, "", tok)
	}
}

func (w *World) checkNoPendingLeft(tok string) {
	meta, _ := w.secret.Describe(context.Background())
	if meta.Stages[store.StagePending] == tok {
		w.report.InvariantBreaks++
		w.problem("a refused rotation left AWSPENDING on %s", tok)
	}
}

func (w *World) cleanup() {
	w.inCleanup = true
	defer func() {
		w.inCleanup = false
		if kind := w.deferred; kind != "" && w.inRotation == 0 {
			w.deferred = ""
			w.rotate(kind)
		}
	}()
	if err := w.cleaner.Cleanup(context.Background()); err != nil && !errors.Is(err, errInjected) && !errors.Is(err, rotation.ErrConflict) {
		w.report.InvariantBreaks++
		w.problem("cleanup failed without an injected fault: %v", err)
	}
}

// concurrentCleanup runs a cleanup in the middle of a rotation step, as a
// second Lambda container would.
func (w *World) concurrentCleanup() {
	if !w.inCleanup {
		w.cleanup()
	}
}

// concurrentRotation runs a rotation in the middle of a cleanup.
func (w *World) concurrentRotation(kind string) {
	if w.inRotation == 0 {
		if kind == w.deferred {
			w.deferred = ""
		}
		w.rotate(kind)
	}
}

// kidOf reads a token's header.
func kidOf(tok string) string {
	h, err := base64.RawURLEncoding.DecodeString(tok[:strings.IndexByte(tok, '.')])
	if err != nil {
		return ""
	}
	var header struct {
		Kid string `json:"kid"`
	}
	_ = json.Unmarshal(h, &header)
	return header.Kid
}

// signer is one Lambda container of the signer function.
type signer struct {
	w      *World
	skew   time.Duration
	faults *faults
	issuer *token.Issuer
}

func (s *signer) now() time.Time { return s.w.now.Add(s.skew) }

func (s *signer) coldStart() {
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	load := token.SecretKeyLoader(faultySecrets{s.w.secret, s.faults}, nil)
	if s.w.param != nil {
		load = token.ParameterKeyLoader(faultyParameter{s.w.param, s.faults}, nil)
	}
	cache := token.NewKeyCache(load, s.w.p.Config.KeyCacheMaxAge, s.now, quiet)
	s.issuer = token.NewIssuer(cache, s.w.p.Config.MaxTokenTTL, s.now)
}

func (s *signer) issue() {
	w := s.w
	ttl := 1 + w.rng.Int64N(int64(w.p.Config.MaxTokenTTL/time.Second))
	payload := fmt.Sprintf(`{"claims":{"sub":"sim"},"ttl":%d,"setIat":true}`, ttl)
	out, err := s.issuer.Invoke(context.Background(), []byte(payload))
	if err != nil {
		w.report.SignErrors++
		return
	}
	w.report.Issued++
	var resp struct{ Token string }
	_ = json.Unmarshal(out, &resp)
	tok := resp.Token
	kid := kidOf(tok)
	exp := s.now().Add(time.Duration(ttl) * time.Second)
	if until := exp.Add(w.p.Config.ClockSkew); until.After(w.liveUntil[kid]) {
		w.liveUntil[kid] = until
	}
	w.checkSigning(kid)
	life := time.Duration(ttl) * time.Second
	v := w.verifiers[w.rng.IntN(len(w.verifiers))]
	w.after(time.Duration(w.rng.Int64N(int64(life))), func() { v.check(tok, kid, exp) })
	if w.rng.IntN(4) == 0 {
		v := w.verifiers[w.rng.IntN(len(w.verifiers))]
		w.after(life-time.Second/2, func() { v.check(tok, kid, exp) })
	}
}

// event queue

type event struct {
	at  time.Time
	seq int
	fn  func()
}

type events []event

func (e events) Len() int { return len(e) }
func (e events) Less(i, j int) bool {
	if !e[i].at.Equal(e[j].at) {
		return e[i].at.Before(e[j].at)
	}
	return e[i].seq < e[j].seq
}
func (e events) Swap(i, j int) { e[i], e[j] = e[j], e[i] }
func (e *events) Push(x any)   { *e = append(*e, x.(event)) }
func (e *events) Pop() any {
	old := *e
	x := old[len(old)-1]
	*e = old[:len(old)-1]
	return x
}

func (w *World) after(d time.Duration, fn func()) {
	w.seq++
	heap.Push(&w.queue, event{at: w.now.Add(d), seq: w.seq, fn: fn})
}
