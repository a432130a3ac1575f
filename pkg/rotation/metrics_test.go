package rotation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"jwks-issuer/pkg/metrics"
	"jwks-issuer/pkg/metrics/emftest"
	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/memstore"
)

// meteredEnv is an env whose rotator writes its metrics to out.
func meteredEnv(t *testing.T) (*env, *bytes.Buffer) {
	t.Helper()
	e := newEnv(t, testConfig())
	out := &bytes.Buffer{}
	WithMetrics(metrics.New(out, e.clock.now), "arn:aws:secretsmanager:us-east-1:123456789012:secret:test-AbC123")(e.rot)
	return e, out
}

func (e *env) invoke(t *testing.T, ev Event) error {
	t.Helper()
	payload, _ := json.Marshal(ev)
	_, err := e.rot.Invoke(context.Background(), payload)
	return err
}

func (e *env) invokeRotation(t *testing.T, tok string) error {
	t.Helper()
	if err := e.secret.BeginRotation(tok); err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if err := e.invoke(t, Event{Step: s, SecretID: "test", ClientRequestToken: tok}); err != nil {
			return err
		}
	}
	return nil
}

// points lists the data points written since the last call, as
// "Name{dim=value,...}=value", each record checked against the EMF
// specification first.
func points(t *testing.T, out *bytes.Buffer, now time.Time) []string {
	t.Helper()
	recs, errs := emftest.Scan(out.String(), now)
	for _, err := range errs {
		t.Error(err)
	}
	out.Reset()
	var list []string
	for _, r := range recs {
		for _, d := range r.Data() {
			if d.Namespace != "JwksIssuer" || d.Dimensions["Secret"] != "test" {
				t.Errorf("datum %+v: want namespace JwksIssuer and Secret=test", d)
			}
			var dims []string
			for k, v := range d.Dimensions {
				if k != "Secret" {
					dims = append(dims, k+"="+v)
				}
			}
			sort.Strings(dims)
			list = append(list, fmt.Sprintf("%s{%s}=%v", d.Name, strings.Join(dims, ","), d.Values[0]))
		}
	}
	return list
}

func has(list []string, want ...string) error {
	for _, w := range want {
		found := false
		for _, p := range list {
			found = found || p == w
		}
		if !found {
			return fmt.Errorf("no %s among %v", w, list)
		}
	}
	return nil
}

func TestRotatorMetrics(t *testing.T) {
	e, out := meteredEnv(t)

	// The first rotation: every step succeeds, by step and across steps.
	if err := e.invokeRotation(t, tokenN(1)); err != nil {
		t.Fatal(err)
	}
	got := points(t, out, e.clock.now())
	for _, s := range steps {
		if err := has(got, "RotationStepSucceeded{Step="+s+"}=1"); err != nil {
			t.Error(err)
		}
	}
	if err := has(got, "RotationStepSucceeded{}=1", "PublishedKeys{}=2", "JwksWrites{}=1", "JwksWrites{}=0",
		"PublishConflicts{}=0", "CurrentKeyAgeSeconds{}=0", "NextPublishedSeconds{}=0"); err != nil {
		t.Error(err)
	}
	for _, p := range got {
		if strings.HasPrefix(p, "JwksBytes{}=") && p == "JwksBytes{}=0" {
			t.Errorf("%s: the key set has a size", p)
		}
	}

	// An hour later: the guard refuses a rotation (Ga is a day); a cleanup
	// sees the ages.
	e.clock.advance(time.Hour)
	if err := e.invokeRotation(t, tokenN(2)); err == nil {
		t.Fatal("the guard let NEXT sign an hour after its publication")
	}
	if err := e.invoke(t, Event{Action: "cleanup"}); err != nil {
		t.Fatal(err)
	}
	got = points(t, out, e.clock.now())
	if err := has(got, "RotationRefused{Step=createSecret}=1", "RotationRefused{}=1", "CleanupSucceeded{}=1",
		"CurrentKeyAgeSeconds{}=3600", "NextPublishedSeconds{}=3600", "JwksWrites{}=0"); err != nil {
		t.Error(err)
	}
	for _, p := range got {
		if strings.HasPrefix(p, "RotationStepFailed") {
			t.Errorf("a refusal counted as a failure: %s", p)
		}
	}

	// A step of no rotation is refused; an event naming no step fails.
	if err := e.invoke(t, Event{Step: "finishSecret", SecretID: "test", ClientRequestToken: tokenN(0)}); err == nil {
		t.Fatal("finishSecret of an old version ran")
	}
	if err := e.invoke(t, Event{Step: "dropSecret", SecretID: "test", ClientRequestToken: tokenN(3)}); err == nil {
		t.Fatal("an unknown step ran")
	}
	if err := e.invoke(t, Event{Action: "purge"}); err == nil {
		t.Fatal("an unknown action ran")
	}
	if _, err := e.rot.Invoke(context.Background(), []byte(`[]`)); err == nil {
		t.Fatal("an event that is not an object ran")
	}
	if err := e.invoke(t, Event{Step: "createSecret", SecretID: "other", ClientRequestToken: tokenN(3)}); err == nil {
		t.Fatal("a step for another secret ran")
	}
	got = points(t, out, e.clock.now())
	if err := has(got, "StepRefused{Step=finishSecret}=1", "StepRefused{}=1", "RotationStepFailed{Step=invalid}=1",
		"RotationStepFailed{Step=createSecret}=1"); err != nil {
		t.Error(err)
	}
	if n := strings.Count(strings.Join(got, " "), "RotationStepFailed{Step=invalid}=1"); n != 3 {
		t.Errorf("%d invalid events counted, want 3: %v", n, got)
	}

	// A failed step, and a failed cleanup.
	broken := errors.New("S3 is down")
	e.jwks.SetHook(func(op string) error {
		if op == memstore.OpGet {
			return broken
		}
		return nil
	})
	if err := e.invoke(t, Event{Action: "cleanup"}); !errors.Is(err, broken) {
		t.Fatalf("cleanup: %v", err)
	}
	if err := e.secret.BeginRotation(tokenN(4)); err != nil {
		t.Fatal(err)
	}
	if err := e.invoke(t, Event{Step: "testSecret", SecretID: "test", ClientRequestToken: tokenN(4)}); !errors.Is(err, broken) {
		t.Fatalf("testSecret: %v", err)
	}
	got = points(t, out, e.clock.now())
	if err := has(got, "CleanupSucceeded{}=0", "RotationStepFailed{Step=testSecret}=1", "RotationStepFailed{}=1"); err != nil {
		t.Error(err)
	}
}

// A lost conditional write is counted, and so is the write that follows.
func TestPublishConflictMetrics(t *testing.T) {
	e, out := meteredEnv(t)
	e.mustRotate(t, tokenN(1))
	ctx := context.Background()
	// rival makes another writer change the key set before each of the
	// rotator's next n writes, so that its conditional write fails.
	rival := func(n int) memstore.Hook {
		busy := false
		return func(op string) error {
			if op != memstore.OpPut || busy || n == 0 {
				return nil
			}
			busy, n = true, n-1
			defer func() { busy = false }()
			_, err := e.jwks.Put(ctx, fmt.Appendf(nil, `{"keys":[],"rival":%d}`, n), "application/json", "public, max-age=300", store.PutCondition{})
			return err
		}
	}
	damage := func() {
		t.Helper()
		if _, err := e.jwks.Put(ctx, []byte(`{}`), "application/json", "public, max-age=300", store.PutCondition{}); err != nil {
			t.Fatal(err)
		}
	}
	out.Reset()
	damage() // so that cleanup writes
	e.jwks.SetHook(rival(1))
	if err := e.invoke(t, Event{Action: "cleanup"}); err != nil {
		t.Fatal(err)
	}
	if err := has(points(t, out, e.clock.now()), "PublishConflicts{}=1", "JwksWrites{}=1", "CleanupSucceeded{}=1"); err != nil {
		t.Error(err)
	}

	// A conflict at every attempt: the publish gives up and says how often.
	damage()
	e.jwks.SetHook(rival(100))
	if err := e.invoke(t, Event{Action: "cleanup"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("cleanup: %v, want %v", err, ErrConflict)
	}
	e.jwks.SetHook(nil)
	if err := has(points(t, out, e.clock.now()), "PublishConflicts{}=5", "CleanupSucceeded{}=0"); err != nil {
		t.Error(err)
	}
}

// Without WithMetrics the rotator writes no record.
func TestNoMetricsByDefault(t *testing.T) {
	e := newEnv(t, testConfig())
	if e.rot.metrics != nil {
		t.Fatal("metrics without WithMetrics")
	}
	if err := e.invokeRotation(t, tokenN(1)); err != nil {
		t.Fatal(err)
	}
}
