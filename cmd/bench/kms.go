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

// kmsResult is the KMS custody's calls per token, and what a batch costs
// in time against moto with and without concurrent signing.
type kmsResult struct {
	first, warm, batch map[string]float64
	batchItems         int
	remote             bool          // kmscustody's signer is a token.RemoteSigner
	batchSeq           time.Duration // batch, one kms:Sign at a time
	batchPar           time.Duration // batch, kmsInFlight at a time
}

// kmsInFlight is the concurrency measured for a KMS batch.
const kmsInFlight = 8

// inFlight makes a signer remote for the measurement.
type inFlight struct{ token.Signer }

func (inFlight) MaxInFlight() int { return kmsInFlight }

// measureKMS rotates a KMS-custody secret with the real rotator, then wires
// the signer as functions/signer does with KEY_CUSTODY=kms and counts its
// calls.
func measureKMS(ctx context.Context, moto *testenv.Moto, signerBin, rotatorBin string) (*kmsResult, error) {
	s, err := stack.New(ctx, moto, signerBin, rotatorBin, map[string]string{
		"ACTIVATION_GRACE_SECONDS": "0",
		"JWKS_MAX_AGE_SECONDS":     "0",
		"KEY_CUSTODY":              "kms",
	})
	if err != nil {
		return nil, err
	}
	defer s.Stop()
	if err := s.Rotate(ctx, stack.NewToken()); err != nil {
		return nil, fmt.Errorf("KMS custody rotation: %w", err)
	}
	if _, err := s.Sign(ctx, perf.Payload); err != nil {
		return nil, fmt.Errorf("the signer does not sign with a KMS key: %w", err)
	}
	s.Stop()

	cfg := stack.Config(moto)
	counter := stack.CountCalls(&cfg)
	secret := awsstore.NewSecrets(awsstore.NewSecretsManagerClient(cfg), s.SecretARN)
	kmsSigner := kmscustody.SignerFunc(awsstore.NewKMS(awsstore.NewKMSClient(cfg)))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	newIssuer := func(kms token.KMSSignerFunc) *token.Issuer {
		cache := token.NewKeyCache(token.SecretKeyLoader(secret, kms), 60*time.Second, time.Now, log)
		return token.NewIssuer(cache, time.Hour, time.Now)
	}
	iss := newIssuer(kmsSigner)
	r := &kmsResult{batchItems: 100}
	_, r.remote = kmsSigner("probe", keys.ES256).(token.RemoteSigner)

	if _, err := iss.Invoke(ctx, []byte(perf.Payload)); err != nil {
		return nil, err
	}
	r.first = perToken(counter.Take(), 1)
	const warm = 50
	for range warm {
		if _, err := iss.Invoke(ctx, []byte(perf.Payload)); err != nil {
			return nil, err
		}
	}
	r.warm = perToken(counter.Take(), warm)
	batch := perf.BatchPayload(r.batchItems)
	start := time.Now()
	if _, err := iss.Invoke(ctx, batch); err != nil {
		return nil, err
	}
	r.batchSeq = time.Since(start)
	r.batch = perToken(counter.Take(), r.batchItems)

	// The same batch with the signer marked remote (MaxInFlight).
	par := newIssuer(func(keyID string, alg keys.Algorithm) token.Signer {
		return inFlight{kmsSigner(keyID, alg)}
	})
	if _, err := par.Invoke(ctx, []byte(perf.Payload)); err != nil { // fills the cache
		return nil, err
	}
	start = time.Now()
	if _, err := par.Invoke(ctx, batch); err != nil {
		return nil, err
	}
	r.batchPar = time.Since(start)
	counter.Take()
	return r, nil
}

func (r *kmsResult) print() {
	fmt.Printf("aws_calls_per_token custody=kms phase=first_token %s\n", formatCalls(r.first))
	fmt.Printf("aws_calls_per_token custody=kms phase=warm %s\n", formatCalls(r.warm))
	fmt.Printf("aws_calls_per_token custody=kms phase=warm_batch%d %s\n", r.batchItems, formatCalls(r.batch))
	if r.remote {
		fmt.Printf("kms batch of %d against moto: %.1f ms as wired (kmscustody.Signer is a token.RemoteSigner); %.1f ms with %d in flight\n",
			r.batchItems, ms(r.batchSeq), ms(r.batchPar), kmsInFlight)
	} else {
		fmt.Printf("kms batch of %d against moto: %.1f ms one kms:Sign at a time (kmscustody.Signer is not a token.RemoteSigner yet); %.1f ms with %d in flight\n",
			r.batchItems, ms(r.batchSeq), ms(r.batchPar), kmsInFlight)
	}
}
