package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"jwks-issuer/internal/perf"
	"jwks-issuer/internal/stack"
	"jwks-issuer/internal/testenv"
	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/kmscustody"
	"jwks-issuer/pkg/store/awsstore"
	"jwks-issuer/pkg/token"
)

// kmsResult is what a KMS batch costs in time against moto, signed as
// wired and with more calls in flight.
type kmsResult struct {
	batchItems int
	remote     bool          // kmscustody's signer is a token.RemoteSigner
	batchSeq   time.Duration // batch, as wired
	batchPar   time.Duration // batch, kmsInFlight at a time
}

// kmsInFlight is the concurrency measured for a KMS batch.
const kmsInFlight = 8

// inFlight makes a signer remote for the measurement.
type inFlight struct{ token.Signer }

func (inFlight) MaxInFlight() int { return kmsInFlight }

// measureKMS rotates a KMS-custody secret with the real rotator, then signs
// a batch in this process with the KMS adapter, as wired and with
// kmsInFlight calls in flight.
func measureKMS(ctx context.Context, moto *testenv.Moto, signerBin, rotatorBin string) (*kmsResult, error) {
	s, err := stack.New(ctx, moto, signerBin, rotatorBin, map[string]string{
		"ACTIVATION_GRACE_SECONDS": "0",
		"JWKS_MAX_AGE_SECONDS":     "0",
		"KEY_CUSTODY":              "kms",
		"KMS_DELETION_WINDOW_DAYS": "7",
		"KMS_KEY_TAG":              "bench-" + stack.NewToken(),
	})
	if err != nil {
		return nil, err
	}
	defer s.Stop()
	if err := s.Rotate(ctx, stack.NewToken()); err != nil {
		return nil, fmt.Errorf("KMS custody rotation: %w", err)
	}
	s.Stop()

	cfg := stack.Config(moto)
	secret := awsstore.NewSecrets(awsstore.NewSecretsManagerClient(cfg), s.SecretARN)
	kmsSigner := kmscustody.SignerFunc(awsstore.NewKMS(awsstore.NewKMSClient(cfg)))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	newIssuer := func(kms token.KMSSignerFunc) *token.Issuer {
		cache := token.NewKeyCache(token.SecretKeyLoader(secret, kms), 60*time.Second, time.Now, log)
		return token.NewIssuer(cache, time.Hour, time.Now)
	}
	r := &kmsResult{batchItems: 100}
	_, r.remote = kmsSigner("probe", keys.ES256).(token.RemoteSigner)
	batch := perf.BatchPayload(r.batchItems)
	for _, c := range []struct {
		kms  token.KMSSignerFunc
		took *time.Duration
	}{
		{kmsSigner, &r.batchSeq},
		{func(keyID string, alg keys.Algorithm) token.Signer { return inFlight{kmsSigner(keyID, alg)} }, &r.batchPar},
	} {
		iss := newIssuer(c.kms)
		if _, err := iss.Invoke(ctx, []byte(perf.Payload)); err != nil { // fills the cache
			return nil, err
		}
		start := time.Now()
		if _, err := iss.Invoke(ctx, batch); err != nil {
			return nil, err
		}
		*c.took = time.Since(start)
	}
	return r, nil
}

func (r *kmsResult) print() {
	if r.remote {
		fmt.Printf("kms batch of %d against moto: %.1f ms as wired (kmscustody.Signer is a token.RemoteSigner); %.1f ms with %d in flight\n",
			r.batchItems, ms(r.batchSeq), ms(r.batchPar), kmsInFlight)
	} else {
		fmt.Printf("kms batch of %d against moto: %.1f ms one kms:Sign at a time (kmscustody.Signer is not a token.RemoteSigner yet); %.1f ms with %d in flight\n",
			r.batchItems, ms(r.batchSeq), ms(r.batchPar), kmsInFlight)
	}
}
