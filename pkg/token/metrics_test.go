package token_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"jwks-issuer/internal/perf"
	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/metrics"
	"jwks-issuer/pkg/metrics/emftest"
	"jwks-issuer/pkg/token"
)

const secretARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:jwks-issuer-keys-Ab12Cd"

var mt0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// loader serves a key, or fails while failing is set.
type loader struct {
	rec     keys.Record
	failing bool
}

func (l *loader) load(context.Context) (*token.Key, error) {
	if l.failing {
		return nil, errors.New("GetSecretValue: throttled")
	}
	return token.KeyFromRecord(l.rec, nil)
}

type signerFixture struct {
	out     *bytes.Buffer
	clock   *fakeClock
	loader  *loader
	handler token.Handler
}

func newSignerFixture(t *testing.T) *signerFixture {
	t.Helper()
	rec, err := keys.NewRecord(keys.ES256, mt0)
	if err != nil {
		t.Fatal(err)
	}
	f := &signerFixture{out: &bytes.Buffer{}, clock: &fakeClock{t: mt0}, loader: &loader{rec: rec}}
	m := token.NewSignerMetrics(metrics.New(f.out, f.clock.Now), secretARN)
	cache := token.NewKeyCache(f.loader.load, time.Minute, f.clock.Now, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	m.ObserveKeys(cache)
	f.handler = m.Wrap(token.NewIssuer(cache, time.Hour, f.clock.Now))
	return f
}

// data returns the data points written since the last call, each checked
// against the EMF specification.
func (f *signerFixture) data(t *testing.T) []emftest.Datum {
	t.Helper()
	recs, errs := emftest.Scan(f.out.String(), f.clock.Now())
	for _, err := range errs {
		t.Error(err)
	}
	f.out.Reset()
	var out []emftest.Datum
	for _, r := range recs {
		out = append(out, r.Data()...)
	}
	for _, d := range out {
		if d.Namespace != "JwksIssuer" || d.DimensionNames() != "Secret" || d.Dimensions["Secret"] != "jwks-issuer-keys" {
			t.Errorf("datum %+v: want namespace JwksIssuer and Secret=jwks-issuer-keys alone", d)
		}
	}
	return out
}

// summary writes data points as NAME=VALUE UNIT, in order.
func summary(data []emftest.Datum) string {
	var b []string
	for _, d := range data {
		var vs []string
		for _, v := range d.Values {
			vs = append(vs, strconv.FormatFloat(v, 'f', -1, 64))
		}
		b = append(b, d.Name+"="+strings.Join(vs, ",")+" "+d.Unit)
	}
	return strings.Join(b, "; ")
}

// Each invocation writes one record saying what it did, and the key cache
// one per read of the key; the answers and errors are the issuer's.
func TestSignerMetrics(t *testing.T) {
	f := newSignerFixture(t)
	ctx := context.Background()

	if _, err := f.handler.Invoke(ctx, []byte(`{"claims":{"sub":"u1"},"ttl":30}`)); err != nil {
		t.Fatal(err)
	}
	if got, want := summary(f.data(t)), "KeyRefreshFailed=0 Count; TokensIssued=1 Count"; got != want {
		t.Errorf("first token: %s, want %s", got, want)
	}

	out, err := f.handler.Invoke(ctx, []byte(`{"batch":[{"claims":{}},{"claims":{"a":","}},{"claims":{}}]}`))
	if err != nil || strings.Count(string(out), `"ey`) != 3 {
		t.Fatalf("batch: %s %v", out, err)
	}
	if got, want := summary(f.data(t)), "TokensIssued=3 Count"; got != want {
		t.Errorf("batch of 3: %s, want %s", got, want)
	}

	_, err = f.handler.Invoke(ctx, []byte(`{"claims":{},"ttl":7200}`))
	var re *token.RequestError
	if !errors.As(err, &re) {
		t.Fatalf("a ttl above T: %v, want the issuer's RequestError", err)
	}
	if got, want := summary(f.data(t)), "RequestRejected=1 Count"; got != want {
		t.Errorf("bad request: %s, want %s", got, want)
	}

	// After S/2 the cache refreshes: the age of the key it held.
	f.clock.Add(40 * time.Second)
	if _, err := f.handler.Invoke(ctx, []byte(`{"claims":{}}`)); err != nil {
		t.Fatal(err)
	}
	if got, want := summary(f.data(t)), "KeyRefreshFailed=0 Count; SigningKeyAgeSeconds=40 Seconds; TokensIssued=1 Count"; got != want {
		t.Errorf("refresh: %s, want %s", got, want)
	}

	// A failed refresh inside S signs on with the cached key; past S the
	// signer refuses.
	f.loader.failing = true
	f.clock.Add(45 * time.Second)
	if _, err := f.handler.Invoke(ctx, []byte(`{"claims":{}}`)); err != nil {
		t.Fatal(err)
	}
	if got, want := summary(f.data(t)), "KeyRefreshFailed=1 Count; SigningKeyAgeSeconds=45 Seconds; TokensIssued=1 Count"; got != want {
		t.Errorf("failed refresh: %s, want %s", got, want)
	}
	f.clock.Add(20 * time.Second)
	_, err = f.handler.Invoke(ctx, []byte(`{"claims":{}}`))
	var ku *token.KeyUnavailableError
	if !errors.As(err, &ku) {
		t.Fatalf("past S: %v, want a KeyUnavailableError", err)
	}
	if got, want := summary(f.data(t)), "KeyRefreshFailed=1 Count; SigningKeyAgeSeconds=65 Seconds; IssuerError=1 Count"; got != want {
		t.Errorf("past S: %s, want %s", got, want)
	}
}

// A first read that fails has no age to report.
func TestSignerMetricsFirstReadFails(t *testing.T) {
	f := newSignerFixture(t)
	f.loader.failing = true
	if _, err := f.handler.Invoke(context.Background(), []byte(`{"claims":{}}`)); err == nil {
		t.Fatal("signed without a key")
	}
	if got, want := summary(f.data(t)), "KeyRefreshFailed=1 Count; IssuerError=1 Count"; got != want {
		t.Errorf("%s, want %s", got, want)
	}
}

// The warm single-token path allocates no more with its metrics.
func TestSignerMetricsAllocations(t *testing.T) {
	bare, metered := warmPaths(t, io.Discard)
	payload := []byte(perf.Payload)
	ctx := context.Background()
	count := func(h token.Handler) float64 {
		return testing.AllocsPerRun(200, func() {
			if _, err := h.Invoke(ctx, payload); err != nil {
				t.Fatal(err)
			}
		})
	}
	if b, m := count(bare), count(metered); m > b {
		t.Errorf("%v allocations per token with metrics, %v without", m, b)
	}
}

// warmPaths returns the same issuer bare and wrapped in its metrics
// writing to out, both warm.
func warmPaths(tb testing.TB, out io.Writer) (bare, metered token.Handler) {
	tb.Helper()
	rec, err := keys.NewRecord(keys.ES256, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	load := func(context.Context) (*token.Key, error) { return token.KeyFromRecord(rec, nil) }
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	m := token.NewSignerMetrics(metrics.New(out, time.Now), secretARN)
	cache := token.NewKeyCache(load, time.Hour, time.Now, log)
	m.ObserveKeys(cache)
	bare = token.NewIssuer(cache, time.Hour, time.Now)
	metered = m.Wrap(bare)
	for _, h := range []token.Handler{bare, metered} {
		if _, err := h.Invoke(context.Background(), []byte(perf.Payload)); err != nil {
			tb.Fatal(err)
		}
	}
	return bare, metered
}

// BenchmarkSignerMetrics compares the warm single-token path (ES256, the
// payload `make bench` signs) bare, with its metrics record discarded (the
// cost of building it), and with the record written to /dev/null (plus
// the write system call a record costs in Lambda).
func BenchmarkSignerMetrics(b *testing.B) {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	bare, discard := warmPaths(b, io.Discard)
	_, file := warmPaths(b, devnull)
	payload := []byte(perf.Payload)
	for _, p := range []struct {
		name string
		h    token.Handler
	}{{"bare", bare}, {"metrics-discard", discard}, {"metrics-devnull", file}} {
		b.Run(p.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.h.Invoke(ctx, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSignerRecord is the record alone, without the signature: built
// each time by Write, and from the prepared form the signer uses.
func BenchmarkSignerRecord(b *testing.B) {
	w := metrics.New(io.Discard, time.Now)
	rec := metrics.Record{Dimensions: []metrics.Dimension{{Name: "Secret", Value: "jwks-issuer-keys"}},
		Metrics: []metrics.Metric{{Name: "TokensIssued", Unit: metrics.Count, Value: 1}}}
	b.Run("write", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = w.Write(rec)
		}
	})
	p, err := w.Prepare(rec)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("prepared", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = p.Write(1)
		}
	})
}
