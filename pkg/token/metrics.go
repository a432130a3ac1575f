package token

import (
	"bytes"
	"context"
	"time"

	"jwks-issuer/pkg/metrics"
)

// KeyRefresh is one read of the signing key by a KeyCache: the first one,
// or the refresh of a cached key.
type KeyRefresh struct {
	// Cached tells whether the cache held a key when it read again.
	Cached bool
	// Age is how long the cached key had been held, since it was fetched
	// (when Cached).
	Age time.Duration
	// Err is why the read failed; nil when it succeeded.
	Err error
}

// Handler is a Lambda handler, as lambda.Start takes it.
type Handler interface {
	Invoke(ctx context.Context, payload []byte) ([]byte, error)
}

// SignerMetrics writes the signer's metrics as EMF records (package
// metrics), dimensioned by the secret's name (Secret):
//
//   - per invocation, one of TokensIssued (the tokens of the answer: 1, or
//     a batch's size), RequestRejected (1: a RequestError) or IssuerError
//     (1: a KeyUnavailableError or a SigningError);
//   - per read of the signing key, KeyRefreshFailed (1 when the read
//     failed, else 0) and, when the cache held a key, SigningKeyAgeSeconds
//     (how long it had been held).
type SignerMetrics struct {
	// The records, rendered once: the hot path appends a timestamp and a
	// value.
	issued, rejected, failed *metrics.Prepared
	keyRead, keyRefresh      *metrics.Prepared
}

// NewSignerMetrics writes the metrics of the signer of secretID
// (SECRET_ID, a name or an ARN) to w.
func NewSignerMetrics(w *metrics.Writer, secretID string) *SignerMetrics {
	dims := []metrics.Dimension{{Name: "Secret", Value: metrics.SecretName(secretID)}}
	prepare := func(ms ...metrics.Metric) *metrics.Prepared {
		// The names are constants and the secret's name is 1 to 512
		// characters of [A-Za-z0-9/_+=.@-]: a refusal is a bug the tests
		// catch, and leaves that record unwritten.
		p, _ := w.Prepare(metrics.Record{Dimensions: dims, Metrics: ms})
		return p
	}
	failed := metrics.Metric{Name: "KeyRefreshFailed", Unit: metrics.Count}
	return &SignerMetrics{
		issued:     prepare(metrics.Metric{Name: "TokensIssued", Unit: metrics.Count}),
		rejected:   prepare(metrics.Metric{Name: "RequestRejected", Unit: metrics.Count}),
		failed:     prepare(metrics.Metric{Name: "IssuerError", Unit: metrics.Count}),
		keyRead:    prepare(failed),
		keyRefresh: prepare(failed, metrics.Metric{Name: "SigningKeyAgeSeconds", Unit: metrics.Seconds}),
	}
}

// ObserveKeys records every read of c's key. Call it before c is used.
func (m *SignerMetrics) ObserveKeys(c *KeyCache) { c.observe = m.keyReadDone }

func (m *SignerMetrics) keyReadDone(r KeyRefresh) {
	var failed float64
	if r.Err != nil {
		failed = 1
	}
	if r.Cached {
		_ = m.keyRefresh.Write(failed, r.Age.Seconds())
		return
	}
	_ = m.keyRead.Write(failed)
}

// Wrap returns h writing one record per invocation. The answer and the
// error are h's, untouched: a caller sees the same errorType.
func (m *SignerMetrics) Wrap(h Handler) Handler { return &metered{next: h, m: m} }

type metered struct {
	next Handler
	m    *SignerMetrics
}

func (h *metered) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	out, err := h.next.Invoke(ctx, payload)
	switch {
	case err == nil:
		_ = h.m.issued.Write(float64(issued(out)))
	case IsRequestError(err):
		_ = h.m.rejected.Write(1)
	default:
		_ = h.m.failed.Write(1)
	}
	return out, err
}

// issued counts the tokens of an answer: {"token":"..."} holds one,
// {"tokens":["...",...]} one more than it has commas (a token has none).
func issued(out []byte) int {
	const batch = `{"tokens":[`
	if !bytes.HasPrefix(out, []byte(batch)) {
		return 1
	}
	if bytes.HasPrefix(out[len(batch):], []byte("]")) {
		return 0
	}
	return bytes.Count(out, []byte(",")) + 1
}
