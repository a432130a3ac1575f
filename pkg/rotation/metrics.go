package rotation

import (
	"errors"
	"slices"
	"time"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/metrics"
)

// WithMetrics makes the rotator write its metrics to w as EMF records
// (package metrics), dimensioned by the name of the secret secretID
// (SECRET_ID, a name or an ARN):
//
//   - per event, its outcome: RotationStepSucceeded, RotationStepFailed,
//     RotationRefused (the activation guard refused createSecret) or
//     StepRefused (a StepRefused error: the event is no step of a rotation
//     Secrets Manager runs), by Secret and Step and by Secret alone; for a
//     cleanup, CleanupSucceeded (1, or 0 when it failed);
//   - per publish, PublishedKeys, JwksBytes, JwksWrites, PublishConflicts,
//     CurrentKeyAgeSeconds (when known) and NextPublishedSeconds (when
//     there is a NEXT).
func WithMetrics(w *metrics.Writer, secretID string) Option {
	return func(r *Rotator) {
		r.metrics = &rotatorMetrics{w: w, secret: metrics.Dimension{Name: "Secret", Value: metrics.SecretName(secretID)}}
	}
}

// rotatorMetrics writes the rotator's records; a nil one writes nothing.
type rotatorMetrics struct {
	w      *metrics.Writer
	secret metrics.Dimension
}

// The Step dimension of an event that names no known step.
const invalidStep = "invalid"

// outcome records how an event (a rotation step or a cleanup) ended.
func (m *rotatorMetrics) outcome(r *Rotator, ev Event, err error) {
	if m == nil {
		return
	}
	if ev.Action == "cleanup" {
		m.write(r, metrics.Record{Dimensions: []metrics.Dimension{m.secret},
			Metrics: []metrics.Metric{{Name: "CleanupSucceeded", Unit: metrics.Count, Value: b2f(err == nil)}}})
		return
	}
	step := ev.Step
	if ev.Action != "" || !slices.Contains([]string{"createSecret", "setSecret", "testSecret", "finishSecret"}, step) {
		step = invalidStep // a dimension value no caller can choose
	}
	var (
		refused  *StepRefused
		promoted *lifecycle.PromotionRefused
		name     = "RotationStepSucceeded"
	)
	switch {
	case errors.As(err, &refused):
		name = "StepRefused"
	case errors.As(err, &promoted):
		name = "RotationRefused"
	case err != nil:
		name = "RotationStepFailed"
	}
	m.write(r, metrics.Record{
		Dimensions: []metrics.Dimension{m.secret, {Name: "Step", Value: step}},
		Rollup:     true,
		Metrics:    []metrics.Metric{{Name: name, Unit: metrics.Count, Value: 1}},
	})
}

// published records a publish that succeeded: what it published, from the
// state it published, how many times it wrote the key set and how many
// conditional writes it lost.
func (m *rotatorMetrics) published(r *Rotator, st lifecycle.State, set []keys.JWK, body []byte, writes, conflicts int) {
	if m == nil {
		return
	}
	now := r.now()
	ms := []metrics.Metric{
		{Name: "PublishedKeys", Unit: metrics.Count, Value: float64(len(set))},
		{Name: "JwksBytes", Unit: metrics.Bytes, Value: float64(len(body))},
		{Name: "JwksWrites", Unit: metrics.Count, Value: float64(writes)},
		{Name: "PublishConflicts", Unit: metrics.Count, Value: float64(conflicts)},
	}
	if st.Current != nil && !st.CurrentSince.IsZero() {
		ms = append(ms, metrics.Metric{Name: "CurrentKeyAgeSeconds", Unit: metrics.Seconds, Value: since(st.CurrentSince, now)})
	}
	if st.Next != nil {
		if at, ok := st.PublishedAt(st.Next); ok {
			ms = append(ms, metrics.Metric{Name: "NextPublishedSeconds", Unit: metrics.Seconds, Value: since(at, now)})
		} else if slices.ContainsFunc(set, func(k keys.JWK) bool { return k.Kid == st.Next.Kid }) {
			// Published by this very publish, which tags it now.
			ms = append(ms, metrics.Metric{Name: "NextPublishedSeconds", Unit: metrics.Seconds, Value: 0})
		}
	}
	m.write(r, metrics.Record{Dimensions: []metrics.Dimension{m.secret}, Metrics: ms})
}

// conflicted records a publish that gave up after attempts conflicts.
func (m *rotatorMetrics) conflicted(r *Rotator, attempts int) {
	if m == nil {
		return
	}
	m.write(r, metrics.Record{Dimensions: []metrics.Dimension{m.secret},
		Metrics: []metrics.Metric{{Name: "PublishConflicts", Unit: metrics.Count, Value: float64(attempts)}}})
}

// write writes a record; a metric never fails a step, so a refusal (a bug)
// is only logged.
func (m *rotatorMetrics) write(r *Rotator, rec metrics.Record) {
	if err := m.w.Write(rec); err != nil {
		r.log.Warn("metric record not written", "error", err.Error())
	}
}

// since is the seconds from t to now, never negative (clocks of different
// machines wrote the tags).
func since(t, now time.Time) float64 {
	return max(0, now.Sub(t).Seconds())
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
