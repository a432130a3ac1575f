package kmscustody_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"jwks-issuer/internal/stack"
	"jwks-issuer/internal/testenv"
	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/kmscustody"
	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/awsstore"
	"jwks-issuer/pkg/token"
)

// motoKMS is the AWS adapter over a fresh moto, with its calls counted.
func motoKMS(t *testing.T) (*awsstore.KMS, *stack.Calls) {
	t.Helper()
	cfg := stack.Config(testenv.StartMoto(t))
	counter := stack.CountCalls(&cfg)
	return awsstore.NewKMS(awsstore.NewKMSClient(cfg)), counter
}

// Tokens signed by KMS (moto) through the custody's signer verify with
// golang-jwt, including the ~1 in 128 whose r or s is short and must be
// left-padded; each token costs exactly one KMS call.
func TestKMSTokensVerifyOnMoto(t *testing.T) {
	ctx := context.Background()
	api, counter := motoKMS(t)
	c, err := kmscustody.New(api, "moto-stack", 7, time.Now, quiet(), ofStack()...)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		alg    keys.Algorithm
		tokens int
	}{{keys.ES256, 2000}, {keys.ES384, 20}, {keys.RS256, 20}} {
		t.Run(string(tc.alg), func(t *testing.T) {
			rec, err := c.NewKey(ctx, tc.alg, version(len(tc.alg)+tc.tokens), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := c.CheckKeys(ctx, rec); err != nil {
				t.Fatal(err)
			}
			key, err := c.SigningKey(rec)
			if err != nil {
				t.Fatal(err)
			}
			counter.Take()
			start := time.Now()
			var short, verified atomic.Int64
			signAndVerify(t, key, rec, tc.tokens, &short, &verified)
			calls := counter.Take()
			if calls[stack.Call{Service: "KMS", Operation: "Sign"}] != tc.tokens || len(calls) != 1 {
				t.Errorf("KMS calls for %d tokens: %v, want exactly one Sign per token and nothing else", tc.tokens, calls)
			}
			t.Logf("%s: %d tokens signed by moto KMS and verified by golang-jwt in %s; %d with a short r or s; KMS calls %v",
				tc.alg, verified.Load(), time.Since(start).Round(time.Millisecond), short.Load(), calls)
			if verified.Load() != int64(tc.tokens) {
				t.Errorf("%d of %d tokens verified", verified.Load(), tc.tokens)
			}
			if tc.alg == keys.ES256 && short.Load() == 0 {
				// P(none in 2,000) is about e^-15.6: the padding went untested.
				t.Error("no signature had a short r or s")
			}
		})
	}
}

// signAndVerify signs n tokens with a moderate parallelism (moto is a
// single Python process) and verifies each.
func signAndVerify(t *testing.T, key *token.Key, rec keys.Record, n int, short, verified *atomic.Int64) {
	t.Helper()
	const workers = 8
	size := rec.Alg.SignatureSize()
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range workers {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				tok, err := key.SignProbe(context.Background(), map[string]any{"i": i, "exp": time.Now().Add(time.Hour).Unix()})
				if err != nil {
					t.Errorf("token %d: %v", i, err)
					return
				}
				verifyJWT(t, tok, rec)
				verified.Add(1)
				if size > 0 {
					sig, err := base64.RawURLEncoding.DecodeString(tok[strings.LastIndexByte(tok, '.')+1:])
					if err != nil || len(sig) != size {
						t.Errorf("token %d: signature of %d bytes, want %d", i, len(sig), size)
						return
					}
					if sig[0] == 0 || sig[size/2] == 0 {
						short.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
}

// The adapter's Sign is retried by the SDK for transient failures only:
// KMS throttling reaches the custody's signer as ErrThrottled after one
// attempt, so that the two retry loops do not multiply. Other operations
// keep the SDK's throttling retries (nothing above them retries).
func TestSDKDoesNotRetryThrottledSign(t *testing.T) {
	ctx := context.Background()
	cfg := stack.Config(testenv.StartMoto(t))
	attempts := map[string]*atomic.Int64{"Sign": {}, "DescribeKey": {}}
	// Answer every attempt of these with KMS's throttling error before it
	// reaches moto, and count the attempts.
	cfg.APIOptions = append(cfg.APIOptions, func(stack *middleware.Stack) error {
		return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("Throttle",
			func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
				n, ok := attempts[awsmiddleware.GetOperationName(ctx)]
				if !ok {
					return next.HandleDeserialize(ctx, in)
				}
				n.Add(1)
				return middleware.DeserializeOutput{}, middleware.Metadata{},
					&smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded", Fault: smithy.FaultClient}
			}), middleware.After)
	})
	// The SDK's backoff between attempts would slow the test: keep it short.
	cfg.Retryer = func() aws.Retryer { return retry.AddWithMaxBackoffDelay(retry.NewStandard(), time.Millisecond) }
	api := awsstore.NewKMS(awsstore.NewKMSClient(cfg))
	c, err := kmscustody.New(api, "moto-stack", 7, time.Now, quiet(), ofStack()...)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := c.NewKey(ctx, keys.ES256, version(1), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, err = api.Sign(ctx, store.SignRequest{KeyID: rec.KMSKeyID, Algorithm: store.ECDSASHA256, Message: []byte("x")})
	if n := attempts["Sign"].Load(); n != 1 || !errors.Is(err, store.ErrThrottled) {
		t.Errorf("throttled Sign: %d attempts, err %v; want 1 attempt and ErrThrottled", n, err)
	}
	_, err = api.DescribeKey(ctx, rec.KMSKeyID)
	if n := attempts["DescribeKey"].Load(); n != 3 || !errors.Is(err, store.ErrThrottled) {
		t.Errorf("throttled DescribeKey: %d attempts, err %v; want the SDK's 3 and ErrThrottled", n, err)
	}
}

// Against moto: the keys NewKey makes carry the custody's explicit policy,
// and cleanup schedules the deletion of the custody's own dropped and
// orphaned keys only. A signing key someone else made and tagged with every
// tag the custody writes stays enabled, even when listed as dropped.
func TestTidyOnMotoTouchesOnlyKeysItMade(t *testing.T) {
	ctx := context.Background()
	cfg := stack.Config(testenv.StartMoto(t))
	api := awsstore.NewKMS(awsstore.NewKMSClient(cfg))
	raw := kms.NewFromConfig(cfg)
	// Tidy's clock is ahead, so that every key is past OrphanAge.
	later := func() time.Time { return time.Now().Add(2 * kmscustody.OrphanAge) }
	c, err := kmscustody.New(api, "moto-stack", 7, later, quiet(), ofStack()...)
	if err != nil {
		t.Fatal(err)
	}
	var recs []keys.Record
	for i := range 4 {
		rec, err := c.NewKey(ctx, keys.ES256, version(100+i), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	live, dropped, orphan, revoked := recs[0], recs[1], recs[2], recs[3]
	assertStackPolicy(t, api, live.KMSKeyID, c.Policy(), "arn:aws:iam::000000000000:root")

	out, err := raw.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecEccNistP256, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
	if err != nil {
		t.Fatal(err)
	}
	foreign := aws.ToString(out.KeyMetadata.Arn)
	var tags []kmstypes.Tag
	for k, v := range map[string]string{kmscustody.TagStack: "moto-stack", kmscustody.TagVersion: version(200),
		kmscustody.TagKid: "forgedkid000000000000", kmscustody.TagSecret: testSecret} {
		tags = append(tags, kmstypes.Tag{TagKey: aws.String(k), TagValue: aws.String(v)})
	}
	if _, err := raw.TagResource(ctx, &kms.TagResourceInput{KeyId: out.KeyMetadata.KeyId, Tags: tags}); err != nil {
		t.Fatal(err)
	}

	if err := c.Tidy(ctx, []string{live.KMSKeyID}, []string{revoked.KMSKeyID}, []string{dropped.KMSKeyID, foreign}); err != nil {
		t.Fatalf("Tidy: %v", err)
	}
	for arn, want := range map[string]string{
		live.KMSKeyID:    store.KeyEnabled,
		dropped.KMSKeyID: store.KeyPendingDeletion,
		orphan.KMSKeyID:  store.KeyPendingDeletion,
		revoked.KMSKeyID: store.KeyDisabled,
		foreign:          store.KeyEnabled,
	} {
		if k, err := api.DescribeKey(ctx, arn); err != nil || k.State != want {
			t.Errorf("key %s: %s, %v; want %s", arn, k.State, err, want)
		}
	}
}
