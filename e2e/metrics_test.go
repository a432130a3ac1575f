package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"jwks-issuer/internal/stack"
	"jwks-issuer/pkg/metrics/emftest"
)

// Every line both functions write through a first rotation, a refused
// rotation, a forged step, signing, a batch, a bad request and a cleanup
// is JSON; every metric record among them is valid EMF; and each metric
// appears, dimensioned by the secret's name (and by step where it
// applies).
func TestMetrics(t *testing.T) {
	env := compressed()
	env["ACTIVATION_GRACE_SECONDS"] = "3600" // a second rotation is refused
	s := newStack(t, "secretsmanager", env)
	c := ctx(t)
	start := time.Now()

	if _, err := s.Sign(c, hotsockPayload); err == nil {
		t.Fatal("signed before the first rotation")
	}
	if err := s.Rotate(c, stack.NewToken()); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second reads the key again (KEY_CACHE_SECONDS=0)
		if _, err := s.Sign(c, hotsockPayload); err != nil {
			t.Fatal(err)
		}
	}
	out, err := stack.Invoke(c, s.Signer, `{"batch":[{"claims":{"sub":"a"}},{"claims":{"sub":"b,c"}},{"claims":{}}]}`)
	if err != nil || strings.Count(string(out), `"ey`) != 3 {
		t.Fatalf("batch: %s %v", out, err)
	}
	if _, err := s.Sign(c, `{"claims":{},"ttl":61}`); err == nil || !strings.Contains(err.Error(), "ttl is 61") {
		t.Fatalf("bad request: %v", err)
	}
	if err := s.Rotate(c, stack.NewToken()); err == nil || !strings.Contains(err.Error(), "createSecret") {
		t.Fatalf("a rotation inside the activation grace: %v, want the guard's refusal", err)
	}
	if err := s.Step(c, "finishSecret", stack.NewToken()); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("a forged finishSecret: %v, want it refused", err)
	}
	if err := s.Cleanup(c); err != nil {
		t.Fatal(err)
	}
	s.Stop() // the logs are complete once the processes have exited

	d, err := s.SM.DescribeSecret(c, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.SecretARN)})
	if err != nil {
		t.Fatal(err)
	}
	name := aws.ToString(d.Name)
	if name == "" || strings.Contains(name, ":") {
		t.Fatalf("secret name %q", name)
	}

	// seen maps "Name[dimension names]" to the data points.
	seen := map[string][]emftest.Datum{}
	for fn, logs := range map[string]string{"rotator": s.Rotator.Logs(), "signer": s.Signer.Logs()} {
		recs, errs := emftest.Scan(logs, time.Now())
		for _, err := range errs {
			t.Errorf("%s: %v", fn, err)
		}
		if len(recs) == 0 {
			t.Errorf("%s wrote no metric record", fn)
		}
		for _, r := range recs {
			if r.Timestamp.Before(start.Add(-time.Second)) || r.Timestamp.After(time.Now()) {
				t.Errorf("%s: record timestamp %v is not the time of the run", fn, r.Timestamp)
			}
			for _, p := range r.Data() {
				if p.Namespace != "JwksIssuer" {
					t.Errorf("%s: %s in namespace %q", fn, p.Name, p.Namespace)
				}
				if p.Dimensions["Secret"] != name {
					t.Errorf("%s: %s has Secret=%q, want the secret's name %q", fn, p.Name, p.Dimensions["Secret"], name)
				}
				key := fmt.Sprintf("%s[%s]", p.Name, p.DimensionNames())
				seen[key] = append(seen[key], p)
			}
		}
	}

	want := map[string]string{ // metric → unit
		"RotationStepSucceeded": "Count", "RotationStepFailed": "Count", "RotationRefused": "Count",
		"StepRefused": "Count", "PublishedKeys": "Count", "JwksBytes": "Bytes", "JwksWrites": "Count",
		"PublishConflicts": "Count", "CurrentKeyAgeSeconds": "Seconds", "NextPublishedSeconds": "Seconds",
		"CleanupSucceeded": "Count", "TokensIssued": "Count", "KeyRefreshFailed": "Count",
		"SigningKeyAgeSeconds": "Seconds", "RequestRejected": "Count", "IssuerError": "Count",
	}
	byStep := []string{"RotationStepSucceeded", "RotationRefused", "StepRefused"}
	for metric, unit := range want {
		if metric == "RotationStepFailed" {
			continue // nothing fails in this run; pkg/rotation's tests make it fail
		}
		sets := []string{"Secret"}
		if slices.Contains(byStep, metric) {
			sets = append(sets, "Secret,Step")
		}
		for _, set := range sets {
			points := seen[metric+"["+set+"]"]
			if len(points) == 0 {
				t.Errorf("no %s by %s", metric, set)
				continue
			}
			for _, p := range points {
				if p.Unit != unit {
					t.Errorf("%s has unit %q, want %q", metric, p.Unit, unit)
				}
			}
		}
	}
	for key := range seen {
		if metric, _, _ := strings.Cut(key, "["); want[metric] == "" {
			t.Errorf("%s is not a documented metric", key)
		}
	}

	steps := map[string]bool{}
	for _, p := range seen["RotationStepSucceeded[Secret,Step]"] {
		steps[p.Dimensions["Step"]] = true
	}
	for _, step := range stack.Steps {
		if !steps[step] {
			t.Errorf("no RotationStepSucceeded for Step=%s: %v", step, steps)
		}
	}
	check := func(key, dim, value string, v float64) {
		t.Helper()
		for _, p := range seen[key] {
			if (dim == "" || p.Dimensions[dim] == value) && slices.Contains(p.Values, v) {
				return
			}
		}
		t.Errorf("no %s %s=%s with the value %v: %+v", key, dim, value, v, seen[key])
	}
	check("RotationRefused[Secret,Step]", "Step", "createSecret", 1)
	check("StepRefused[Secret,Step]", "Step", "finishSecret", 1)
	check("TokensIssued[Secret]", "", "", 3) // the batch
	check("TokensIssued[Secret]", "", "", 1)
	check("KeyRefreshFailed[Secret]", "", "", 1) // before the first rotation
	check("KeyRefreshFailed[Secret]", "", "", 0)
	check("IssuerError[Secret]", "", "", 1)
	check("RequestRejected[Secret]", "", "", 1)
	check("CleanupSucceeded[Secret]", "", "", 1)
	check("PublishedKeys[Secret]", "", "", 2)
	check("PublishConflicts[Secret]", "", "", 0)
}
