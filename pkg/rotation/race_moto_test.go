package rotation_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"jwks-issuer/internal/stack"
	"jwks-issuer/internal/testenv"
	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/rotation"
	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/awsstore"
	"jwks-issuer/pkg/store/s3store"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Cleanup races rotation steps, two containers against moto's real
// conditional writes: after every step, CURRENT and NEXT are published.
func TestCleanupRacingRotationAgainstMoto(t *testing.T) {
	moto := testenv.StartMoto(t)
	ctx := context.Background()
	cfg := stack.Config(moto)
	sm := secretsmanager.NewFromConfig(cfg)
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	sec, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("race"), SecretString: aws.String("{}")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("race")}); err != nil {
		t.Fatal(err)
	}
	secret := awsstore.NewSecrets(sm, aws.ToString(sec.ARN))
	jwks := s3store.NewObject(s3c, "race", ".well-known/jwks.json")
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	newRotator := func() *rotation.Rotator {
		r, err := rotation.New(rotation.Config{
			Lifecycle: lifecycle.Config{MaxTokenTTL: time.Hour},
			Algorithm: keys.ES256,
			// Conflicts are the point here: allow more recomputes than in production.
			PublishAttempts: 50,
		}, secret, jwks, rotation.LocalCustody{}, time.Now, log)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	rotator, cleaner := newRotator(), newRotator()

	published := func() map[string]bool {
		obj, err := jwks.Get(ctx)
		if err != nil {
			t.Errorf("read jwks: %v", err)
			return nil
		}
		set, err := keys.ParseSet(obj.Body)
		if err != nil {
			t.Errorf("published key set does not parse: %v", err)
		}
		out := map[string]bool{}
		for _, k := range set.Keys {
			out[k.Kid] = true
		}
		return out
	}
	kidAt := func(stage string) string {
		_, v, err := secret.GetStage(ctx, stage)
		if err != nil {
			t.Fatalf("read %s: %v", stage, err)
		}
		rec, err := keys.ParseRecord(v)
		if err != nil {
			t.Fatalf("parse %s: %v", stage, err)
		}
		return rec.Kid
	}

	const rotations = 12
	done := make(chan struct{})
	var cleanups int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := cleaner.Cleanup(ctx); err != nil {
				t.Errorf("cleanup: %v", err)
				return
			}
			cleanups++
		}
	}()
	for i := 0; i < rotations; i++ {
		tok := stack.NewToken()
		if err := stack.BeginRotation(ctx, sm, aws.ToString(sec.ARN), tok); err != nil {
			t.Fatal(err)
		}
		for _, step := range stack.Steps {
			err := rotator.Handle(ctx, rotation.Event{Step: step, ClientRequestToken: tok})
			if err != nil {
				t.Fatalf("rotation %d %s: %v", i, step, err)
			}
			// The rotator is the only writer of the secret, so the state
			// read here is the state every later key-set write must honour.
			set := published()
			next := kidAt(store.StageNext)
			if i > 0 || step == "finishSecret" {
				if current := kidAt(store.StageCurrent); !set[current] {
					t.Fatalf("rotation %d after %s: CURRENT %s missing from %v", i, step, current, set)
				}
			}
			if !set[next] {
				t.Fatalf("rotation %d after %s: NEXT %s missing from %v", i, step, next, set)
			}
		}
	}
	close(done)
	wg.Wait()
	recomputes := strings.Count(logs.String(), "jwks changed during publish")
	t.Logf("%d rotations against %d concurrent cleanups; %d conflicting writes recomputed", rotations, cleanups, recomputes)
	if cleanups < rotations {
		t.Fatalf("only %d cleanups ran: the race was not exercised", cleanups)
	}
}
